# credsync — see README.md. `make demo` shows the operator at work; `make test` runs every check.

CONTROLLER_TOOLS_VERSION ?= v0.23.0
GOLANGCI_LINT_VERSION ?= v2.15.0
# VERSION is the version the plugin reports and its release archives carry.
VERSION ?= v0.1.0
PLUGIN_LDFLAGS = -s -w -X github.com/credsync/credsync/internal/plugin.Version=$(VERSION)
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint
GO ?= go
# One set of build flags for everything make builds, runs and tests (the
# manager, the plugin, the demo, go run, test binaries and what they build,
# go vet's and the linters' package loads), so that each package compiles
# once: the image's and release's flags, a static build without the
# builder's paths. Only the race detector, which needs cgo, builds its own
# (instrumented) copy.
export CGO_ENABLED = 0
export GOFLAGS := $(strip $(filter-out -trimpath,$(GOFLAGS)) -trimpath)
# Go test timeout for the whole suite.
TEST_TIMEOUT ?= 20m

.PHONY: all
all: build

##@ Development

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint (.golangci.yml: govet, staticcheck, errcheck, ineffassign, unused, misspell, revive, gocritic, gosec).
	$(GOLANGCI_LINT) run ./...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the API types and markers.
	$(CONTROLLER_GEN) rbac:roleName=credsync-manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@$(MAKE) -s helm-sync

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate DeepCopy methods; copy docs/troubleshooting.md into the plugin (go:embed).
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	cp docs/troubleshooting.md internal/plugin/troubleshooting.md

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...

.PHONY: verify-generated
verify-generated: ## Fail when generated code or CRDs are stale (regenerates them).
	@bash hack/verify-generated.sh

.PHONY: verify-fmt
verify-fmt: ## Fail when gofmt would change a file.
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

.PHONY: envtest
envtest: ## Build (once) and print the envtest assets directory.
	@bash hack/setup-envtest.sh | tail -n 1

# make test (hack/test.sh): first, one after another, the checks that
# compile every package (vet compiles them all, for the rest to reuse);
# then three lanes at once, for the tests spend most of their time waiting
# on control planes and processes, not on the CPU:
#   test-unit, helm-lint, test-e2e  |  demo-check  |  lint, test-race
# the third (CPU-bound) at a lower CPU priority. It prints each step's wall
# and CPU time, and a table of them at the end (docs/benchmarks.md).
.PHONY: test
test: ## Run every check: generated files and docs, gofmt, vet, lint, unit and envtest tests, the race detector over internal/, helm lint, the end-to-end suite, demo smoke run.
	@MAKE="$(MAKE)" bash hack/test.sh

# The packages whose code runs concurrently in the manager (the accounts
# and their read store, the request gate, the vendor clients and fakes, the
# metrics collectors, the backoff): their tests run under the race
# detector, by test-race, and not plainly by test-unit as well. The rest
# of internal/ (the kubectl plugin, the test helpers, the sample data) runs
# nothing concurrently to race, and would bring the test control plane's
# packages (apiserver, grpc, otel) and kustomize into the race detector's
# copy: about 150 more packages compiled twice (docs/benchmarks.md).
RACE_PACKAGES ?= ./internal/account/... ./internal/backoff/... ./internal/metrics/... ./internal/vendors/...
# go test runs no vet of its own in these targets: make test runs go vet
# over every package, tests included, and golangci-lint's govet.
GO_TEST = KUBEBUILDER_ASSETS="$$(bash hack/setup-envtest.sh | tail -n 1)" $(GO) test -vet=off -timeout $(TEST_TIMEOUT)

.PHONY: test-unit
test-unit: $(KUSTOMIZE) $(HELM) ## Run the Go tests but the end-to-end suite and test-race's: unit, envtest, fuzz seeds, deploy, plugin, monitoring and config checks.
	$(GO_TEST) $$($(GO) list ./... | grep -v /test/e2e | grep -vxF "$$($(GO) list $(RACE_PACKAGES))")

.PHONY: test-race
test-race: ## Run the tests of RACE_PACKAGES (accounts, read store, gate, vendor clients, metrics, backoff) under the race detector, which needs cgo.
	CGO_ENABLED=1 $(GO_TEST) -race $(RACE_PACKAGES)

.PHONY: test-e2e
test-e2e: ## Run the end-to-end suite: the real manager binary, kubectl, a separate fake-vendors process, failover.
	$(GO_TEST) -count=1 ./test/e2e/...

# Fuzzing time per target for make fuzz.
FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (30s); FUZZ=regexp picks targets. Stops at the first failure.
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" FUZZ="$(FUZZ)" bash hack/fuzz.sh

##@ Build and run

.PHONY: build
build: build-manager build-plugin ## Build the manager (bin/manager) and the kubectl plugin (bin/kubectl-credsync: PATH=$$PWD/bin:$$PATH kubectl credsync).

.PHONY: build-manager build-plugin
build-manager:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/manager .
build-plugin:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(PLUGIN_LDFLAGS)" -o $(LOCALBIN)/kubectl-credsync ./cmd/kubectl-credsync

.PHONY: plugin-dist
plugin-dist: ## Build the kubectl plugin's release archives (linux/darwin × amd64/arm64; PLATFORMS=os/arch... for some) and the Krew manifest with their checksums into dist/.
	VERSION=$(VERSION) LDFLAGS="$(PLUGIN_LDFLAGS)" DIST=$(or $(DIST),dist) PLATFORMS="$(PLATFORMS)" GO=$(GO) bash hack/plugin-dist.sh

.PHONY: release-check
release-check: ## Before a release: build the plugin's archives for all four platforms, twice (two umasks), and check they are the same bytes and the Krew manifest names them right (make test does the host's only).
	$(GO) vet -tags release ./test/plugin/
	$(GO) test -tags release -count=1 -timeout $(TEST_TIMEOUT) -run '^TestReleaseArchives$$' ./test/plugin/

.PHONY: run
run: ## Run the manager against the current kubeconfig's cluster.
	$(GO) run . --leader-elect=false

.PHONY: demo
demo: ## Start a local control plane, fake vendors and the manager; apply config/samples; show the result. Ctrl-C stops it all.
	GO=$(GO) LOCALBIN=$(LOCALBIN) bash hack/demo.sh

.PHONY: demo-check
demo-check: ## Run the demo once, non-interactively, and fail unless every sample that should be Ready is.
	GO=$(GO) LOCALBIN=$(LOCALBIN) bash hack/demo.sh --once

.PHONY: bench
bench: build ## Benchmark the manager against the floor of its job (N=1000 and 10000), tenant fairness and a restart over failing credentials (~50 min; BENCH_ARGS="--only failing" (or fleet, tenancy, inventory) for one table); see docs/benchmarks.md.
	$(GO) build -o $(LOCALBIN)/bench ./hack/bench
	$(LOCALBIN)/bench --manager $(LOCALBIN)/manager $(BENCH_ARGS)

include hack/make/deploy.mk
include hack/make/tools.mk

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
include hack/make/docs.mk
