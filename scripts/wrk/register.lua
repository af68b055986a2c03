-- maregistry: each request registers a new instance, over 100 services.
-- The requests are built once, in init (wrk's `args` after `--`: how many, default 400,000),
-- and taken in turn: the script costs wrk the same per request as etcd_put.lua, whatever the
-- body holds, so that the load client is never what one side is measured by.
local requests = {}
local count = 0
local next_one = 0

function init(args)
  count = tonumber(args[1]) or 400000
  for i = 1, count do
    local service = "bench.Service" .. (i % 100)
    local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
    local body = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
    requests[i] = wrk.format("POST", "/reg?service=" .. service, {["Content-Type"] = "application/json"}, body)
  end
end

request = function()
  next_one = next_one % count + 1
  return requests[next_one]
end
