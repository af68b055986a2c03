-- Requests built once, in init, and taken in turn: what a script costs wrk per request is
-- then the same whatever its bodies hold (base64, escaping), so that the load client is
-- never what one side of a comparison is measured by. Loaded with dofile (wrk runs from
-- the repository's root); wrk's args after `--` give how many (default 400,000).

-- A distinct IPv4 host for each i below 2^24 (as bench-tools' `host`).
function host(i)
  return "10." .. math.floor(i / 65536) % 256 .. "." .. math.floor(i / 256) % 256 .. "." .. i % 256
end

-- Makes wrk's `init` build request i with `build(i)`, and its `request` take them in turn.
function prebuilt(build)
  local requests, count, next_one = {}, 0, 0
  init = function(args)
    count = tonumber(args[1]) or 400000
    for i = 1, count do requests[i] = build(i) end
  end
  request = function()
    next_one = next_one % count + 1
    return requests[next_one]
  end
end
