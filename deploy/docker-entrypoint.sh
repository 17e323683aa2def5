#!/bin/sh
# Entrypoint of the Meridian image: `docker run IMAGE <binary> [serve|migrate|...]`.
# In a container a service must listen on every interface, so when BIND is unset it defaults to
# 0.0.0.0:<the binary's own port>. Then the binary replaces this shell (exec), as PID 1.
set -eu
if [ -z "${BIND:-}" ]; then
    case "${1:-}" in
        discovery) BIND=0.0.0.0:8081 ;;
        versions) BIND=0.0.0.0:8082 ;;
        federation) BIND=0.0.0.0:8083 ;;
        registration) BIND=0.0.0.0:8084 ;;
        messaging) BIND=0.0.0.0:8085 ;;
    esac
    if [ -n "${BIND:-}" ]; then
        export BIND
    fi
fi
exec "$@"
