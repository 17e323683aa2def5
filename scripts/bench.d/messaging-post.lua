-- POST /dhos/v2/message with a system token from MESSAGING_BENCH_TOKEN; a fresh body each time.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MESSAGING_BENCH_TOKEN")
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"sender":"bench-poster-%d","sender_type":"patient","receiver":"bench-ward-%d","receiver_type":"location",' ..
    '"message_type":{"value":%d},"content":"bench message %d"}', n % 1000, n % 10, (n % 4), n)
  return wrk.format(nil, nil, nil, body)
end
