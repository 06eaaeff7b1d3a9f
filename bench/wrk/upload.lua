-- Large uploads for wrk: every request is a POST / with an 8 MiB body
-- (or as many bytes as the first argument after the URL says), the same
-- bytes every time.
--
--   wrk -t1 -c64 -d8s --latency -s bench/wrk/upload.lua http://127.0.0.1:8000/ 8388608

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"

init = function(args)
   -- wrk builds its request from wrk.method, wrk.headers and wrk.body right
   -- after init(): the body set here is in it, with its Content-Length.
   wrk.body = string.rep("x", tonumber(args[1]) or 8 * 1024 * 1024)
end
