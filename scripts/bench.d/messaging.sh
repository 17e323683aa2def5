# messaging: 100,000 stored messages, then POST /dhos/v2/message and a receiver's active list at 32
# connections, and one 10,000-message conversation listed page by page (sourced by scripts/bench).
"$BIN_DIR/messaging" seed-bench --messages 100000 | sed 's/^/   /'
MESSAGING_BENCH_TOKEN=$("$BIN_DIR/messaging" token --system-id bench --scope "read:gdm_message write:gdm_message" --ttl 3600)
export MESSAGING_BENCH_TOKEN
auth=(-H "Authorization: Bearer $MESSAGING_BENCH_TOKEN")
measure "messaging POST /dhos/v2/message (c32)" "$MESSAGING_URL/dhos/v2/message" -c 32 \
  -s scripts/bench.d/messaging-post.lua
measure "messaging GET receiver active list (c32)" "$MESSAGING_URL/dhos/v1/receiver/bench-ward-3/active/message" \
  -c 32 "${auth[@]}"
measure "messaging GET receiver active list limit=20 (c32)" \
  "$MESSAGING_URL/dhos/v1/receiver/bench-ward-3/active/message?limit=20" -c 32 "${auth[@]}"
# The targets: each at 3,000 requests/s over 32 connections with p99 under 15 ms.
measure_rate "messaging POST /dhos/v2/message" "$MESSAGING_URL/dhos/v2/message" 3000 "${auth[@]}" --method POST \
  --body '{"sender":"bench-poster-1","sender_type":"patient","receiver":"bench-ward-4","receiver_type":"location","message_type":{"value":0},"content":"paced bench message"}'
measure_rate "messaging GET receiver active list" "$MESSAGING_URL/dhos/v1/receiver/bench-ward-3/active/message" 3000 \
  "${auth[@]}"
# A 10,000-message conversation, every page of 500.
start=$(date +%s%N)
offset=0 pages=0 total=0
while :; do
  n=$(curl -fsS "${auth[@]}" \
    "$MESSAGING_URL/dhos/v1/sender_or_receiver/bench-patient-chatty/message?limit=500&offset=$offset" \
    | { grep -o '"uuid"' || true; } | wc -l)
  total=$((total + n)) pages=$((pages + 1)) offset=$((offset + 500))
  [ "$n" -lt 500 ] && break
done
printf '%-48s %12s messages in %d pages: %d ms\n' "messaging conversation listed (all pages)" "$total" "$pages" \
  $(( ($(date +%s%N) - start) / 1000000 ))
