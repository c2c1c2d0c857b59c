# bedrud — developer entry points. Every target builds what it needs.
#   make run    build the web client, bedrud (and livekit-server if missing) and run the daemon
#               on embedded defaults
#   make test   every test, with a real livekit-server, real LiveKit clients and a real systemd
#   make bench  benchmarks (prints figures, writes target/bench/results.json)
#   make deb    the Debian package in target/debian/
#   make fuzz   coverage-guided fuzzers (cargo-fuzz, nightly), FUZZ_SECONDS per target
#   make api-types  rewrite web/openapi.json and the web client's API types from the handlers

SHELL := /bin/bash
CARGO ?= cargo
LIVEKIT_VERSION ?= v1.13.5
LIVEKIT_OLD_VERSION ?= v1.9.12

.PHONY: all build release api-types run test test-rust test-nix test-appliance bench deb livekit test-env web clean

all: build

# The web client (web/dist), embedded into the binary at compile time: build it first.
web:
	scripts/build-web

build: web
	$(CARGO) build

release: web
	$(CARGO) build --release

# The OpenAPI document (from the handlers' annotations) and the web client's types made from it;
# the API tests fail while the committed copies differ from what the code describes.
api-types: release
	$$(scripts/target-dir)/release/bedrud openapi > web/openapi.json
	cd web && node_modules/.bin/openapi-typescript openapi.json -o src/api.gen.ts

livekit:
	scripts/install-livekit $(LIVEKIT_VERSION)

# Runs the daemon with no config file: embedded LiveKit, state in ./data. On a new install
# the daemon logs a one-time /setup?token=... link that creates the first administrator.
run: release
	@lk="$$(scripts/install-livekit $(LIVEKIT_VERSION) | tail -n 1)"; \
	echo "bedrud: open http://127.0.0.1:8090/ (first run: use the /setup?token=... link logged below)"; \
	BEDRUD_LIVEKIT_BINARY="$$lk" exec "$$(scripts/target-dir)/release/bedrud" run

test-env:
	scripts/install-livekit $(LIVEKIT_VERSION)
	scripts/install-livekit $(LIVEKIT_OLD_VERSION)
	scripts/install-egress
	scripts/install-pebble
	scripts/setup-test-env
	scripts/setup-s3-server

test-rust: test-env web
	BEDRUD_TEST_LIVEKIT="$$(scripts/install-livekit $(LIVEKIT_VERSION) | tail -n 1)" \
	BEDRUD_TEST_LIVEKIT_OLD="$$(scripts/install-livekit $(LIVEKIT_OLD_VERSION) | tail -n 1)" \
	BEDRUD_TEST_PYTHON="$$(scripts/setup-test-env | tail -n 1)" \
	BEDRUD_TEST_EGRESS="$$(scripts/install-egress | tail -n 1)" \
	BEDRUD_TEST_S3_PYTHON="$$(scripts/setup-s3-server | tail -n 1)" \
	BEDRUD_TEST_PEBBLE="$$(scripts/install-pebble | tail -n 1)" \
	$(CARGO) test --release -- --test-threads=2

test-appliance: deb
	scripts/appliance-test

# This machine has no nixpkgs: check that every Nix file parses.
test-nix:
	@for f in flake.nix nix/*.nix; do nix-instantiate --parse "$$f" >/dev/null || exit 1; echo "parsed $$f"; done

test: test-rust test-nix test-appliance

bench: release
	scripts/bench

fuzz:
	scripts/fuzz

deb:
	scripts/build-deb

clean:
	$(CARGO) clean
