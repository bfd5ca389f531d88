#!/bin/bash
# ports_bench: whole-process time of `kite ports` beside `ss -ltnup` and
# `lsof -n -P -i` (lsof's fastest mode: no DNS, no port names) with 10,000
# listening sockets open on loopback (8,000 TCP listeners, 2,000 bound UDP
# sockets, held by bench/many_sockets.c). Prints median and min-max over
# RUNS runs (the tools take turns, so load hits them alike) and each peer's
# median as a multiple of kite's.
#   KITE=build/kite bench/ports_bench.sh    (env: SOCKETS=10000 RUNS=7)
set -eu
cd "$(dirname "$0")/.."
KITE=${KITE:-build/kite}
SOCKETS=${SOCKETS:-10000}
RUNS=${RUNS:-7}
work=$(mktemp -d "${TMPDIR:-/tmp}/kite-ports-bench.XXXXXX")
holder=
cleanup() {
	[ -z "$holder" ] || { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

cc -O2 -o "$work/many_sockets" bench/many_sockets.c
"$work/many_sockets" "$SOCKETS" >"$work/ready" &
holder=$!
for _ in $(seq 600); do [ -s "$work/ready" ] && break; sleep 0.05; done
[ -s "$work/ready" ] || { echo "ports_bench: helper did not get ready" >&2; exit 1; }

tools=("kite ports" "ss -ltnup" "lsof -n -P -i")
run() {
	case $1 in
	0) "$KITE" ports ;;
	1) ss -ltnup ;;
	2) lsof -n -P -i ;;
	esac
}
# Sanity: each tool sees every socket the helper holds (plus a header).
for i in 0 1 2; do
	n=$(run $i 2>/dev/null | grep -c "127\.0\.0\.1:" || true)
	if [ "$n" -lt "$SOCKETS" ]; then
		echo "ports_bench: ${tools[$i]} saw $n of $SOCKETS sockets" >&2
		exit 1
	fi
done
for ((r = 0; r < RUNS; r++)); do
	for i in 0 1 2; do
		t0=$(date +%s%N)
		run $i >/dev/null 2>&1
		t1=$(date +%s%N)
		echo "$(( (t1 - t0) / 1000 ))" >>"$work/t$i"
	done
done
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }
range() { sort -n "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f-%.1f", lo / 1000, hi / 1000 }'; }
echo "ports_bench: $SOCKETS listening sockets on loopback ($((SOCKETS - SOCKETS / 5)) tcp, $((SOCKETS / 5)) udp), $RUNS runs each, whole process, output to /dev/null"
printf '%-16s %10s %14s %10s\n' tool "median ms" "min-max ms" "vs kite"
k=$(median "$work/t0")
for i in 0 1 2; do
	m=$(median "$work/t$i")
	printf '%-16s %10s %14s %9.2fx\n' "${tools[$i]}" "$m" "$(range "$work/t$i")" \
		"$(awk -v a="$m" -v b="$k" 'BEGIN { print a / b }')"
done
