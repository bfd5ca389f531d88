#!/bin/bash
# ports_bench: whole-process time of `kite ports` beside `ss -ltnup` and
# `lsof -n -P -i` (lsof's fastest mode: no DNS, no port names) with 10,000
# listening sockets open on loopback (8,000 TCP listeners, 2,000 bound UDP
# sockets, held by bench/many_sockets.c). The tools take turns run by run,
# so a busy moment of the machine hits them alike. Target: kite faster than
# both.
#   bench/run.sh sets KITE and BENCH_BIN; by hand:
#   KITE=build/kite bench/ports_bench.sh     (env: SOCKETS=10000 BENCH_REPS=5)
set -u # (not -e: lib.sh's exit trap waits on killed helpers)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
KITE=${KITE:-$here/../build/kite}
SOCKETS=${SOCKETS:-10000}
[ -n "${QUICK:-}" ] || [ "${BENCH_REPS}" -ge 3 ] || BENCH_REPS=3
bench_tmpdir

holder_bin=${BENCH_BIN:-}/many_sockets
if [ ! -x "$holder_bin" ]; then # run by hand: build it here
	holder_bin=$BENCH_TMP/many_sockets
	cc -O2 -o "$holder_bin" "$here/many_sockets.c" || exit 1
fi
bench_spawn "$holder_bin" "$SOCKETS" >"$BENCH_TMP/ready"
for _ in $(seq 600); do [ -s "$BENCH_TMP/ready" ] && break; sleep 0.05; done
[ -s "$BENCH_TMP/ready" ] || { echo "ports_bench: helper did not get ready" >&2; exit 1; }

tools=("kite ports" "ss -ltnup" "lsof -n -P -i")
run() {
	case $1 in
	0) "$KITE" ports ;;
	1) ss -ltnup ;;
	2) lsof -n -P -i ;;
	esac
}
# Sanity: each tool sees every socket the helper holds.
for i in 0 1 2; do
	n=$(run $i 2>/dev/null | grep -c "127\.0\.0\.1:" || true)
	if [ "$n" -lt "$SOCKETS" ]; then
		echo "ports_bench: ${tools[$i]} saw $n of $SOCKETS sockets" >&2
		exit 1
	fi
done
t0=() t1=() t2=()
for ((r = 0; r < BENCH_REPS; r++)); do
	for i in 0 1 2; do
		a=$(date +%s%N)
		run $i >/dev/null 2>&1
		b=$(date +%s%N)
		ms=$(awk -v d=$((b - a)) 'BEGIN { printf "%.3f", d / 1e6 }')
		eval "t$i+=($ms)"
	done
done
fmt_ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
med() { stats "$@" | cut -d' ' -f1; }
k=$(med "${t0[@]}")
echo "ports_bench: $SOCKETS listening sockets on loopback ($((SOCKETS - SOCKETS / 5)) tcp," \
	"$((SOCKETS / 5)) udp), $BENCH_REPS runs each, whole process, output to /dev/null"
table_cols 16 26 14
table_row tool "ms median [min..max]" "peer/kite"
table_rule
table_row "${tools[0]}" "$(cell fmt_ms "${t0[@]}")" "1.00"
table_row "${tools[1]}" "$(cell fmt_ms "${t1[@]}")" "$(ratio "$(med "${t1[@]}")" "$k")"
table_row "${tools[2]}" "$(cell fmt_ms "${t2[@]}")" "$(ratio "$(med "${t2[@]}")" "$k")"
echo "target: kite ports faster than ss -ltnup: $(verdict "$(ratio "$(med "${t1[@]}")" "$k")" ge 1)," \
	"than lsof -i: $(verdict "$(ratio "$(med "${t2[@]}")" "$k")" ge 1)"
