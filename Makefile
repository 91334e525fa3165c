# s3ftpd: `make run` starts the gateway on the embedded store; `make test` runs every test.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE := $(CURDIR)/node_modules/.bin/node
RGW_STATE ?= /tmp/s3ftpd-rgw-$(shell id -u)-$(notdir $(CURDIR))
LISTEN ?= 127.0.0.1:2121

.PHONY: all install build run test test-unit typecheck test-deps soak bench clean

all: build

node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.install-stamp

build: install
	tsc -p tsconfig.json

typecheck: install
	tsc -p tsconfig.test.json

run: build
	$(NODE) dist/cli.js --listen $(LISTEN) --data-dir ./data

test-deps:
	bash scripts/install-test-deps.sh

# Starts radosgw, runs every test against it and the embedded store, and always stops it.
test: build typecheck test-deps
	@status=0; \
	bash scripts/radosgw-start.sh $(RGW_STATE) || { bash scripts/radosgw-stop.sh $(RGW_STATE); exit 1; }; \
	set -a; source $(RGW_STATE)/env; set +a; \
	S3FTPD_TEST_REQUIRE_S3=1 tap || status=$$?; \
	bash scripts/radosgw-stop.sh $(RGW_STATE); \
	exit $$status

test-unit: build
	tap test/unit

# A bounded soak (default 60 s): 1,000 idle sessions and 100 transfers cycling on the embedded
# store, bytes verified, RSS sampled. SOAK_ARGS="--duration 300" for longer, "--s3" with radosgw env.
soak: build
	$(NODE) test/soak/soak.ts $(SOAK_ARGS)

# Bulk-transfer bench (issue 3 rows 1-2): the gateway against bench/s3-sink.ts, then against the S3 of
# $$S3FTPD_TEST_S3_ENDPOINT when set (`. /tmp/s3ftpd-rgw/env`). Tables on stdout; BENCH_ARGS="--runs 5" etc.
bench: build
	@mkdir -p bench/out
	$(NODE) bench/transfer.ts --runs 3 --json bench/out/sink.json $(BENCH_ARGS)
	$(NODE) bench/chart.ts bench/out/sink.json bench/throughput.svg
	@if [ -n "$$S3FTPD_TEST_S3_ENDPOINT" ]; then \
	  $(NODE) bench/transfer.ts --runs 3 --s3-endpoint "$$S3FTPD_TEST_S3_ENDPOINT" $(BENCH_ARGS); \
	else echo "S3FTPD_TEST_S3_ENDPOINT not set: radosgw comparison skipped"; fi

clean:
	rm -rf dist .tap
