-- Each request registers a new instance: 100 services, ports cycling through the rest.
counter = 0
request = function()
  counter = counter + 1
  local service = "bench.Service" .. (counter % 100)
  local host = "10." .. math.floor(counter / 65000) % 256 .. "." .. math.floor(counter / 250) % 256 .. "." .. counter % 250
  local body = '{"scheme":"http","host":"' .. host .. '","port":' .. (counter % 60000 + 1) .. ',"context":"c","parameters":{"env":"bench"}}'
  return wrk.format("POST", "/reg?service=" .. service, {["Content-Type"] = "application/json"}, body)
end
