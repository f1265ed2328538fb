# Documentation targets, included by the Makefile.

##@ Documentation

# The API reference generated from the CRDs (which make manifests writes
# from the API types).
API_DOCS ?= docs/api.md
API_DOCS_CRDS ?= config/crd/bases

.PHONY: api-docs
api-docs: ## Regenerate docs/api.md from the CRDs in config/crd/bases (run make manifests first after changing api/).
	$(GO) run ./hack/apidocs --crds $(API_DOCS_CRDS) --out $(API_DOCS)

.PHONY: verify-api-docs
verify-api-docs: ## Fail when docs/api.md differs from what make api-docs would write.
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	$(GO) run ./hack/apidocs --crds $(API_DOCS_CRDS) --out "$$tmp" || exit 1; \
	if ! diff -u $(API_DOCS) "$$tmp"; then \
		echo "$(API_DOCS) is out of date with $(API_DOCS_CRDS): run make api-docs (after make manifests when the API types changed) and commit it" >&2; \
		exit 1; \
	fi
