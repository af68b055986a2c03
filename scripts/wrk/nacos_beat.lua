-- r-nacos: heartbeats of the 1,000 instances bench-load registered (100 services).
-- Built in init and replayed, like renew.lua.
local requests = {}
local n = 0

function init(args)
  for i = 0, 999 do
    local service = "bench.Service" .. (i % 100)
    local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
    requests[i + 1] = wrk.format("PUT", "/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP%40%40" .. service .. "&ip=" .. host .. "&port=8080")
  end
end

function request()
  n = n % 1000 + 1
  return requests[n]
end
