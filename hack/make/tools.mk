# Tools make builds from Go modules (controller-gen, golangci-lint, helm,
# kustomize, crd-ref-docs), included by the Makefile. Each is built once per machine into
# the tools cache, beside the envtest assets, and linked from bin/: a fresh
# clone links what the machine already has, and a new version (or a new Go
# release: golangci-lint refuses code for a newer Go than its own) is built
# once, beside the old one.
#   $(TOOLS_CACHE)/<name>-<version>-<go version>/<name>  ←  bin/<name>

# CREDSYNC_CACHE is hack/setup-envtest.sh's cache root too.
CREDSYNC_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/credsync
TOOLS_CACHE ?= $(CREDSYNC_CACHE)/tools
TOOLS_GO_VERSION := $(shell $(GO) env GOVERSION)

# tool-path is the cached binary of tool $(1) at version $(2).
tool-path = $(TOOLS_CACHE)/$(1)-$(2)-$(TOOLS_GO_VERSION)/$(1)

# go-install-tool builds $(2) (package@version) into the tools cache as $(1):
# into a temporary directory beside it first, so that a build cut short
# leaves nothing, and two builds at once leave one whole binary.
define go-install-tool
@set -e; mkdir -p "$(TOOLS_CACHE)"; \
tmp="$$(mktemp -d "$(TOOLS_CACHE)/.build.XXXXXX")"; trap 'rm -rf "$$tmp"' EXIT; \
echo "building $(2) into $(dir $(1)) (once per machine)" >&2; \
GOBIN="$$tmp" $(GO) install $(2); \
mkdir -p "$(dir $(1))"; mv -f "$$tmp/$(notdir $(1))" "$(1)"
endef

CONTROLLER_GEN_CACHED := $(call tool-path,controller-gen,$(CONTROLLER_TOOLS_VERSION))
GOLANGCI_LINT_CACHED := $(call tool-path,golangci-lint,$(GOLANGCI_LINT_VERSION))
KUSTOMIZE_CACHED := $(call tool-path,kustomize,$(KUSTOMIZE_VERSION))
HELM_CACHED := $(call tool-path,helm,$(HELM_VERSION))
# crd-ref-docs writes docs/api.md (hack/make/docs.mk, read after this file,
# so its version is pinned here).
CRD_REF_DOCS_VERSION ?= v0.3.0
CRD_REF_DOCS_CACHED := $(call tool-path,crd-ref-docs,$(CRD_REF_DOCS_VERSION))

$(CONTROLLER_GEN_CACHED):
	$(call go-install-tool,$@,sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION))
$(GOLANGCI_LINT_CACHED):
	$(call go-install-tool,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION))
$(KUSTOMIZE_CACHED):
	$(call go-install-tool,$@,sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION))
$(HELM_CACHED):
	$(call go-install-tool,$@,helm.sh/helm/v3/cmd/helm@$(HELM_VERSION))
$(CRD_REF_DOCS_CACHED):
	$(call go-install-tool,$@,github.com/elastic/crd-ref-docs@$(CRD_REF_DOCS_VERSION))

# bin/<name> is a link to the cached binary of the version pinned here,
# checked on every use (a clone that changes a version gets its link right
# even when the cache already held that version).
$(LOCALBIN)/controller-gen: $(CONTROLLER_GEN_CACHED) FORCE | $(LOCALBIN)
	$(call link-tool,$<,$@)
$(LOCALBIN)/golangci-lint: $(GOLANGCI_LINT_CACHED) FORCE | $(LOCALBIN)
	$(call link-tool,$<,$@)
$(LOCALBIN)/kustomize: $(KUSTOMIZE_CACHED) FORCE | $(LOCALBIN)
	$(call link-tool,$<,$@)
$(LOCALBIN)/helm: $(HELM_CACHED) FORCE | $(LOCALBIN)
	$(call link-tool,$<,$@)
$(LOCALBIN)/crd-ref-docs: $(CRD_REF_DOCS_CACHED) FORCE | $(LOCALBIN)
	$(call link-tool,$<,$@)

link-tool = @[ "$$(readlink "$(2)")" = "$(1)" ] || ln -sfn "$(1)" "$(2)"

.PHONY: FORCE
FORCE:
