#!/usr/bin/env bash
# Regenerates DeepCopy code, CRDs and RBAC and fails when that changed
# anything: generated files must be committed up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(api/v1alpha1/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml charts/credsync/crds charts/credsync/files internal/plugin/troubleshooting.md)
before="$(mktemp -d)"
trap 'rm -rf "$before"' EXIT
for p in "${paths[@]}"; do
  [ -e "$p" ] && mkdir -p "$before/$(dirname "$p")" && cp -r "$p" "$before/$p"
done
make -s manifests generate
stale=0
for p in "${paths[@]}"; do
  if ! diff -r "$before/$p" "$p" >/dev/null 2>&1; then
    echo "stale generated file(s): $p (now regenerated: review and commit)" >&2
    diff -ru "$before/$p" "$p" >&2 || true
    stale=1
  fi
done
if [ "${CI:-}" = "true" ] && git rev-parse --git-dir >/dev/null 2>&1; then
  git diff --exit-code -- "${paths[@]}" || stale=1
fi
exit $stale
