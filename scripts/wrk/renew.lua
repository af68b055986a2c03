-- maregistry: heartbeats of the 1,000 instances bench-load registered (100 services).
-- The 1,000 requests are built once (on first use, when wrk has set the Host header) and
-- replayed, so that wrk's own Lua work does not become the bottleneck.
local requests = nil
local n = 0
request = function()
  if requests == nil then
    requests = {}
    for i = 0, 999 do
      local service = "bench.Service" .. (i % 100)
      local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
      local body = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
      requests[i + 1] = wrk.format("POST", "/renew?service=" .. service, {["Content-Type"] = "application/json"}, body)
    end
  end
  n = n % 1000 + 1
  return requests[n]
end
