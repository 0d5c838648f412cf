#!/bin/sh
# CI's smoke run of ward's benchmark program: every scenario completes and
# prints a figure. Timings are not judged here (a shared CI machine is too
# noisy for that); bench/run measures them, docs/performance.md reports them.
set -eu
b=$1/bench/ward-bench
out=$($b restart 10 && $b boot 20 && $b idle 20 1 && $b cycle 1000000)
echo "$out"
rows=$(echo "$out" | grep -c '^| .* | .*[0-9]')
if [ "$rows" -lt 6 ]; then
	echo "bench smoke: expected 6 rows of figures, got $rows" >&2
	exit 1
fi
