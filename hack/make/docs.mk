# Documentation targets, included by the Makefile.

##@ Documentation

# The API reference, rendered by crd-ref-docs (hack/make/tools.mk builds it)
# from the Go types in api/ with the configuration and markdown templates
# of hack/api-docs. test/apidocs checks the page against the CRDs.
API_DOCS ?= docs/api.md
API_DOCS_SOURCE ?= api
API_DOCS_CONFIG ?= hack/api-docs
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs
# render-api-docs writes the page to $(1).
render-api-docs = $(CRD_REF_DOCS) --log-level ERROR --renderer markdown \
	--source-path $(API_DOCS_SOURCE) --config $(API_DOCS_CONFIG)/config.yaml \
	--templates-dir $(API_DOCS_CONFIG)/templates --output-path $(1)

.PHONY: api-docs
api-docs: $(CRD_REF_DOCS) ## Regenerate docs/api.md from the API types in api/ (with crd-ref-docs; run make manifests too after changing api/).
	$(call render-api-docs,$(API_DOCS))

.PHONY: verify-api-docs
verify-api-docs: $(CRD_REF_DOCS) ## Fail when docs/api.md differs from what make api-docs would write.
	@tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	$(call render-api-docs,"$$tmp") || exit 1; \
	if ! diff -u $(API_DOCS) "$$tmp"; then \
		echo "$(API_DOCS) is out of date with $(API_DOCS_SOURCE)/: run make api-docs (after make manifests when the API types changed) and commit it" >&2; \
		exit 1; \
	fi
