# versions: 500 versions and 5,000 artifacts (sourced by scripts/bench, the services running).
"$BIN_DIR/versions" seed-bench --versions 500 --artifacts-per-version 10 | sed 's/^/   /'
# The running process notices the write within VERSIONS_REFRESH_INTERVAL (5 s by default).
for _ in $(seq 100); do
  [ "$(curl -fsS "$VERSIONS_URL/versions" | grep -o '"major"' | wc -l)" -ge 500 ] && break
  sleep 0.2
done
echo "   GET /versions body: $(curl -fsS "$VERSIONS_URL/versions" | wc -c) bytes"
measure "versions GET /versions (500 versions)" "$VERSIONS_URL/versions"
measure "versions GET /versions gzip" "$VERSIONS_URL/versions" -H "Accept-Encoding: gzip"
measure "versions GET /versions/update-for/3.5.0" "$VERSIONS_URL/versions/update-for/3.5.0"
measure "versions GET /versions/3.5/artifacts" "$VERSIONS_URL/versions/3.5/artifacts"
