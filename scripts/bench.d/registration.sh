# registration: sourced by scripts/bench with the release binaries running (RATELIMIT_RATE=off, so
# the per-address registration limit is off too). Registers 10,000 addresses through the API,
# broadcasts to them and counts what the SMTP sink received, then measures the endpoints.
: "${REGISTRATION_URL:=http://127.0.0.1:8084}"
REG_LUA=scripts/bench.d/registration-register.lua
REG_PIN=meridian-demo-pin  # the dev-mode default (no REGISTRATION_BROADCAST_PIN_HASH)
REG_RUN=b$(date +%s)

echo "== registration: 10,000 registrations, one broadcast through the SMTP sink"
started=$(date +%s.%N)
# wrk threads stop after 5,000 responses each (a few in flight may land beyond that); wrk itself
# only exits at -d, so watch the table and stop it once the 10,000 are in.
BENCH_PREFIX="${REG_RUN}s" BENCH_LIMIT=5000 wrk -t2 -c32 -d120s -s "$REG_LUA" "$REGISTRATION_URL/api/registration" >/dev/null 2>&1 &
reg_wrk=$!
registered=0
for _ in $(seq 1200); do
  registered=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM registration.registrations WHERE email LIKE '${REG_RUN}s-%'" || echo 0)
  [ "$registered" -ge 10000 ] && break
  kill -0 "$reg_wrk" 2>/dev/null || break
  sleep 0.1
done
reg_secs=$(echo "$(date +%s.%N) - $started" | bc)
kill "$reg_wrk" 2>/dev/null || true
wait "$reg_wrk" 2>/dev/null || true
registered=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM registration.registrations WHERE email LIKE '${REG_RUN}s-%'" || echo 0)
printf '  registered %s addresses in %.1f s\n' "$registered" "$reg_secs"

sink_count() { { find "$SMTP_SINK_DIR" -maxdepth 1 -name "*-${REG_RUN}s-*" 2>/dev/null || true; } | wc -l; }
started=$(date +%s.%N)
reply=$(curl -fsS -d "secretPin=$REG_PIN" -d "title=Bench $REG_RUN" --data-urlencode "contents=Benchmark broadcast.

Please ignore." "$REGISTRATION_URL/api/registration/broadcast") || reply="(broadcast refused)"
queued_secs=$(echo "$(date +%s.%N) - $started" | bc)
broadcast_id=$(sed -n 's/.*"broadcastId":"\([^"]*\)".*/\1/p' <<<"$reply")
recipients=$(sed -n 's/.*"recipients":\([0-9]*\).*/\1/p' <<<"$reply")
printf '  broadcast %s queued for %s recipients in %.2f s\n' "$broadcast_id" "$recipients" "$queued_secs"
delivered=0
for _ in $(seq 900); do
  delivered=$(sink_count)
  [ "$delivered" -ge "$registered" ] && break
  sleep 0.2
done
send_secs=$(echo "$(date +%s.%N) - $started" | bc)
status=$(curl -fsS -H "X-Secret-Pin: $REG_PIN" "$REGISTRATION_URL/api/registration/broadcast/$broadcast_id" || true)
printf '  %s of %s bench addresses received it at the sink, %.1f s after POST (%.0f messages/s); status %s\n' \
  "$delivered" "$registered" "$send_secs" "$(echo "$delivered / $send_secs" | bc -l)" "$status"

BENCH_PREFIX="${REG_RUN}m" measure "registration POST /api/registration (unique)" "$REGISTRATION_URL/api/registration" -s "$REG_LUA"
measure "registration GET /api/registration/unique" "$REGISTRATION_URL/api/registration/unique"
measure "registration GET /" "$REGISTRATION_URL/"
