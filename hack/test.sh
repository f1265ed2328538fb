#!/usr/bin/env bash
# make test. First, one after another, the checks that compile every
# package (go vet compiles them all, tests included, for the rest to
# reuse). Then three lanes at once, for the tests spend most of their time
# waiting on control planes and processes, not on the CPU:
#   test-unit, helm-lint, test-e2e  |  demo-check  |  lint, test-race
# The third lane (CPU-bound: test-race builds the race detector's copy of
# every package it tests) runs at a lower CPU priority: it takes what the
# others leave idle. A failed lane fails make test after all three have
# finished. Each step's wall and CPU time is printed as it ends and as a
# table at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
make=${MAKE:-make}

# step TARGET...: make each target in turn, timed; stop at the first failure.
step() {
  for target in "$@"; do
    bash hack/timed.sh "$target" "$make" --no-print-directory "$target" || return 1
  done
}

# hack/test.sh lane TARGET...: one lane (run by the main script below).
if [ "${1:-}" = lane ]; then
  shift
  step "$@"
  exit
fi

TIMINGS=$(mktemp)
TIMINGS_ORIGIN=$(date +%s)
export TIMINGS TIMINGS_ORIGIN
trap 'rm -f "$TIMINGS"' EXIT

summary() {
  echo
  echo "make test, step by step (seconds from its start; wall and CPU seconds):"
  sort -t "$(printf '\t')" -k2,2n "$TIMINGS" |
    awk -F '\t' 'BEGIN { printf "  %-18s %6s %6s %6s  %s\n", "step", "start", "wall", "cpu", "result" }
      { printf "  %-18s %6s %6s %6s  %s\n", $1, $2, $3, $4, $5; cpu += $4 }
      END { printf "  %-18s %6s %6s %6s\n", "total", "", "'"$(($(date +%s) - TIMINGS_ORIGIN))"'", cpu }'
}

if ! step verify-generated verify-api-docs verify-fmt vet; then
  summary
  exit 1
fi
step test-unit helm-lint test-e2e &
tests=$!
step demo-check &
demo=$!
nice -n 10 bash hack/test.sh lane lint test-race &
race=$!
failed=
wait "$tests" || failed="$failed test-unit/helm-lint/test-e2e"
wait "$demo" || failed="$failed demo-check"
wait "$race" || failed="$failed lint/test-race"
summary
if [ -n "$failed" ]; then
  echo "make test failed:$failed" >&2
  exit 1
fi
