-- POST /api/registration, form-encoded as the EMR client sends it, with an address no request
-- has used before: <prefix>-<thread>-<n>@bench.example.org.
-- BENCH_PREFIX names the run; BENCH_LIMIT (optional) stops each thread after that many responses.
local prefix = os.getenv("BENCH_PREFIX") or ("r" .. os.time())
local limit = tonumber(os.getenv("BENCH_LIMIT") or "0")
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local counter = 0
local responses = 0

function request()
  counter = counter + 1
  local body = "email=" .. prefix .. "-" .. tid .. "-" .. counter .. "%40bench.example.org&version=7.0.3&distribution=bench"
  return wrk.format("POST", "/api/registration", { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
  responses = responses + 1
  if limit > 0 and responses >= limit then
    wrk.thread:stop()
  end
end
