#!/bin/bash
# footprint_bench: the memory local channels cost, read from /proc while a
# publisher and a subscriber (bench/footprint.c, separate processes) hold
# their rings: the ring memfd's size per (publisher, channel), the bytes of
# ring each side maps per channel, and each process's PSS and RSS
# (smaps_rollup) against an idle handle's. Memory does not vary from run to
# run as timings do: each case runs once.
#   bench/run.sh sets KITE and BENCH_BIN; by hand:
#   BENCH_BIN=build/bench bench/footprint_bench.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
bin=${BENCH_BIN:-$here/../build/bench}/footprint
[ -x "$bin" ] || { echo "footprint_bench: build $bin first (make bench)" >&2; exit 1; }
bench_tmpdir

kib() { awk -v x="$1" 'BEGIN { printf "%.0f", x / 1024 }'; }
# pss_kib PID / rss_kib PID: the process's proportional / resident set, KiB
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
# ring_maps PID: "COUNT BYTES" of its kite-ring mappings
ring_maps() {
	local range rest n=0 b=0
	while read -r range rest; do
		case $rest in *kite-ring:*) ;; *) continue ;; esac
		n=$((n + 1))
		b=$((b + 16#${range#*-} - 16#${range%-*}))
	done <"/proc/$1/maps"
	echo "$n $b"
}
# ring_resident PID: KiB of its kite-ring mappings resident (Rss)
ring_resident() {
	awk '/kite-ring:/ { on = 1; next } /^[0-9a-f]+-/ { on = 0 }
	     on && /^Rss:/ { r += $2 } END { print r + 0 }' "/proc/$1/smaps"
}
# memfd_size PID: size of one of its ring memfds
memfd_size() {
	local f
	for f in /proc/"$1"/fd/*; do
		case $(readlink "$f") in *kite-ring:*) stat -L -c %s "$f"; return ;; esac
	done
	echo 0
}

# one_case NAME CHANNELS MSGS SIZE [RING_BYTES]
one_case() {
	local name=$1 channels=$2 msgs=$3 size=$4 ring=${5:-}
	export KITE_BUS="fp$$$RANDOM"
	mkfifo "$BENCH_TMP/sub.in" "$BENCH_TMP/pub.in"
	exec 7<>"$BENCH_TMP/sub.in" 8<>"$BENCH_TMP/pub.in"
	"$bin" sub "$channels" "$msgs" <"$BENCH_TMP/sub.in" >"$BENCH_TMP/sub.out" 7>&- 8>&- &
	local sub=$!
	BENCH_PIDS+=("$sub")
	local t=0
	until grep -q subscribed "$BENCH_TMP/sub.out" 2>/dev/null || [ $t -gt 500 ]; do sleep 0.02; t=$((t + 1)); done
	"$bin" pub "$channels" "$msgs" "$size" $ring <"$BENCH_TMP/pub.in" >"$BENCH_TMP/pub.out" 7>&- 8>&- &
	local pub=$!
	BENCH_PIDS+=("$pub")
	t=0
	until { grep -q ready "$BENCH_TMP/sub.out" && grep -q ready "$BENCH_TMP/pub.out"; } 2>/dev/null ||
		[ $t -gt 1500 ]; do sleep 0.02; t=$((t + 1)); done
	local memfd pm sm pr sr
	memfd=$(memfd_size "$pub")
	read -r pn pb < <(ring_maps "$pub")
	read -r sn sb < <(ring_maps "$sub")
	pr=$(ring_resident "$pub"); sr=$(ring_resident "$sub")
	local per=$((channels > 0 ? channels : 1))
	table_row "$name" "$channels" "$(kib "$memfd")" \
		"$(kib $((pb / per)))" "$((pr / per))" "$(pss_kib "$pub")" "$(rss_kib "$pub")" \
		"$(kib $((sb / per)))" "$((sr / per))" "$(pss_kib "$sub")" "$(rss_kib "$sub")"
	exec 7>&- 8>&-
	wait "$sub" "$pub" 2>/dev/null
	rm -f "$BENCH_TMP/sub.in" "$BENCH_TMP/pub.in" "$BENCH_TMP/sub.out" "$BENCH_TMP/pub.out"
}

echo "## footprint: memory per (publisher, channel) and per handle (KiB)"
echo
echo "ring = the memfd's size (header page + records + large-message pool); per channel: bytes of ring"
echo "mapped and resident in each process; PSS and RSS: the whole process"
echo "(smaps_rollup), shared ring pages split between the processes mapping them."
echo
table_cols 30 8 9 9 9 9 9 9 9 9 9
table_row case channels ring "pub map" "pub res" "pub PSS" "pub RSS" "sub map" "sub res" "sub PSS" "sub RSS"
table_rule
one_case "idle handles (0 channels)" 0 0 64
one_case "1 ch, 1 msg of 64 B" 1 1 64
one_case "1 ch, ring full (64 B x 50k)" 1 50000 64
one_case "100 ch, 1 msg each" 100 1 64
one_case "100 ch, full (64 B x 1k)" 100 1000 64
one_case "100 ch, 64K rings, full" 100 1000 64 65536
one_case "1 ch, 4K ring (smallest)" 1 1000 64 4096
