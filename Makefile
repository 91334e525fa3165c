# s3ftpd: `make run` starts the gateway on the embedded store; `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE := $(CURDIR)/node_modules/.bin/node
RGW_STATE ?= /tmp/s3ftpd-rgw-$(shell id -u)-$(notdir $(CURDIR))
LISTEN ?= 127.0.0.1:2121
# V8 would give the main thread 2 x 64 MiB of young generation, all of it resident under load; 16 MiB
# semi-spaces cost no CPU (bench/RESULTS.md section 15). Workers get the same from src/data/pool.ts.
GATEWAY_NODE_FLAGS ?= --max-semi-space-size=16

.PHONY: all install build native run lint test test-unit typecheck test-deps soak bench clean

all: build

node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.install-stamp

build: install native
	tsc -p tsconfig.json

# make test needs the engine it tests: a failed build fails the run.
test: export NATIVE_REQUIRED := 1

# The data connections' TLS engine (native/), from source against the headers of the Node in
# node_modules, offline. Without it the gateway serves data TLS with Node's (said once in the log);
# NATIVE_REQUIRED=1 makes a failed build fatal.
native/build/Release/s3ftpd_tls.node: native/binding.gyp native/src/tls_engine.cc node_modules/.install-stamp
	bash scripts/build-native.sh

native: install native/build/Release/s3ftpd_tls.node

typecheck: install
	tsc -p tsconfig.test.json

run: build
	$(NODE) $(GATEWAY_NODE_FLAGS) dist/cli.js --listen $(LISTEN) --data-dir ./data

# ESLint with typed typescript-eslint rules over src/, test/ and bench/ (eslint.config.js): errors
# fail, warnings (function length, complexity) are only shown. LINT_ARGS="--ignore-pattern src" etc.
# ESLint, then the import picture: no arrow back up (cli → server → control → data → storage/tls →
# leaves) and no import cycle (scripts/check-imports.ts).
lint: install
	eslint $(LINT_ARGS) .
	$(NODE) scripts/check-imports.ts > /dev/null

test-deps:
	bash scripts/install-test-deps.sh

# Lints first (seconds), then starts radosgw, runs every test against it and the embedded store (data
# connections on the native TLS engine), then the data-plane tests again on Node's TLS, and always
# stops it.
NODE_TLS_TESTS ?= test/in-process test/integration/clients.test.ts test/integration/security.test.ts test/integration/upload-integrity.test.ts
test: lint build typecheck test-deps
	@status=0; \
	bash scripts/radosgw-start.sh $(RGW_STATE) || { bash scripts/radosgw-stop.sh $(RGW_STATE); exit 1; }; \
	set -a; source $(RGW_STATE)/env; set +a; \
	S3FTPD_TEST_REQUIRE_S3=1 tap || status=$$?; \
	S3FTPD_TEST_REQUIRE_S3=1 S3FTPD_TEST_TLS_ENGINE=node tap $(NODE_TLS_TESTS) || status=$$?; \
	bash scripts/radosgw-stop.sh $(RGW_STATE); \
	exit $$status

test-unit: build
	tap test/unit

# A bounded soak (default 300 s; the first third is warm-up, while V8 heap pages and Node's TLS
# allocations become resident): 1,000 idle sessions and 100 transfers cycling on the embedded store,
# bytes verified, RSS sampled, flat after warm-up. SOAK_ARGS="--duration 900" for longer, "--s3"
# with radosgw env. The gateway runs with the same node flags as `make run`.
soak: build
	$(NODE) test/soak/soak.ts --gateway-node-options="$(GATEWAY_NODE_FLAGS)" $(SOAK_ARGS)

# The bench suite (issue 3 rows 1-7), from a fresh machine: installs radosgw and vsftpd
# (scripts/install-bench-deps.sh), runs the gateway against bench/s3-sink.ts (bench/out/sink.json,
# bench/throughput.svg), the vsftpd protocol ceiling (bench/vsftpd-ceiling.ts), the passive port
# range under churn, autocannon on the HTTP endpoints, small files on the embedded store, then starts
# its own radosgw (bluestore OSD on a sparse file, own state dir and ports) for the end-to-end bench
# and 2,000 idle sessions, and always stops it. small-files and idle-sessions measure dist/. Tables on stdout. BENCH_ARGS="--runs 5" etc. goes to every bench (one --workers
# value); BENCH_GATEWAY=bench/out/REV/dist/cli.js (bench/snapshot.sh) measures that build instead.
# The client rows of issue 11 (bench/curl-transfer.ts): curl 7.88 processes and the bench client, full
# speed at 1 and 16 transfers and paced (16 x 25 MiB/s each, with the ratio to full speed), on the sink
# and on that radosgw's https port (RGW_SSL_PORT; the gateway trusts its certificate through
# NODE_EXTRA_CA_CERTS), each with both TLS engines side by side (native/ and Node's). BENCH_CURL_ARGS
# replaces the defaults of both runs (--runs 3), BENCH_CURL_HTTPS_ARGS those of the https run (adds
# --total 512MiB). The idle sessions are measured on both engines too.
BENCH_RGW_STATE ?= /tmp/s3ftpd-bench-rgw-$(shell id -u)-$(notdir $(CURDIR))
BENCH_RGW_PORT ?= 7580
BENCH_RGW_MON_PORT ?= 6889
BENCH_RGW_SSL_PORT ?= 7581
BENCH_ENGINES = --variant node=--tls-engine=node --variant native=--tls-engine=native
BENCH_CURL_ARGS ?= --runs 3
BENCH_CURL_HTTPS_ARGS ?= $(BENCH_CURL_ARGS) --total 512MiB
BENCH_GATEWAY ?=
BENCH_GW = $(or $(BENCH_GATEWAY),dist/cli.js)
BENCH_CHART ?= bench/throughput.svg
bench: $(if $(BENCH_GATEWAY),install,build)
	bash scripts/install-bench-deps.sh
	@mkdir -p bench/out
	@trap 'bash scripts/radosgw-stop.sh $(BENCH_RGW_STATE)' EXIT; set -e; \
	$(NODE) bench/transfer.ts --gateway $(BENCH_GW) $(foreach flag,$(GATEWAY_NODE_FLAGS),--gateway-node-arg=$(flag)) --runs 3 --json bench/out/sink.json $(BENCH_ARGS); \
	$(NODE) bench/chart.ts bench/out/sink.json $(BENCH_CHART); \
	$(NODE) bench/vsftpd-ceiling.ts --gateway $(BENCH_GW) --runs 3 --json bench/out/vsftpd.json $(BENCH_ARGS); \
	$(NODE) bench/port-range.ts --gateway $(BENCH_GW) --transfers 500 --rounds 5; \
	$(NODE) bench/http-load.ts --gateway $(BENCH_GW) --seconds 5; \
	$(NODE) bench/small-files.ts --seconds 8; \
	$(NODE) bench/curl-transfer.ts --gateway $(BENCH_GW) $(foreach flag,$(GATEWAY_NODE_FLAGS),--gateway-node-arg=$(flag)) --clients curl,bench $(BENCH_ENGINES) --json bench/out/curl-sink.json $(BENCH_CURL_ARGS); \
	RGW_OBJECTSTORE=bluestore RGW_PORT=$(BENCH_RGW_PORT) RGW_MON_PORT=$(BENCH_RGW_MON_PORT) RGW_SSL_PORT=$(BENCH_RGW_SSL_PORT) \
	  bash scripts/radosgw-start.sh $(BENCH_RGW_STATE); \
	set -a; source $(BENCH_RGW_STATE)/env; set +a; \
	$(NODE) bench/transfer.ts --gateway $(BENCH_GW) $(foreach flag,$(GATEWAY_NODE_FLAGS),--gateway-node-arg=$(flag)) --runs 3 --s3-endpoint "$$S3FTPD_TEST_S3_ENDPOINT" --json bench/out/radosgw.json $(BENCH_ARGS); \
	$(NODE) bench/curl-transfer.ts --gateway $(BENCH_GW) $(foreach flag,$(GATEWAY_NODE_FLAGS),--gateway-node-arg=$(flag)) --clients curl,bench \
	  --s3-endpoint "$$S3FTPD_TEST_S3_HTTPS_ENDPOINT" --s3-ca "$$S3FTPD_TEST_S3_CA" $(BENCH_ENGINES) --json bench/out/curl-https.json $(BENCH_CURL_HTTPS_ARGS); \
	for engine in node native; do NODE_OPTIONS="$(GATEWAY_NODE_FLAGS)" $(NODE) bench/idle-sessions.ts --sessions 2000 --settle 30 --gateway $(BENCH_GW) --gateway-arg=--tls-engine=$$engine; done

clean:
	rm -rf dist .tap native/build
