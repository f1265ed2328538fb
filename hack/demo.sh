#!/usr/bin/env bash
# make demo, make demo-check: the demo (hack/demo) with the manager;
# arguments go to the demo (--once). On a first run the work overlaps:
#   1. Go downloads credsync's modules (and compiles the standard library
#      meanwhile), then compiles the manager, while hack/setup-envtest.sh
#      downloads the control plane (offline: the modules it is built from);
#   2. offline, the control plane is built from those modules (reusing
#      every package the manager compiled) while Go compiles the demo;
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
"$GO" build std &  # the build flags are the Makefile's (CGO_ENABLED, GOFLAGS)
pids+=($!)
"$MAKE" --no-print-directory build-manager
# A failure to prepare shows again, with its reason, in step 2.
wait "${pids[0]}" || true

if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
  assets="$(mktemp)"
  bash hack/setup-envtest.sh > "$assets" &
  pids+=($!)
fi
"$GO" build -o "$BIN/demo" ./hack/demo
if [ -n "${assets:-}" ]; then
  wait "${pids[2]}"
  KUBEBUILDER_ASSETS="$(tail -n 1 "$assets")"
  rm -f "$assets"
  export KUBEBUILDER_ASSETS
fi
trap - EXIT
exec "$BIN/demo" --manager "$BIN/manager" --build-plugin "$MAKE --no-print-directory build-plugin" "$@"
