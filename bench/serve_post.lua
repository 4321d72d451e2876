-- wrk script for bench/serve.py: POSTs one fixed JSON body on every request
-- and prints a one-line JSON summary when the run ends.
--
--   wrk -t2 -c64 -d10s -s bench/serve_post.lua URL -- BODY.json
--
-- The summary line starts with "SERVE_BENCH " followed by a JSON object:
-- requests, duration_us, bytes, latency percentiles in microseconds
-- (p50, p90, p99, p999, max, mean) and the error counts wrk keeps
-- (connect, read, write, timeout; status = responses with a status above
-- 399). bench/serve.py reads that line; the rest of wrk's output is for
-- people.

local body_file = nil

function init(args)
   body_file = args[1]
   if body_file == nil then
      error("usage: wrk ... -s serve_post.lua URL -- BODY.json")
   end
   local f = assert(io.open(body_file, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   local line = string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max, latency.mean,
      e.connect, e.read, e.write, e.timeout, e.status)
   io.write("SERVE_BENCH " .. line .. "\n")
end
