-- POST /api/v1/orders with 3 lines. Arguments (after "--"): restaurants_file nonce.
-- Each line of restaurants_file: "<POS API key>\t<menu item id>,<menu item id>,...".
-- Requests go round the restaurants; every request has its own Idempotency-Key
-- (nonce, thread number and a counter), so none is a retry of another.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local shops = {}
local nonce = ""
local counter = 0

function init(args)
   common.init_thread()
   nonce = args[2]
   for _, line in ipairs(common.lines(args[1])) do
      local key, items = string.match(line, "^([^\t]+)\t(.+)$")
      local ids = {}
      for id in string.gmatch(items, "[^,]+") do table.insert(ids, id) end
      table.insert(shops, {key = key, items = ids})
   end
   counter = math.random(#shops) - 1
end

function request()
   counter = counter + 1
   local shop = shops[(counter % #shops) + 1]
   local n = #shop.items
   local first = math.random(n)
   local lines = {}
   for i = 0, 2 do
      local item = shop.items[((first + i - 1) % n) + 1]
      table.insert(lines, string.format(
         '{"menu_item_id":"%s","quantity":%d}', item, math.random(3)))
   end
   local body = '{"customer_name":"Bench","items":[' .. table.concat(lines, ",") .. ']}'
   local headers = {
      ["Content-Type"] = "application/json",
      ["X-API-Key"] = shop.key,
      ["Idempotency-Key"] = string.format("%s-%d-%d", nonce, number, counter),
   }
   return wrk.format("POST", "/api/v1/orders", headers, body)
end
