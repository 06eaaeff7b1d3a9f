-- HTTP/1.1 pipelining for wrk: every write on a connection carries `depth`
-- GET / requests back to back (default 16, or the first argument after the
-- URL), and the next write goes out once all their answers are in. wrk counts
-- the requests in what request() returns, so every response is counted.
--
--   wrk -t1 -c64 -d8s --latency -s bench/wrk/pipeline.lua http://127.0.0.1:8000/ 16

local batch

init = function(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format(nil, "/")
   end
   batch = table.concat(requests)
end

request = function()
   return batch
end
