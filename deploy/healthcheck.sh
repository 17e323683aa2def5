#!/bin/bash
# Container health check without curl: GET /running (liveness) on the service in this container,
# over bash's /dev/tcp. The port comes from BIND when set, else from the binary running as PID 1
# (the same defaults as docker-entrypoint.sh). Exit 0 only on an HTTP 200.
#   healthcheck [PATH]   (default /running; e.g. `healthcheck /ready`)
set -u
path="${1:-/running}"
port=""
if [ -n "${BIND:-}" ]; then
    port="${BIND##*:}"
else
    read -r -d '' bin < /proc/1/cmdline || true
    case "${bin##*/}" in
        discovery) port=8081 ;;
        versions) port=8082 ;;
        federation) port=8083 ;;
        registration) port=8084 ;;
        messaging) port=8085 ;;
    esac
fi
if [ -z "$port" ]; then
    echo "healthcheck: cannot tell the port (set BIND)" >&2
    exit 1
fi
if ! exec 3<>"/dev/tcp/127.0.0.1/${port}"; then
    echo "healthcheck: nothing listens on 127.0.0.1:${port}" >&2
    exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: meridian-healthcheck\r\nConnection: close\r\n\r\n' "$path" >&3
status=""
read -r -t 5 status <&3 || true
exec 3<&-
case "$status" in
    "HTTP/1."[01]" 200"*) exit 0 ;;
    *) echo "healthcheck: ${path} answered: ${status:-nothing}" >&2; exit 1 ;;
esac
