-- Nacos open API (r-nacos, and maregistry's facade): each request registers a new instance,
-- over 100 services. Built once in init, as register.lua (wrk's args after `--`: how many,
-- default 400,000).
local requests = {}
local count = 0
local next_one = 0

function init(args)
  count = tonumber(args[1]) or 400000
  for i = 1, count do
    local service = "bench.Service" .. (i % 100)
    local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
    local path = "/nacos/v1/ns/instance?serviceName=" .. service .. "&groupName=DEFAULT_GROUP&namespaceId=public&ip=" .. host
      .. "&port=8080&ephemeral=true&metadata=%7B%22env%22%3A%22bench%22%2C%22weight%22%3A%22100%22%7D"
    requests[i] = wrk.format("POST", path)
  end
end

request = function()
  next_one = next_one % count + 1
  return requests[next_one]
end
