-- Shared by the bench's wrk scripts: counts non-2xx answers in every thread and prints one
-- summary line that bench/raw_limits.py parses. A script loads it when wrk loads the script (in
-- the main state too, where setup and done run), from the directory in BENCH_WRK_DIR:
--   local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local threads = {}

function setup(thread)
   thread:set("number", #threads + 1)
   table.insert(threads, thread)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_error == "" then
         first_error = status .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

function done(summary, latency, requests)
   local bad, sample = 0, ""
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("non2xx")
      local err = thread:get("first_error")
      if sample == "" and err ~= nil then sample = err end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "BENCH rps=%.2f p50_ms=%.3f p99_ms=%.3f requests=%d non2xx=%d socket_errors=%d\n",
      summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      summary.requests, bad, e.connect + e.read + e.write + e.timeout))
   if sample ~= "" then
      io.write("BENCH-FIRST-ERROR " .. string.gsub(sample, "\n", " ") .. "\n")
   end
end

local common = {}

-- Per-thread state: counters and a random generator seeded differently in every thread
-- (wrk threads have separate Lua states that would otherwise draw the same numbers).
function common.init_thread()
   non2xx = 0
   first_error = ""
   math.randomseed(os.time() * 1000 + number * 7919 + math.floor(os.clock() * 1e6))
end

function common.lines(path)
   local out = {}
   for line in io.lines(path) do
      if line ~= "" then table.insert(out, line) end
   end
   return out
end

return common
