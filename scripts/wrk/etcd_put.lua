-- etcd v3 through its JSON gateway: each request puts a new key whose value is the record
-- register.lua sends to maregistry (the same bytes), over 100 "services".
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

counter = 0
request = function()
  counter = counter + 1
  local service = "bench.Service" .. (counter % 100)
  local host = "10." .. math.floor(counter / 65536) % 256 .. "." .. math.floor(counter / 256) % 256 .. "." .. counter % 256
  local record = '{"scheme":"http","host":"' .. host .. '","port":8080,"context":"c","parameters":{"env":"bench","weight":"100"}}'
  local key = "/registry/" .. service .. "/" .. host .. ":8080"
  local body = '{"key":"' .. base64(key) .. '","value":"' .. base64(record) .. '"}'
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
