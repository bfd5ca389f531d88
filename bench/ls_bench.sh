#!/bin/bash
# ls_bench: whole-process time of `kite ls` (and `kite ls --json`) on a bus
# of HANDLES handles (default 1,000) held by bench/many_handles.c, and the
# bounded wait that stopped handles add. Every pair of handles on a bus
# shares a link (a socket at each end, and a pidfd at each end), so 1,000
# handles hold about 2 million descriptors: many_handles spreads them over
# as many processes as RLIMIT_NOFILE needs (PROCS=N to choose), and this
# script checks first that the system's file table (fs.file-max) has room
# to spare for everyone else.
#   bench/run.sh sets KITE and BENCH_BIN; by hand:
#   KITE=build/kite bench/ls_bench.sh   (env: HANDLES=1000 PROCS=0 BENCH_REPS=5)
set -u # (not -e: lib.sh's exit trap waits on killed helpers)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
KITE=${KITE:-$here/../build/kite}
HANDLES=${HANDLES:-1000}
PROCS=${PROCS:-0}
[ -n "${QUICK:-}" ] || [ "${BENCH_REPS}" -ge 3 ] || BENCH_REPS=3
bench_tmpdir
export KITE_BUS="lsbench$$"

holder_bin=${BENCH_BIN:-}/many_handles
if [ ! -x "$holder_bin" ]; then # run by hand: build it here
	holder_bin=$BENCH_TMP/many_handles
	cc -O2 -std=c11 -D_GNU_SOURCE -I"$here/../include" -pthread -o "$holder_bin" \
		"$here/many_handles.c" "$here/../build/libkite.a" || exit 1
fi
read -r used _ max </proc/sys/fs/file-nr
want=$((2 * HANDLES * HANDLES + 10 * HANDLES))
if [ $((max - used)) -lt $((want + 200000)) ]; then # (200,000 left for the rest)
	echo "ls_bench: $HANDLES handles need about $want descriptors; fs.file-max leaves" \
		"$((max - used)): not enough to spare, skipped" >&2
	exit 1
fi
mkfifo "$BENCH_TMP/hold"
exec 9<>"$BENCH_TMP/hold" # the holder's stdin: closing it lets the handles go
a=$(date +%s%N)
# (Not bench_spawn: a background command's stdin would be /dev/null.)
"$holder_bin" "$HANDLES" "$PROCS" <"$BENCH_TMP/hold" >"$BENCH_TMP/ready" 9>&- &
BENCH_PIDS+=("$!")
for _ in $(seq 6000); do [ -s "$BENCH_TMP/ready" ] && break; sleep 0.1; done
[ -s "$BENCH_TMP/ready" ] || { echo "ls_bench: $HANDLES handles did not open in 10 minutes" >&2; exit 1; }
open_s=$(awk -v d=$(($(date +%s%N) - a)) 'BEGIN { printf "%.1f", d / 1e9 }')

# Every handle must answer (a few tries: the holders may still be busy
# making their last links).
for _ in 1 2 3 4 5; do
	"$KITE" ls --timeout 3 >"$BENCH_TMP/ls.txt" 2>&1
	n=$(tail -n +2 "$BENCH_TMP/ls.txt" | grep -c " answered ")
	[ "$n" = "$HANDLES" ] && break
	sleep 2
done
if [ "$n" != "$HANDLES" ]; then
	echo "ls_bench: kite ls saw $n of $HANDLES handles answer" >&2
	exit 1
fi
t_ls=() t_json=() t_stop=()
time_ms() { local a b; a=$(date +%s%N); "$@" >/dev/null 2>&1; b=$(date +%s%N); awk -v d=$((b - a)) 'BEGIN { printf "%.3f", d / 1e6 }'; }
for ((r = 0; r < BENCH_REPS; r++)); do
	t_ls+=("$(time_ms "$KITE" ls)")
	t_json+=("$(time_ms "$KITE" ls --json)")
done
# Stopped handles: one process of the holder (its handles all stop).
victim=$(pgrep -P "${BENCH_PIDS[0]}" | head -1)
kill -STOP "$victim"
for ((r = 0; r < BENCH_REPS; r++)); do
	t_stop+=("$(time_ms "$KITE" ls --timeout 0.5)")
done
silent=$("$KITE" ls --timeout 0.5 2>/dev/null | grep -c " silent ")
kill -CONT "$victim"
fmt_ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
procs=$(pgrep -c -P "${BENCH_PIDS[0]}")
echo "ls_bench: $HANDLES handles on one bus in $procs processes (opened in $open_s s)," \
	"$BENCH_REPS runs each, whole process, output to /dev/null"
table_cols 44 26
table_row case "ms median [min..max]"
table_rule
table_row "kite ls" "$(cell fmt_ms "${t_ls[@]}")"
table_row "kite ls --json" "$(cell fmt_ms "${t_json[@]}")"
table_row "kite ls --timeout 0.5, $silent stopped" "$(cell fmt_ms "${t_stop[@]}")"
exec 9>&-
bench_wait_all
