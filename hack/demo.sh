#!/usr/bin/env bash
# make demo, make demo-check: the demo (hack/demo) with the manager;
# arguments go to the demo (--once). On a first run the work overlaps:
#   1. Go downloads credsync's modules and compiles the packages the
#      manager imports, while hack/setup-envtest.sh downloads the control
#      plane (offline: the modules it is built from);
#   2. offline, the control plane is built from those modules (reusing
#      every package step 1 compiled) while Go compiles the manager's own
#      packages, links it and compiles the demo;
#   3. the demo starts, and builds the kubectl plugin while its control
#      plane starts and the operator syncs: the plugin is its last step.
# With everything cached, nothing waits.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}" BIN="${LOCALBIN:-bin}" MAKE="${MAKE:-make}"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

CREDSYNC_ENVTEST_PREPARE=1 bash hack/setup-envtest.sh >/dev/null &
pids+=($!)
# The manager's imports, with the Makefile's build flags (CGO_ENABLED,
# GOFLAGS): its own packages are a chain that keeps one core busy, which
# step 2 shares with the control plane's build.
"$GO" list -deps . | grep -v '^github.com/credsync/credsync' | xargs "$GO" build
# A failure to prepare shows again, with its reason, in step 2.
wait "${pids[0]}" || true

if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  assets="$(mktemp)"
  bash hack/setup-envtest.sh > "$assets" &
  pids+=($!)
fi
"$MAKE" --no-print-directory build-manager
"$GO" build -o "$BIN/demo" ./hack/demo
if [ -n "${assets:-}" ]; then
  wait "${pids[1]}"
  KUBEBUILDER_ASSETS="$(tail -n 1 "$assets")"
  rm -f "$assets"
  export KUBEBUILDER_ASSETS
fi
trap - EXIT
exec "$BIN/demo" --manager "$BIN/manager" --build-plugin "$MAKE --no-print-directory build-plugin" "$@"
