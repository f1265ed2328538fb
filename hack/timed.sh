#!/usr/bin/env bash
# timed.sh NAME COMMAND...: runs COMMAND, then says how long NAME took on
# the wall clock and in CPU (user+system, its processes included), and
# appends "NAME start wall cpu status" to $TIMINGS when that is set (make
# test prints them as a table at the end: docs/benchmarks.md has figures).
# Exits with COMMAND's status.
set -uo pipefail
name=$1
shift
origin=${TIMINGS_ORIGIN:-$(date +%s)}
start=$(date +%s.%N)
"$@"
status=$?
end=$(date +%s.%N)
# times (a builtin: no fork) prints the shell's own times, then its
# children's: "0m12.345s 0m1.234s".
tmp=$(mktemp)
times >"$tmp"
cpu=$(tail -n 1 "$tmp" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.0f", s }')
rm -f "$tmp"
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
at=$(awk -v a="$start" -v o="$origin" 'BEGIN { printf "%.0f", a - o }')
result=ok
[ "$status" -eq 0 ] || result="failed ($status)"
echo "==> $name: ${wall}s wall, ${cpu}s CPU, $result"
if [ -n "${TIMINGS:-}" ]; then
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$at" "$wall" "$cpu" "$result" >>"$TIMINGS"
fi
exit "$status"
