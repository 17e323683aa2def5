# syntax=docker/dockerfile:1
# One image, five services: the command picks the binary, e.g.
#   docker run IMAGE discovery            (serve is the default subcommand)
#   docker run IMAGE versions migrate
# Build: docker build --build-arg MERIDIAN_GIT_COMMIT="$(git rev-parse --short HEAD)" \
#          --build-arg MERIDIAN_BUILD_TIME="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t meridian:local .

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
# libpq for diesel's postgres backend.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Compiled into GET /version (option_env! in crates/platform); .git is not in the build context.
ARG MERIDIAN_GIT_COMMIT=unknown
ARG MERIDIAN_BUILD_TIME=unknown
ENV MERIDIAN_GIT_COMMIT=${MERIDIAN_GIT_COMMIT} \
    MERIDIAN_BUILD_TIME=${MERIDIAN_BUILD_TIME}
# The cache mounts keep the registry and target/ between builds (BuildKit); the binaries are copied
# out of the mounted target/ so the next stage can take them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --workspace \
    && mkdir -p /out \
    && for bin in discovery versions federation registration messaging; do \
           cp "target/release/${bin}" /out/ || exit 1; \
       done

FROM ${RUNTIME_IMAGE} AS runtime
# Versions are not pinned: Debian's security updates replace them in the archive (see .hadolint.yaml).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 meridian \
    && useradd --system --uid 10001 --gid meridian --no-create-home --home-dir /nonexistent \
               --shell /usr/sbin/nologin meridian
COPY --from=builder /out/ /usr/local/bin/
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/healthcheck
# Numeric ids so Kubernetes' runAsNonRoot can check them.
USER 10001:10001
ENV MODE=prod \
    LOG_FORMAT=json \
    RUN_MIGRATIONS=false
EXPOSE 8081 8082 8083 8084 8085
# GET /running on the port of the binary that runs (BIND, else its default), without curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/healthcheck"]
# Graceful shutdown takes up to 30 s after SIGTERM: give `docker stop` longer (-t 35 / stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]
CMD ["discovery", "serve"]
