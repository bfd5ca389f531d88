#!/bin/bash
# bench/run.sh — run every bench/*_bench.sh in turn (or only $BENCH, e.g.
# BENCH=channels for channels_bench.sh), keep going when one fails, and
# say at the end which failed. bench/Makefile calls it with:
#   KITE       absolute path of the kite binary
#   BENCH_BIN  absolute path of the built bench programs
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${KITE:?KITE must name the kite binary (bench/Makefile sets it)}"
: "${BENCH_BIN:?BENCH_BIN must name the bench program folder}"
export KITE BENCH_BIN
export BENCH_REPS=${BENCH_REPS:-5} QUICK=${QUICK:-}
only=${BENCH:-}

scripts=()
for s in "$here"/*_bench.sh; do
	[ -f "$s" ] || continue
	name=$(basename "$s" _bench.sh)
	# The Python binding's figures are local channels' too: BENCH=channels
	# shows them beside kite's and ZeroMQ's.
	if [ -z "$only" ] || [ "$only" = "$name" ] || { [ "$only" = channels ] && [ "$name" = python ]; }; then
		scripts+=("$s")
	fi
done
if [ ${#scripts[@]} -eq 0 ]; then
	echo "bench: no benchmark named '${only}' (bench/${only}_bench.sh)" >&2
	exit 1
fi

failed=()
for s in "${scripts[@]}"; do
	name=$(basename "$s" _bench.sh)
	echo "=== bench: $name ($(date -u +%H:%M:%S) UTC, $(nproc) CPUs," \
		"load $(cut -d' ' -f1-3 /proc/loadavg))"
	start=$(date +%s)
	if bash "$s"; then
		echo "=== bench: $name done in $(($(date +%s) - start)) s"
	else
		echo "=== bench: $name FAILED (exit $?) after $(($(date +%s) - start)) s"
		failed+=("$name")
	fi
	echo
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "bench: failed: ${failed[*]}"
	exit 1
fi
echo "bench: all ${#scripts[@]} benchmark(s) ran"
