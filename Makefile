# postback — `make run` starts the whole program, `make test` runs the suite.
GO      ?= go
BIN     := bin/postback
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/postbackhq/postback/internal/version.Version=$(VERSION)

.PHONY: all build run test test-short bench test-faults fuzz lint fmt docs clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/postback

## run: embedded Redis + demo partner (sink) + sample config; Ctrl-C stops both.
run: build
	@scripts/demo.sh $(BIN)

## test: the whole suite, integration tests on a real redis-server when one is on PATH.
test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -race -count=1 -timeout 12m ./...

test-short:
	$(GO) test -count=1 ./...

## bench: speed as ratios against baselines measured in the same run, on a
## real redis-server started for it; writes BENCHMARKS.md.
BENCH_DURATION ?= 6s
BENCH_ROUNDS ?= 3
bench: build
	@GO=$(GO) scripts/bench.sh $(BIN) $(BENCH_DURATION) $(BENCH_ROUNDS)

## test-faults: kill -9, SIGTERM, SIGSTOP, flapping partners, Sentinel and
## Cluster, on real redis-server and postback processes.
test-faults:
	$(GO) test -tags faults -count=1 -timeout 20m -v ./faults/

## fuzz: a minute on the URL context ("host and scheme never change").
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRenderURL -fuzztime 60s ./templates

lint:
	$(GO) vet ./...
	gofmt -l $$(git ls-files '*.go')

fmt:
	gofmt -w $$(git ls-files '*.go')

## docs: regenerate docs/partners.md from the preset definitions.
docs:
	$(GO) generate ./internal/presets/

clean:
	rm -rf bin
