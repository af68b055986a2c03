-- Nacos open API (r-nacos, and maregistry's facade): each request registers a new instance,
-- over 100 services; the requests are built once, in init (prebuilt.lua).
dofile("scripts/wrk/prebuilt.lua")

prebuilt(function(i)
  return wrk.format("POST", "/nacos/v1/ns/instance?serviceName=bench.Service" .. (i % 100)
    .. "&groupName=DEFAULT_GROUP&namespaceId=public&ip=" .. host(i)
    .. "&port=8080&ephemeral=true&metadata=%7B%22env%22%3A%22bench%22%2C%22weight%22%3A%22100%22%7D")
end)
