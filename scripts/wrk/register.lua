-- maregistry: each request registers a new instance, over 100 services; the requests are
-- built once, in init (prebuilt.lua).
dofile("scripts/wrk/prebuilt.lua")

prebuilt(function(i)
  local body = '{"scheme":"http","host":"' .. host(i) .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
  return wrk.format("POST", "/reg?service=bench.Service" .. (i % 100), {["Content-Type"] = "application/json"}, body)
end)
