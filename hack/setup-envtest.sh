#!/usr/bin/env bash
# Prints, as its last line of stdout, a directory holding kube-apiserver and
# etcd for envtest; everything else goes to stderr. In order:
#   1. KUBEBUILDER_ASSETS, when set and complete;
#   2. the cache, $CREDSYNC_CACHE/envtest/<k8s version> (CREDSYNC_CACHE
#      defaults to ~/.cache/credsync), filled by 3. or 4. on first use;
#   3. a download with the standard tool, setup-envtest (seconds, ~100 MB),
#      given up after a minute at most and at once when offline;
#   4. a build from Go modules (about 5 minutes on 2 cores and ~1 GB of
#      module cache): kube-apiserver and etcd at exactly the module versions
#      kubernetes' own go.mod requires, so every machine builds the same
#      thing, except where credsync's go.mod selects a newer version of a
#      module both use (golang.org/x/net, protobuf, ...): that one, so the
#      packages both build compile once. modules.txt (the build's module
#      graph), kubernetes.go.mod and credsync.modules.txt (credsync's
#      selection) are left beside the binaries; test/envtest checks them.
# CREDSYNC_ENVTEST_DOWNLOAD_ONLY=1 stops after a failed download (exit 1)
# instead of building. CREDSYNC_ENVTEST_PREPARE=1 does all but the build
# (the download, else the modules of 4.; exit 0, no path printed), for
# make demo to run while Go builds the rest. CREDSYNC_ENVTEST_PLAN_ONLY=1
# skips 1.-3. and resolves the build of 4. without compiling it (seconds
# with a warm module cache): it prints a directory holding only the three
# text files above, so the pinning can be checked whatever the cache
# holds. CREDSYNC_ENVTEST_DOWNLOAD_TIMEOUT (seconds, 60) bounds the
# download; SETUP_ENVTEST_INDEX points setup-envtest at another index.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"  # this checkout

K8S_VERSION="${ENVTEST_K8S_VERSION:-1.37.2}"
STAGING_VERSION="v0.${K8S_VERSION#1.}"
# The one release of setup-envtest's own module (controller-runtime's
# tools/setup-envtest), from controller-runtime's v0.25 line.
SETUP_ENVTEST_VERSION="${SETUP_ENVTEST_VERSION:-v0.25.1}"
SETUP_ENVTEST_INDEX="${SETUP_ENVTEST_INDEX:-https://raw.githubusercontent.com/kubernetes-sigs/controller-tools/HEAD/envtest-releases.yaml}"
CACHE_ROOT="${CREDSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/credsync}"
ASSETS="$CACHE_ROOT/envtest/$K8S_VERSION"  # the etcd version follows from the kubernetes version

have() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

PLAN_ONLY="${CREDSYNC_ENVTEST_PLAN_ONLY:-}"
if [ -n "$PLAN_ONLY" ]; then
  ASSETS="$CACHE_ROOT/envtest-plan/$K8S_VERSION"
  rm -rf "$ASSETS"
else
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  if have "$ASSETS"; then
    echo "$ASSETS"
    exit 0
  fi
fi

start=$SECONDS
say() { echo "envtest assets [$((SECONDS - start))s]: $*" >&2; }

mkdir -p "$(dirname "$ASSETS")"
work="$(mktemp -d)"
out="$(mktemp -d "$ASSETS.tmp.XXXXXX")"
trap 'rm -rf "$work" "$out"' EXIT

# finish moves the binaries in $out into the cache and prints its path. A
# concurrent run may have got there first: then its result is used.
finish() {
  if [ -n "$PLAN_ONLY" ] || ! have "$ASSETS"; then
    chmod 0755 "$out"
    rm -rf "$ASSETS"
    mv "$out" "$ASSETS"
    # Had a concurrent run just created $ASSETS, mv put $out inside it.
    rm -rf "$ASSETS/$(basename "$out")"
  fi
  say "done: $ASSETS"
  echo "$ASSETS"
  exit 0
}

# 3. Download (not when only planning). setup-envtest has no network timeout of its own: timeout
# bounds it (the first run also compiles it, a few seconds); offline, the
# index lookup fails at once.
[ -n "$PLAN_ONLY" ] || say "trying setup-envtest $SETUP_ENVTEST_VERSION (download of kube-apiserver and etcd v$K8S_VERSION, ~100 MB) …"
bound=()  # no timeout(1) (macOS without coreutils): unbounded, still fails at once offline
if command -v timeout >/dev/null; then bound=(timeout -k 5 "${CREDSYNC_ENVTEST_DOWNLOAD_TIMEOUT:-60}"); fi
# reachable: a TCP connection to the index's host opens. When it does not
# (offline), setup-envtest is not compiled only to fail.
index_host="${SETUP_ENVTEST_INDEX#*://}"
index_host="${index_host%%/*}"
index_port=443
[ "${SETUP_ENVTEST_INDEX%%://*}" != http ] || index_port=80
case "$index_host" in *:*) index_port="${index_host##*:}" index_host="${index_host%:*}" ;; esac
reachable() {
  if ${bound[@]+"${bound[@]}"} bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$index_host" "$index_port" 2>/dev/null; then return 0; fi
  say "cannot connect to $index_host:$index_port (offline?): not trying setup-envtest"
  return 1
}
if [ -z "$PLAN_ONLY" ] && reachable && dir="$(cd "$work" && GOFLAGS= GOWORK=off ${bound[@]+"${bound[@]}"} \
      go run "sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION" \
      use "$K8S_VERSION" --bin-dir "$work/setup-envtest" --index "$SETUP_ENVTEST_INDEX" -p path)" \
    && have "$dir"; then
  cp "$dir/kube-apiserver" "$dir/etcd" "$out/"
  finish
fi
if [ -z "$PLAN_ONLY" ] && [ -n "${CREDSYNC_ENVTEST_DOWNLOAD_ONLY:-}" ]; then
  say "no download (offline?); CREDSYNC_ENVTEST_DOWNLOAD_ONLY is set, so not building from Go modules"
  exit 1
fi

# 4. Build from Go modules, pinned to kubernetes' go.mod (raised to credsync's).
modfile="$(cd "$work" && GOFLAGS= GOWORK=off go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[ -f "$modfile" ] || { echo "could not download k8s.io/kubernetes@v$K8S_VERSION's go.mod" >&2; exit 1; }
# etcd: the server version kubernetes itself requires (and tests against).
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$modfile")"
[ -n "$etcd_version" ] || { echo "kubernetes v$K8S_VERSION's go.mod requires no go.etcd.io/etcd/server/v3" >&2; exit 1; }
if [ -n "$PLAN_ONLY" ]; then
  say "resolving (not building) kube-apiserver v$K8S_VERSION and etcd $etcd_version from Go modules"
else
  say "no download (offline?): building kube-apiserver v$K8S_VERSION and etcd $etcd_version from Go modules, about 5 minutes on 2 cores the first time"
fi

cd "$work"
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
# The build module is kubernetes' go.mod itself, renamed: the same go and
# godebug lines and every require (direct and indirect) exactly as there.
# kubernetes requires each staging module at v0.0.0 and replaces it with a
# local directory; here each is required at, and replaced with, its
# published version instead.
cat "$modfile" > go.mod
staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' go.mod)"
[ -n "$staging" ] || { echo "no staging modules found in $modfile" >&2; exit 1; }
args=(-module=credsync.local/envtest-build "-require=k8s.io/kubernetes@v$K8S_VERSION")
for m in $staging; do
  args+=("-replace=$m=$m@$STAGING_VERSION")
  if grep -q "^[[:space:]]*$m v" go.mod; then args+=("-require=$m@$STAGING_VERSION"); fi
done
go mod edit "${args[@]}"
# Where credsync's go.mod needs a newer version of a module kubernetes'
# go.mod lists (golang.org/x/net, protobuf, ...), that version: the
# packages the control plane and credsync both build are then the same
# and compile once (a first run builds both). Go's own version selection
# over both go.mods says which: credsync's module, replaced by this
# checkout, joins the graph for a moment, then leaves it.
credsync=github.com/credsync/credsync
go mod edit "-require=$credsync@v0.0.0" "-replace=$credsync=$ROOT"
selected="$(go list -m -f '{{if not (or .Main .Replace)}}{{.Path}}@{{.Version}}{{end}}' all)"
go mod edit "-droprequire=$credsync" "-dropreplace=$credsync"
(cd "$ROOT" && GOFLAGS=-mod=readonly go list -m -f '{{if not .Main}}{{.Path}} {{.Version}}{{end}}' all | sed '/^$/d') > "$out/credsync.modules.txt"
raise=()
for mv in $selected; do
  if grep -q "^[[:space:]]*${mv%@*} v" go.mod && ! grep -q "^[[:space:]]*${mv%@*} ${mv#*@}\( \|\$\)" go.mod; then raise+=("-require=$mv"); fi
done
[ ${#raise[@]} -eq 0 ] || go mod edit "${raise[@]}"
cp go.mod go.mod.pinned

# unchanged fails unless the pinned go.mod still is the build's go.mod:
# had the build needed a module kubernetes' go.mod does not list, Go would
# have added whatever version was newest, which is not reproducible.
unchanged() {
  cmp -s go.mod go.mod.pinned && return 0
  diff go.mod.pinned go.mod >&2 || true
  echo "building changed the pinned go.mod (above): kubernetes' go.mod no longer covers the build" >&2
  exit 1
}
# record writes the module graph of the build, with each replacement's
# version in place of the replaced one, and kubernetes' go.mod beside it.
record() {
  go list -m -f '{{if not .Main}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}' all | sed '/^$/d' > "$out/modules.txt"
  cat "$modfile" > "$out/kubernetes.go.mod"
}

say "[1/2] downloading modules …"
go mod download >&2
if [ -n "${CREDSYNC_ENVTEST_PREPARE:-}" ]; then
  say "modules downloaded; not building yet (CREDSYNC_ENVTEST_PREPARE)"
  exit 0
fi
if [ -n "$PLAN_ONLY" ]; then
  say "resolving the packages of kube-apiserver and etcd (CREDSYNC_ENVTEST_PLAN_ONLY: no build) …"
  go list -deps k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3 >/dev/null
  unchanged
  record
  finish
fi
say "[2/2] building kube-apiserver and etcd $etcd_version …"
# One go build: the two links run side by side. etcd's main package,
# go.etcd.io/etcd/server/v3, is written as "server".
go build -trimpath -ldflags=-s -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3 >&2
mv "$out/server" "$out/etcd"
unchanged
record
finish
