#!/usr/bin/env bash
# Prints, as its last line, a directory holding kube-apiserver and etcd for
# envtest. The binaries cannot be downloaded here, so they are built from Go
# modules (kubernetes and etcd are ordinary modules on the module proxy) and
# cached outside the checkout, so repeated runs (and CI on the same machine)
# reuse them. KUBEBUILDER_ASSETS, when set and complete, wins.
set -euo pipefail

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ENVTEST_ETCD_VERSION:-v3.7.3}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
CACHE_ROOT="${CREDSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/credsync}"
ASSETS="$CACHE_ROOT/envtest/$K8S_VERSION"  # etcd version is pinned per kubernetes version below

have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if have "$ASSETS"; then
  echo "$ASSETS"
  exit 0
fi

echo "building kube-apiserver and etcd v$K8S_VERSION from Go modules (first time only, a few minutes)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
go mod init credsync.local/envtest-build >/dev/null 2>&1

# kubernetes' go.mod replaces each staging module with a local directory; a
# consumer must replace each with its published version instead.
modfile="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$modfile")"
[ -n "$staging" ] || { echo "no staging modules found in $modfile" >&2; exit 1; }
args=()
for m in $staging; do args+=("-replace=$m=$m@$STAGING_VERSION"); done
go mod edit "${args[@]}" "-require=k8s.io/kubernetes@v$K8S_VERSION"
cat > tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
EOF
go mod tidy -e >/dev/null 2>&1 || true
go get "k8s.io/kubernetes@v$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2

mkdir -p "$ASSETS.tmp"
go build -trimpath -ldflags=-s -o "$ASSETS.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2
go build -trimpath -ldflags=-s -o "$ASSETS.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
rm -rf "$ASSETS"
mv "$ASSETS.tmp" "$ASSETS"
echo "$ASSETS"
