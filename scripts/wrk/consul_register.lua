-- Consul's agent API: each request registers a new service instance (its own ID and
-- address), over 100 services, with two Meta pairs as /reg's bench carries two
-- parameters; built once, in init (prebuilt.lua).
dofile("scripts/wrk/prebuilt.lua")

prebuilt(function(i)
  local body = '{"Name":"bench.Service' .. (i % 100) .. '","ID":"bench-' .. i .. '","Address":"' .. host(i)
    .. '","Port":8080,"Meta":{"env":"bench","weight":"100"}}'
  return wrk.format("PUT", "/v1/agent/service/register", {["Content-Type"] = "application/json"}, body)
end)
