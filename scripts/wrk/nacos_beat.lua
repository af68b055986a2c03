-- r-nacos: heartbeats of the 1,000 instances bench-load registered (100 services).
counter = 0
request = function()
  counter = (counter + 1) % 1000
  local service = "bench.Service" .. (counter % 100)
  local host = "10." .. math.floor(counter / 65536) % 256 .. "." .. math.floor(counter / 256) % 256 .. "." .. counter % 256
  return wrk.format("PUT", "/nacos/v1/ns/instance/beat?serviceName=DEFAULT_GROUP%40%40" .. service .. "&ip=" .. host .. "&port=8080")
end
