# runagent — common tasks. `make help` lists them.
GO        ?= go
BIN       ?= bin/runagent
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/runagent/runagent/internal/cli.Version=$(VERSION)

.PHONY: help build demo test fuzz bench bench-quick bench-go screenshots clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/runagent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/runagent

demo: ## serve examples/hello on the embedded store and call it (scripts/demo.sh)
	./scripts/demo.sh

test: ## install test dependencies, then vet and run every test with -race (scripts/test.sh)
	./scripts/test.sh

fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@scripts/fuzz.sh $${FUZZTIME:-20s}

bench: ## run the benchmark suite beside its baselines and write BENCHMARKS.md (a few minutes)
	$(GO) run ./cmd/benchreport -o BENCHMARKS.md

bench-quick: ## the same suite, one short run each, printed (a smoke test CI can afford)
	$(GO) run ./cmd/benchreport -quick -o -

bench-go: ## every Go benchmark in the tree, raw
	$(GO) test -run '^$$' -bench . -benchmem ./...

screenshots: ## regenerate docs/console/*.png, the console's views with demo data (needs chromium; root for the memory view)
	$(GO) test ./internal/console -run '^TestScreenshots(OIDC)?$$' -count=1 -args -screenshots=$(CURDIR)/docs/console

clean:
	rm -rf bin .demo-data
