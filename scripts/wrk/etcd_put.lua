-- etcd v3 through its JSON gateway: each request puts a new key whose value is the record
-- register.lua sends to maregistry (the same bytes), over 100 "services". The requests are
-- built once, in init, as register.lua's are (prebuilt.lua): base64 in Lua for every request
-- made wrk, not etcd, the limit (4.3k puts/s with wrk at 54% of a core, against 6.7k at 27%
-- built once).
dofile("scripts/wrk/base64.lua")
dofile("scripts/wrk/prebuilt.lua")

prebuilt(function(i)
  local record = '{"scheme":"http","host":"' .. host(i) .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
  local key = "/registry/bench.Service" .. (i % 100) .. "/" .. host(i) .. ":8080"
  local body = '{"key":"' .. base64(key) .. '","value":"' .. base64(record) .. '"}'
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end)
