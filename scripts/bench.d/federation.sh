# federation: sourced by scripts/bench with the release binaries running (RATELIMIT_RATE=off).
# Seeds the demo people and one million generated people (BEN000000001.., inside Postgres with
# generate_series; idempotent, so a second bench run reuses them), then measures the authenticated
# hot path (basic auth behind the verified-credential cache) and the search over one million.
: "${FEDERATION_URL:=http://127.0.0.1:8083}"
FED_PEOPLE=${FED_PEOPLE:-1000000}

echo "== federation: demo people and ${FED_PEOPLE} generated people"
"$BIN_DIR/federation" seed-demo | sed 's/^/   /'
started=$(date +%s.%N)
"$BIN_DIR/federation" seed-bench --people "$FED_PEOPLE" | sed 's/^/   /'
printf '   seeded in %.1f s\n' "$(echo "$(date +%s.%N) - $started" | bc)"

fed_auth() { printf 'Authorization: Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
FED_PATIENT=$(fed_auth ESPGNU777ORG gnusolidario)
FED_DOCTOR=$(fed_auth ITAPYT999HON gnusolidario)

# One warm-up request fills the credential cache (the first verification is a bcrypt check).
curl -fsS -o /dev/null -H "$FED_PATIENT" "$FEDERATION_URL/people/ESPGNU777ORG"
curl -fsS -o /dev/null -H "$FED_DOCTOR" "$FEDERATION_URL/login"

measure "federation GET /people/{id} (basic auth, 32 conn)" "$FEDERATION_URL/people/ESPGNU777ORG" -c 32 -H "$FED_PATIENT"
# The target: 5,000 requests/s at 32 connections with p99 under 10 ms.
measure_rate "federation GET /people/{id} (basic auth)" "$FEDERATION_URL/people/ESPGNU777ORG" 5000 -H "$FED_PATIENT"
measure "federation GET /login (basic auth, 32 conn)" "$FEDERATION_URL/login" -c 32 -H "$FED_DOCTOR"
measure "federation search lastname prefix (1M people)" "$FEDERATION_URL/people?lastname=garcia42&limit=20" -c 32 -H "$FED_DOCTOR"
measure "federation search name + dob (1M people)" "$FEDERATION_URL/people?name=pablo3&dob=1963-10-20" -c 32 -H "$FED_DOCTOR"
measure "federation search id prefix (1M people)" "$FEDERATION_URL/people?id=BEN00012&limit=50" -c 32 -H "$FED_DOCTOR"
# The same searches at a steady 500/s (the rows above are the ceiling, with 32 queued requests).
measure_rate "federation search lastname prefix (1M)" "$FEDERATION_URL/people?lastname=garcia42&limit=20" 500 -H "$FED_DOCTOR"
measure_rate "federation search id prefix (1M)" "$FEDERATION_URL/people?id=BEN00012&limit=50" 500 -H "$FED_DOCTOR"
