-- etcd v3 through its JSON gateway: each request puts a new key whose value is the record
-- register.lua sends to maregistry (the same bytes), over 100 "services". The requests are
-- built once, in init, as register.lua's are (wrk's args after `--`: how many, default
-- 400,000): base64 in Lua for every request made wrk, not etcd, the limit (4.3k puts/s
-- with wrk at 54% of a core, against 6.7k at 27% built once).
dofile("scripts/wrk/base64.lua")

local requests = {}
local count = 0
local next_one = 0

function init(args)
  count = tonumber(args[1]) or 400000
  for i = 1, count do
    local service = "bench.Service" .. (i % 100)
    local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
    local record = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
    local key = "/registry/" .. service .. "/" .. host .. ":8080"
    local body = '{"key":"' .. base64(key) .. '","value":"' .. base64(record) .. '"}'
    requests[i] = wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
  end
end

request = function()
  next_one = next_one % count + 1
  return requests[next_one]
end
