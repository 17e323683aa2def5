# discovery: sourced by scripts/bench with the release binaries running (RATELIMIT_RATE=off).
# Seeds 100 listed servers (idempotent), waits until the in-memory list holds them (the running
# service hears the insert through LISTEN/NOTIFY), then measures the mobile app's hot path beside
# the same build's /running.
: "${DISCOVERY_URL:=http://127.0.0.1:8081}"

echo "== discovery: 100 servers"
"$BIN_DIR/discovery" seed-bench --servers 100 | sed 's/^/   /'
for _ in $(seq 100); do
  [ "$(curl -fsS "$DISCOVERY_URL/servers" | grep -o '"id"' | wc -l)" -ge 100 ] && break
  sleep 0.1
done
printf '   GET /servers: %s servers, %s bytes\n' \
  "$(curl -fsS "$DISCOVERY_URL/servers" | grep -o '"id"' | wc -l)" "$(curl -fsS "$DISCOVERY_URL/servers" | wc -c)"
DISCOVERY_ETAG=$(curl -fsSI "$DISCOVERY_URL/servers" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')

disc_rps() { awk '{for (i = 1; i <= NF; i++) if ($i == "req/s") print $(i-1)}'; }
line_running=$(measure "discovery GET /running (ceiling)" "$DISCOVERY_URL/running")
echo "$line_running"
line_servers=$(measure "discovery GET /servers (100 servers)" "$DISCOVERY_URL/servers")
echo "$line_servers"
measure "discovery GET /servers If-None-Match (304)" "$DISCOVERY_URL/servers" -H "If-None-Match: $DISCOVERY_ETAG"
measure "discovery GET /statuses (c16)" "$DISCOVERY_URL/statuses" -c 16
measure "discovery GET /status page (c16)" "$DISCOVERY_URL/status" -c 16
awk -v s="$(disc_rps <<<"$line_servers")" -v r="$(disc_rps <<<"$line_running")" \
  'BEGIN { if (r > 0) printf "   GET /servers at %.0f%% of /running\n", 100 * s / r }'
