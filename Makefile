# Meridian: `make run` serves the whole stack with demo data, `make test` runs every test.
# Both install what is missing (Rust toolchain aside): PostgreSQL from Debian, aiosmtpd from PyPI.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
SERVICES := $(sort $(notdir $(wildcard services/*)))

.PHONY: help run test lint fmt bench fuzz validate migrate clean-db stop-deps deps

help:
	@echo "make run       build and start every service with demo data (Ctrl-C stops all)"
	@echo "make test      start Postgres + SMTP sink, run every test, stop them"
	@echo "make lint      cargo fmt --check and clippy -D warnings"
	@echo "make bench     load-test the stack in release mode (wrk)"
	@echo "make fuzz      schemathesis against every service's /openapi.json"
	@echo "make validate  check the Kubernetes manifests, compose file and Dockerfile"
	@echo "make migrate   apply every service's migrations to DATABASE_URL"

deps:
	@command -v cc >/dev/null || (apt-get update -qq && apt-get install -y -qq build-essential)
	@test -e /usr/include/postgresql/libpq-fe.h || (apt-get update -qq && apt-get install -y -qq libpq-dev)

# Tests get their own Postgres cluster and SMTP sink (unless DATABASE_URL / SMTP_URL are set) and
# stop them afterwards; the exit status is cargo's.
test: deps
	@db_running=0; scripts/dev-db status && db_running=1; \
	smtp_running=0; { [ -n "$${SMTP_URL:-}" ] || scripts/smtp-sink status; } && smtp_running=1; \
	db_url=$$(scripts/dev-db start); smtp_url=$${SMTP_URL:-$$(scripts/smtp-sink start)}; \
	status=0; \
	DATABASE_URL=$$db_url SMTP_URL=$$smtp_url SMTP_SINK_DIR=$(CURDIR)/.data/smtp \
	  cargo test --workspace --all-targets --no-fail-fast || status=$$?; \
	[ $$smtp_running = 1 ] || scripts/smtp-sink stop; [ $$db_running = 1 ] || scripts/dev-db stop; \
	exit $$status

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

migrate: deps
	@db_url=$$(scripts/dev-db start); cargo build -q --release $(addprefix --bin ,$(SERVICES)); \
	for s in $(SERVICES); do DATABASE_URL=$$db_url target/release/$$s migrate; done

run: deps
	@scripts/run-stack

bench: deps
	@scripts/bench

fuzz: deps
	@scripts/fuzz

validate:
	@scripts/validate
	@scripts/validate-selftest

stop-deps:
	-scripts/smtp-sink stop
	-scripts/dev-db stop

clean-db:
	scripts/dev-db destroy
