# Deploying credsync: kustomize (config/default) and the Helm chart
# (charts/credsync). Included by the Makefile; hack/make/tools.mk builds
# the tools at the versions pinned here, and test/deploy gets them from
# make kustomize and make helm.

KUSTOMIZE_VERSION ?= v5.7.1
HELM_VERSION ?= v3.22.0
KUSTOMIZE ?= $(LOCALBIN)/kustomize
HELM ?= $(LOCALBIN)/helm
KUBECTL ?= kubectl
# The manager image make deploy installs.
IMG ?= ghcr.io/credsync/credsync:latest
# make undeploy ignore-not-found=true: no error for objects already gone.
ignore-not-found ?= false
# The chart's values with every option set (chart-testing's ci/ convention).
HELM_ALL_ON_VALUES ?= charts/credsync/ci/all-on-values.yaml

##@ Deployment

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Link bin/kustomize to the tools cache, building kustomize there once per machine (hack/make/tools.mk).

.PHONY: helm
helm: $(HELM) ## Link bin/helm to the tools cache, building helm there once per machine (a few minutes).

# deploy sets the image in an overlay in a temporary directory, leaving
# config/ untouched (kustomize refuses an absolute path to a base, so the
# overlay lives beside config/default).
.PHONY: deploy
deploy: $(KUSTOMIZE) ## Install CRDs, RBAC and the manager (config/default, image IMG) in the current kubeconfig's cluster.
	@tmp=$$(mktemp -d "$(CURDIR)/config/.deploy.XXXXXX") && trap 'rm -rf "$$tmp"' EXIT && \
	printf 'resources:\n- ../default\n' >"$$tmp/kustomization.yaml" && \
	(cd "$$tmp" && $(KUSTOMIZE) edit set image ghcr.io/credsync/credsync=$(IMG)) && \
	$(KUSTOMIZE) build "$$tmp" | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove what deploy installed, CRDs and so every credsync object included (ignore-not-found=true to tolerate missing objects).
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: helm-lint
helm-lint: $(HELM) ## Lint the Helm chart and render it with default values and with every option on.
	$(HELM) lint --strict charts/credsync
	$(HELM) lint --strict charts/credsync -f $(HELM_ALL_ON_VALUES)
	$(HELM) template credsync charts/credsync --namespace credsync-system --include-crds >/dev/null
	$(HELM) template credsync charts/credsync --namespace credsync-system --include-crds -f $(HELM_ALL_ON_VALUES) >/dev/null

.PHONY: helm-sync
helm-sync: ## Copy the CRDs (config/crd/bases) and alert rules (config/prometheus/rules.yaml) into the chart; test/deploy checks they match.
	rm -f charts/credsync/crds/*.yaml
	cp config/crd/bases/*.yaml charts/credsync/crds/
	cp config/prometheus/rules.yaml charts/credsync/files/prometheus-rules.yaml
