-- r-nacos: each request registers a new instance, over 100 services.
counter = 0
request = function()
  counter = counter + 1
  local service = "bench.Service" .. (counter % 100)
  local host = "10." .. math.floor(counter / 65536) % 256 .. "." .. math.floor(counter / 256) % 256 .. "." .. counter % 256
  local path = "/nacos/v1/ns/instance?serviceName=" .. service .. "&groupName=DEFAULT_GROUP&namespaceId=public&ip=" .. host
    .. "&port=8080&ephemeral=true&metadata=%7B%22env%22%3A%22bench%22%2C%22weight%22%3A%22100%22%7D"
  return wrk.format("POST", path)
end
