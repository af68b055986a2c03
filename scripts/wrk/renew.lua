-- maregistry: heartbeats of the instances bench-load registered.
-- Arguments (after --): instance count (default 1000) and service count (default 100),
-- the same as bench-load's --instances and --services. The requests are built in init,
-- before the run starts, and replayed, so that wrk's own Lua work stays small.
local requests = {}
local count = 1000
local n = 0

function init(args)
  count = tonumber(args[1]) or 1000
  local services = tonumber(args[2]) or 100
  for i = 0, count - 1 do
    local service = "bench.Service" .. (i % services)
    local host = "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
    local body = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
    requests[i + 1] = wrk.format("POST", "/renew?service=" .. service, {["Content-Type"] = "application/json"}, body)
  end
end

function request()
  n = n % count + 1
  return requests[n]
end
