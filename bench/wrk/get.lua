-- GET requests. Arguments (after "--"): [paths_file [api_key]].
-- With a paths file, every request takes a random line of it as its path and query.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
local paths = nil

function init(args)
   common.init_thread()
   if args[1] ~= nil and args[1] ~= "" then paths = common.lines(args[1]) end
   if args[2] ~= nil and args[2] ~= "" then wrk.headers["X-API-Key"] = args[2] end
end

function request()
   local path = wrk.path
   if paths ~= nil then path = paths[math.random(#paths)] end
   return wrk.format("GET", path)
end
