#!/bin/bash
# kite bridge throughput: messages per second local → kite bridge →
# nats-server → kite bridge → local (bench/bridge_kite.c: publisher on bus
# A, subscriber on bus B, one bridge exporting from A, one importing into
# B, as on two machines), beside a plain NATS publisher → subscriber
# through the same server in the same run (bench/bridge_nats.c), for 64 B
# and 1 KiB payloads. Both keep at most $WINDOW messages in flight, so no
# ring or libnats buffer overflows and each figure is a rate sustained
# without loss. The server runs on 127.0.0.1 (a port it picks) and is
# stopped by pid. Target (issue 15): the bridge path at least 75 % of
# plain NATS (ratio >= 0.75). Medians [min..max] over $BENCH_REPS runs,
# kite and NATS runs alternating.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
COUNT=${COUNT:-200000}
WINDOW=${WINDOW:-512}
[ -n "${QUICK:-}" ] && COUNT=20000
BRIDGE=$(dirname "$KITE")/kite-bridge
for need in "$BENCH_BIN/bridge_kite" "$BENCH_BIN/bridge_nats" "$BRIDGE"; do
	if [ ! -x "$need" ]; then
		echo "bridge bench: $need not built (needs libnats-dev)"; exit 1
	fi
done
command -v nats-server >/dev/null || { echo "bridge bench: nats-server not installed"; exit 1; }
bench_tmpdir /tmp

nats-server -a 127.0.0.1 -p -1 -l "$BENCH_TMP/nats.log" & ns=$!; BENCH_PIDS+=("$ns")
for _ in $(seq 100); do grep -qs "Listening for client" "$BENCH_TMP/nats.log" && break; sleep 0.05; done
port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$BENCH_TMP/nats.log" | head -1)
[ -n "$port" ] || { echo "bridge bench: nats-server did not start"; exit 1; }
url=nats://127.0.0.1:$port
busA=bench$$-a busB=bench$$-b
"$BRIDGE" --bus "$busA" --stats-interval 0 "$url" --export 'bench.>' 2>"$BENCH_TMP/A.err" & bridges=("$!")
"$BRIDGE" --bus "$busB" --stats-interval 0 "$url" --import 'bench.>' 2>"$BENCH_TMP/B.err" & bridges+=("$!")
BENCH_PIDS+=("${bridges[@]}")
for f in A B; do
	for _ in $(seq 100); do grep -q 'ready' "$BENCH_TMP/$f.err" && break; sleep 0.05; done
done

echo "nats-server $(nats-server --version | awk '{print $2}') on $url; $COUNT messages a run," \
	"at most $WINDOW in flight; $BENCH_REPS runs a case"
table_cols 8 30 30 8 8
table_row size "kite→bridge→NATS→bridge→kite" "plain NATS pub→sub" ratio target
table_rule
for size in 64 1024; do
	kite_rates=() nats_rates=()
	for rep in $(seq "$BENCH_REPS"); do
		progress "size $size, run $rep"
		out=$("$BENCH_BIN/bridge_kite" "$busA" "$busB" "bench.s$size.r$rep" "$COUNT" "$size" "$WINDOW")
		awk "$BENCH_AWK_KV"' { exit !(v["received"] > 0) }' <<<"$out" &&
			kite_rates+=("$(awk "$BENCH_AWK_KV"' { print v["rate"] }' <<<"$out")")
		[ -n "$out" ] && progress "kite: $out"
		out=$("$BENCH_BIN/bridge_nats" "$url" "plain.n$size.r$rep" "$COUNT" "$size" "$WINDOW")
		awk "$BENCH_AWK_KV"' { exit !(v["received"] > 0) }' <<<"$out" &&
			nats_rates+=("$(awk "$BENCH_AWK_KV"' { print v["rate"] }' <<<"$out")")
		[ -n "$out" ] && progress "nats: $out"
	done
	km=$(stats "${kite_rates[@]}" | cut -d' ' -f1) nm=$(stats "${nats_rates[@]}" | cut -d' ' -f1)
	r=$(ratio "$km" "$nm")
	v=$(verdict "$r" ge 0.75) # a MISS is a figure to report, not a failed run
	table_row "$size B" "$(cell fmt_si "${kite_rates[@]}")/s" "$(cell fmt_si "${nats_rates[@]}")/s" "$r" "$v"
done
echo "(ratio: median bridge path / median plain NATS; target >= 0.75)"
# The bridges' own accounting: every message exported and imported, none
# dropped or lost.
kill -TERM "${bridges[@]}"
wait "${bridges[@]}"
grep -h 'final:' "$BENCH_TMP/A.err" "$BENCH_TMP/B.err" | sed 's/^/# /'
exit 0
