-- Base64 for the etcd scripts (its JSON gateway takes keys and values base64'd); loaded
-- with dofile, wrk running from the repository's root.
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local digit = {}
for i = 1, 64 do digit[i - 1] = b64chars:sub(i, i) end

-- Base64, three bytes at a time.
function base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    out[#out + 1] = digit[math.floor(n / 262144) % 64] .. digit[math.floor(n / 4096) % 64]
      .. (b and digit[math.floor(n / 64) % 64] or "=") .. (c and digit[n % 64] or "=")
  end
  return table.concat(out)
end

