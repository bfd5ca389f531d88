#!/bin/bash
# kite fifo throughput against what people do by hand, side by side:
#   plain file:  kite fifo F -- sh -c 'cat {} >/dev/null'
#                vs  mkfifo P; cat F > P & cat P >/dev/null   (the manual way)
#                vs  cat F | cat >/dev/null                   (a shell pipe)
#   gzip file:   kite fifo F.gz -- ...  vs  gzip -dc F.gz | cat >/dev/null
# Prints MB/s of delivered (decompressed) bytes: median [min..max] over
# BENCH_REPS runs (default 5, QUICK=1: 1), and kite/peer ratios.
# Needs: KITE (path of kite), gzip. Self-contained: no bench/lib.sh needed.
set -u
: "${KITE:?KITE must name the kite binary}"
REPS=${BENCH_REPS:-5}
[ -n "${QUICK:-}" ] && REPS=1
MB=${FIFO_BENCH_MB:-256}
base=/dev/shm; [ -d $base ] && [ -w $base ] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/kite-fifo-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT

head -c $((MB * 1048576)) /dev/urandom >"$dir/plain"
seq 1 $((MB * 1048576 / 8)) | head -c $((MB * 1048576 / 2)) >"$dir/text"
gzip -1 -c "$dir/text" >"$dir/text.gz"

now() { date +%s%N; }
# mbps BYTES CMD...: run CMD, print MB/s
mbps() {
	local bytes=$1; shift
	local t0 t1
	t0=$(now); "$@" >/dev/null 2>&1 || { echo 0; return; }; t1=$(now)
	awk -v b="$bytes" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", b / 1e6 / (ns / 1e9) }'
}
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "%.0f [%.0f..%.0f]\n", m, v[1], v[NR] }'; }
median() { stats "$@" | cut -d' ' -f1; }

kite_plain() { TMPDIR=$dir "$KITE" fifo --quiet "$dir/plain" -- sh -c 'cat {} >/dev/null'; }
manual_plain() {
	rm -f "$dir/p"; mkfifo "$dir/p"
	cat "$dir/plain" >"$dir/p" &
	cat "$dir/p" >/dev/null; wait
}
pipe_plain() { cat "$dir/plain" | cat >/dev/null; }
kite_gz() { TMPDIR=$dir "$KITE" fifo --quiet "$dir/text.gz" -- sh -c 'cat {} >/dev/null'; }
pipe_gz() { gzip -dc "$dir/text.gz" | cat >/dev/null; }

pb=$(stat -c %s "$dir/plain"); tb=$(stat -c %s "$dir/text")
declare -A r
for ((i = 0; i < REPS; i++)); do
	r[kp]+=" $(mbps "$pb" kite_plain)"
	r[mp]+=" $(mbps "$pb" manual_plain)"
	r[pp]+=" $(mbps "$pb" pipe_plain)"
	r[kg]+=" $(mbps "$tb" kite_gz)"
	r[pg]+=" $(mbps "$tb" pipe_gz)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# shellcheck disable=SC2086
{
printf '\nkite fifo: MB/s delivered, median [min..max] of %d runs, %d MiB input\n' "$REPS" "$MB"
printf '%-34s %-20s %-20s %s\n' case kite peer kite/peer
printf '%-34s %-20s %-20s %s\n' ---- ---- ---- ---------
printf '%-34s %-20s %-20s %s\n' "plain file vs manual mkfifo+cat" "$(stats ${r[kp]})" "$(stats ${r[mp]})" "$(ratio "$(median ${r[kp]})" "$(median ${r[mp]})")"
printf '%-34s %-20s %-20s %s\n' "plain file vs cat | cat" "$(stats ${r[kp]})" "$(stats ${r[pp]})" "$(ratio "$(median ${r[kp]})" "$(median ${r[pp]})")"
printf '%-34s %-20s %-20s %s\n' "gzip -1 file vs gzip -dc | cat" "$(stats ${r[kg]})" "$(stats ${r[pg]})" "$(ratio "$(median ${r[kg]})" "$(median ${r[pg]})")"
}
