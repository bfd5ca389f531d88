#!/bin/bash
# kite serve benchmark: requests per second through --handoff against the
# same worker listening directly (socket activation: kite is out of the data
# path), and the longest stall a client sees while kite reloads the server.
# Load: wrk (Debian) to 127.0.0.1 only, bounded duration; stalls: the test
# client (sequential requests, one connection each; the stall is the slowest
# request of the run). Each figure: median over RUNS runs, with min-max.
#   KITE=build/kite bench/serve_bench.sh     (RUNS=5 DURATION=3 by default)
set -u
: "${KITE:?KITE must name the kite binary}"
RUNS=${RUNS:-5}
DURATION=${DURATION:-3}
CONNS=${CONNS:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
KITE=$(cd "$(dirname "$KITE")" && pwd)/$(basename "$KITE")
bdir=$(dirname "$KITE")
W=$bdir/tests/helpers/serve_worker
if [ ! -x "$W" ]; then
	rel=${bdir#"$root"/}
	make -s --no-print-directory -C "$root" BUILD="$rel" "$rel/tests/helpers/serve_worker" >&2 || exit 1
fi
command -v wrk >/dev/null || { echo "serve_bench: wrk not installed (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kite-serve-bench.XXXXXX")
name="bench$$"
sup=
cleanup() {
	[ -n "$sup" ] && { kill -TERM "$sup" 2>/dev/null; wait "$sup" 2>/dev/null; }
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start MODE-ARGS...: a supervisor; sets $sup and $port once it is up.
start() {
	"$KITE" serve --name "$name" --listen tcp:127.0.0.1:0 "$@" -- "$W" 2>>"$tmp/log" &
	sup=$!
	local i
	for i in $(seq 200); do
		if "$KITE" serve status "$name" 2>/dev/null | grep -q 'up current'; then
			port=$("$KITE" serve status "$name" | awk '/^listen tcp/{n=split($2,a,":"); print a[n]}')
			return 0
		fi
		sleep 0.05
	done
	echo "serve_bench: supervisor never came up" >&2
	cat "$tmp/log" >&2
	exit 1
}
stop() { "$KITE" serve stop "$name" >/dev/null 2>&1; wait "$sup" 2>/dev/null; sup=; }

# rps [wrk args...]: requests per second of one wrk run (errors to $tmp/err).
rps() {
	local out
	out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s "$@" "http://127.0.0.1:$port/" 2>&1)
	grep -E 'Socket errors|Non-2xx' <<<"$out" >>"$tmp/err"
	awk '/^Requests\/sec/{printf "%d\n", $2}' <<<"$out"
}

# stall [reloads]: the slowest request (ms) of a client running while kite
# reloads the server `reloads` times (0: no reload, the baseline).
stall() {
	"$W" client "127.0.0.1:$port" 100000000 $((DURATION * 4 + 30)) >"$tmp/client" &
	local c=$! i
	sleep 0.3
	for ((i = 0; i < $1; i++)); do
		"$KITE" serve reload "$name" >/dev/null 2>>"$tmp/err" || echo "reload failed" >>"$tmp/err"
		sleep 0.2
	done
	[ "$1" = 0 ] && sleep 1
	kill -TERM "$c"; wait "$c"
	grep -q 'failed=0 ' "$tmp/client" || echo "client: $(cat "$tmp/client")" >>"$tmp/err"
	sed -n 's/.*max_ms=\([0-9]*\).*/\1/p' "$tmp/client"
}

# stats: "median (min-max)" of the numbers on stdin.
stats() { sort -n | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
	printf "%d (%d-%d)", m, v[1], v[NR]}'; }
median() { sort -n | awk '{v[NR]=$1} END {print NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

: >"$tmp/err"
for ((r = 1; r <= RUNS; r++)); do
	start
	rps >>"$tmp/direct_ka"
	rps -H "Connection: close" >>"$tmp/direct_cl"
	stall 0 >>"$tmp/base_act"
	stall 3 >>"$tmp/stall_act"
	stop
	start --handoff
	rps >>"$tmp/handoff_ka"
	rps -H "Connection: close" >>"$tmp/handoff_cl"
	stall 0 >>"$tmp/base_ho"
	stall 3 >>"$tmp/stall_ho"
	stop
done

ratio() { awk -v a="$(median <"$1")" -v b="$(median <"$2")" 'BEGIN{printf "%.2f", b ? a / b : 0}'; }
echo "kite serve: $RUNS runs, wrk -t1 -c$CONNS -d${DURATION}s to 127.0.0.1, one worker process"
echo "medians (min-max)"
printf '%-34s %-22s %-22s %s\n' "requests/s" "direct (activation)" "--handoff" "handoff/direct"
printf '%-34s %-22s %-22s %s\n' "keep-alive connections" "$(stats <"$tmp/direct_ka")" \
	"$(stats <"$tmp/handoff_ka")" "$(ratio "$tmp/handoff_ka" "$tmp/direct_ka")"
printf '%-34s %-22s %-22s %s\n' "new connection per request" "$(stats <"$tmp/direct_cl")" \
	"$(stats <"$tmp/handoff_cl")" "$(ratio "$tmp/handoff_cl" "$tmp/direct_cl")"
echo
printf '%-34s %-22s %-22s\n' "slowest request, ms" "activation" "--handoff"
printf '%-34s %-22s %-22s\n' "no reload (baseline)" "$(stats <"$tmp/base_act")" "$(stats <"$tmp/base_ho")"
printf '%-34s %-22s %-22s\n' "during 3 reloads" "$(stats <"$tmp/stall_act")" "$(stats <"$tmp/stall_ho")"
echo "target: --handoff within 10% of direct (ratio >= 0.90); no stall above 50 ms"
if [ -s "$tmp/err" ]; then
	echo "errors seen:"
	sort "$tmp/err" | uniq -c | sed 's/^/  /'
fi
