-- etcd v3 through its JSON gateway: each request puts a new key holding the 1 KiB content
-- config_publish.lua publishes (the same bytes), as a team keeping configs in etcd would.
-- Each request pays wrk the same as one of config_publish.lua: its body put together from
-- a fixed part and the key (base64'd in init), then formatted.
dofile("scripts/wrk/base64.lua")

local content = ""
local line = "key.of.a.setting = a value of some length, as configs have them\n"
while #content < 1024 do content = content .. line end
content = content:sub(1, 1024)

local value = '","value":"' .. base64(content) .. '"}'
local headers = {["Content-Type"] = "application/json"}
local keys = {}
local count = 0
local counter = 0

function init(args)
  count = tonumber(args[1]) or 400000
  for i = 1, count do keys[i] = base64("/configs/BENCH_GROUP/bench.cfg." .. i) end
end

request = function()
  counter = counter % count + 1
  return wrk.format("POST", "/v3/kv/put", headers, '{"key":"' .. keys[counter] .. value)
end
