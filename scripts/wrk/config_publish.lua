-- Nacos open API (maregistry and r-nacos): each request publishes a new config of 1 KiB
-- (`POST /nacos/v1/cs/configs`, a form). The content is the same bytes
-- etcd_config_put.lua puts; each request pays wrk the same as one of that script: its body
-- put together from a fixed part and the key, then formatted.
local content = ""
local line = "key.of.a.setting = a value of some length, as configs have them\n"
while #content < 1024 do content = content .. line end
content = content:sub(1, 1024)

local function urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c)
    if c == " " then return "+" end
    return string.format("%%%02X", c:byte())
  end))
end

local tail = "&group=BENCH_GROUP&type=text&content=" .. urlencode(content)
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("POST", "/nacos/v1/cs/configs", headers, "dataId=bench.cfg." .. counter .. tail)
end
