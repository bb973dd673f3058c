# berth: `make demo` shows the main job end to end; `make test` runs every test.
GO ?= go
BIN := bin/berth
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GIT_COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%S.000000000+00:00)
export CGO_ENABLED := 0

.PHONY: all build deps test unit fuzz suites demo bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.gitCommit=$(GIT_COMMIT) -X main.buildTime=$(BUILD_TIME)" -o $(BIN) ./cmd/berth

# deps installs the Debian packages tests and the demo need (idempotent).
deps:
	bash scripts/deps.sh

unit:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

# fuzz runs every Go fuzz target for a few seconds each.
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# suites runs the scripted suites (registry conformance, end-to-end through the docker CLI).
suites: build
	@set -e; for s in test/suites/*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s"; done

test: deps build unit fuzz suites

demo: deps build
	bash scripts/demo.sh

bench: deps build
	bash bench/run-latency

clean:
	rm -rf bin
