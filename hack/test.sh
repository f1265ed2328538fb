#!/usr/bin/env bash
# make test. First, one after another, the checks that compile every
# package (go vet compiles them all, tests included, for the rest to
# reuse). Then three lanes at once, for the tests spend most of their time
# waiting on control planes and processes, not on the CPU:
#   test-unit, helm-lint, test-e2e  |  demo-check, test-race  |  lint
# The CPU-bound steps (test-race builds the race detector's copy of every
# package it tests, lint type-checks everything) run at a lower CPU
# priority: they take what the tests leave idle. test-race follows the
# short demo-check rather than lint, so that neither of the two long
# builds waits for the other. A failed lane fails make test after all
# three have finished. Each step's wall and CPU time is printed as it ends and as a
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
(step demo-check && nice -n 10 bash hack/test.sh lane test-race) &
demo=$!
nice -n 10 bash hack/test.sh lane lint &
lint=$!
failed=
wait "$tests" || failed="$failed test-unit/helm-lint/test-e2e"
wait "$demo" || failed="$failed demo-check/test-race"
wait "$lint" || failed="$failed lint"
summary
if [ -n "$failed" ]; then
  echo "make test failed:$failed" >&2
  exit 1
fi
