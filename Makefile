# intune-benthos: build, demo and test. Needs Go (see go.mod) and nothing else:
# modules come from the Go module proxy, SQLite is compiled in.

GO        ?= go
BIN       := bin
BINARY    := $(BIN)/intune-benthos
GRAPHSIM  := $(BIN)/graphsim
# A static binary: SQLite is modernc.org/sqlite (pure Go), no libc needed.
export CGO_ENABLED ?= 0

DEMO_DEVICES ?= 2500
DEMO_APPS    ?= 3000
DEMO_ADDR    ?= 127.0.0.1:0
DEMO_DSN     := 'file:data/intune.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)'

# A count of executions, not a duration: Go 1.26's fuzz coordinator can fail
# a target with "context deadline exceeded" when a duration runs out while a
# worker is mid-call (golang/go#75804, fixed in Go 1.27), which failed CI once
# with no failing input. 200,000 calls is about 20 s on these 2-core machines.
FUZZTIME ?= 200000x

# WireMock, an HTTP stand-in this project did not write, for the e2e tests in
# e2e/wiremock_test.go: its npm package carries the standalone jar (the
# machines run Java 17; Maven Central is not reachable from them, npm is).
WIREMOCK_VERSION := 3.13.2
WIREMOCK_DIR     := .cache/wiremock
WIREMOCK_JAR     := $(WIREMOCK_DIR)/node_modules/wiremock/build/wiremock-standalone-$(WIREMOCK_VERSION).jar

.PHONY: all build demo test configs test-config vet fmt-check deadcode fuzz microbench clean deploy-config validate-k8s

all: build

# The one build recipe, used by `make demo`, `make test`, CI and the Dockerfile.
build:
	$(GO) build -trimpath -ldflags "-s -w" -o $(BINARY) ./cmd/intune-benthos
	$(GO) build -trimpath -o $(GRAPHSIM) ./cmd/graphsim

# Builds, starts graphsim with $(DEMO_DEVICES) devices and $(DEMO_APPS)
# detected apps, runs config/sqlite.yaml (Graph beta, with details: memory,
# MACs, TPM) and config/apps-sqlite.yaml against it and prints a report of
# each. Run it twice: the row counts stay the same, because rows are
# upserted by id, and the second run fetches no details (they are kept).
demo: build
	@mkdir -p data
	@set -eu; \
	out=$$(mktemp); \
	$(GRAPHSIM) -addr $(DEMO_ADDR) -devices $(DEMO_DEVICES) -apps $(DEMO_APPS) >$$out 2>&1 & sim=$$!; \
	trap 'kill $$sim 2>/dev/null; rm -f $$out' EXIT; \
	for i in $$(seq 100); do grep -q 'listening on' $$out && break; sleep 0.1; done; \
	url=$$(sed -n 's/^graphsim listening on //p' $$out); \
	test -n "$$url" || { cat $$out; echo "graphsim did not start"; exit 1; }; \
	echo "graphsim serves $(DEMO_DEVICES) devices at $$url"; \
	export INTUNE_TENANT_ID=00000000-0000-0000-0000-0000000000aa \
	  INTUNE_CLIENT_ID=11111111-1111-1111-1111-111111111111 \
	  INTUNE_CLIENT_SECRET=graphsim-secret \
	  INTUNE_LOGIN_URL=$$url INTUNE_GRAPH_URL=$$url INTUNE_SQLITE_DSN=$(DEMO_DSN) \
	  INTUNE_API_VERSION=beta INTUNE_DETAILS=true; \
	$(BINARY) -c config/sqlite.yaml; \
	echo; echo "Report of data/intune.db (graphsim served $(DEMO_DEVICES) devices):"; \
	$(BINARY) -c config/report.yaml; \
	echo; echo "Software inventory ($(DEMO_APPS) apps in graphsim):"; \
	$(BINARY) -c config/apps-sqlite.yaml; \
	echo; echo "Software report of data/intune.db:"; \
	$(BINARY) -c config/apps-report.yaml

# The configs that repeat the managed_devices schema and the column table of
# docs/destinations.md, written from plugin/intune/schema/managed_device.tsv
# and the templates in internal/configgen/templates; and docs/reference,
# written from the components' specs. `make test` fails when a committed one
# differs (internal/configgen's test).
configs:
	$(GO) run ./internal/configgen

# The whole test suite: what CI runs (.ci/run) and what the README promises.
test: build vet fmt-check deadcode test-config validate-k8s $(WIREMOCK_JAR)
	# The race detector needs cgo (the binaries above do not).
	CGO_ENABLED=1 INTUNE_BENTHOS_BIN=$(abspath $(BINARY)) INTUNE_WIREMOCK_JAR=$(abspath $(WIREMOCK_JAR)) \
	  $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz
	# Micro-benchmarks once each, so that they keep compiling and passing;
	# `make microbench` runs them for real.
	$(GO) test -run '^$$' -bench . -benchtime 1x ./plugin/...

microbench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./plugin/...

# Each fuzz target for a short, fixed time, starting from its seed corpus in
# plugin/graph/testdata/fuzz (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParsePage$$' -fuzztime $(FUZZTIME) ./plugin/graph
	$(GO) test -run '^$$' -fuzz '^FuzzParseErrors$$' -fuzztime $(FUZZTIME) ./plugin/graph

vet:
	$(GO) vet ./...

# No function that nothing calls, tests included (golang.org/x/tools'
# deadcode, with the tests as roots: test helpers are not dead). It prints
# what it finds and exits 0, so any output fails the target.
DEADCODE_VERSION := v0.52.0
deadcode:
	@out=$$(GOFLAGS= $(GO) run golang.org/x/tools/cmd/deadcode@$(DEADCODE_VERSION) -test ./...) || exit 1; \
	if [ -n "$$out" ]; then echo "dead code:"; echo "$$out"; exit 1; fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every shipped config lints clean and its config tests pass.
test-config: build
	$(BINARY) lint config/*.yaml
	$(BINARY) test ./config/...

$(WIREMOCK_JAR):
	npm install --prefix $(WIREMOCK_DIR) --no-audit --no-fund --loglevel=error wiremock@$(WIREMOCK_VERSION)

clean:
	rm -rf $(BIN) data .cache

# The benchmark harness (bench/, its own Go module): graphsim, the binary and
# its peers side by side; writes bench/RESULTS.md and bench/results.svg.
# Scale it down with e.g. BENCH_ARGS="-sizes 10000 -runs 1 -skip msgraph".
BENCH_ARGS ?=
.PHONY: bench
bench: build
	cd bench && BENCH_ARGS="$(BENCH_ARGS)" $(GO) run ./cmd/benchrun -repo .. $(BENCH_ARGS)

# The Kubernetes manifests (deploy/kubernetes, docs/kubernetes.md). The base
# mounts a copy of config/postgres.yaml (kustomize loads no file outside a
# kustomization's directory): deploy-config refreshes it. validate-k8s (run
# by .ci/run) renders each overlay with kustomize's Go API and decodes every
# object strictly into k8s.io/api's types, with the project's checks; it
# fails while the copy differs. Its own Go module, so that the main module
# does not depend on kustomize; no cluster, no network past the module proxy.
deploy-config:
	cp config/postgres.yaml deploy/kubernetes/base/postgres.yaml

validate-k8s:
	cd deploy/kubernetes/validate && $(GO) run . && $(GO) test -count=1 ./...
