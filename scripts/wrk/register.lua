-- maregistry: each request registers a new instance, over 100 services.
counter = 0
request = function()
  counter = counter + 1
  local service = "bench.Service" .. (counter % 100)
  local host = "10." .. math.floor(counter / 65536) % 256 .. "." .. math.floor(counter / 256) % 256 .. "." .. counter % 256
  local body = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
  return wrk.format("POST", "/reg?service=" .. service, {["Content-Type"] = "application/json"}, body)
end
