# bench/lib.sh — sourced by bench/*_bench.sh.
#
# Environment (run.sh sets them):
#   KITE        absolute path of the kite binary
#   BENCH_BIN   absolute path of the built bench programs ($BUILD/bench)
#   BENCH_REPS  runs per case (default 5; QUICK=1 makes it 1)
#
# Helpers:
#   bench_tmpdir [BASE]      make a private folder (under /dev/shm unless BASE),
#                            removed at exit; its path is left in $BENCH_TMP
#                            (call it directly, not in $(...): that would be a
#                            subshell and the folder would not be removed)
#   bench_spawn CMD...       start CMD in the background, killed at exit if still
#                            running; its pid is appended to BENCH_PIDS
#   bench_wait_all           wait for BENCH_PIDS; 0 if every one exited 0
#   pin CPU                  "taskset -c CPU" (or nothing if there is no such CPU)
#   stats V...               "median min max" of numbers (median of an even count:
#                            mean of the two middle values)
#   cell FMT V...            "median [min..max]" with each number formatted by FMT
#   fmt_si / fmt_us / fmt_pct / fmt_gbps / fmt_x   number formatters
#   ratio A B                A/B with 2 decimals ("-" if B is 0 or empty)
#   verdict VALUE OP LIMIT   PASS if VALUE OP LIMIT holds (OP: ge or le), else MISS
#   BENCH_AWK_KV             awk code that parses a line of key=value words into
#                            v[key]; prefix it to a program: awk "$BENCH_AWK_KV ..."
#   progress TEXT            a progress note on stderr (the tables go to stdout)
#   table_cols W...          column widths for table_row (first column left-aligned)
#   table_row COL...         one row; table_rule draws a line under a header
set -u

BENCH_REPS=${BENCH_REPS:-5}
[ -n "${QUICK:-}" ] && BENCH_REPS=1
BENCH_PIDS=()
__bench_dirs=()

__bench_cleanup() {
	local p d
	for p in "${BENCH_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${BENCH_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for d in "${__bench_dirs[@]}"; do rm -rf "$d"; done
}
trap __bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_tmpdir() {
	local base=${1:-/dev/shm}
	[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
	BENCH_TMP=$(mktemp -d "$base/kite-bench.XXXXXX") || return 1
	__bench_dirs+=("$BENCH_TMP")
}

BENCH_AWK_KV='{ delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }'

progress() { echo "  ... $*" >&2; }

bench_spawn() { "$@" & BENCH_PIDS+=("$!"); }

bench_wait_all() {
	local p rc=0
	for p in "${BENCH_PIDS[@]}"; do wait "$p" || rc=1; done
	BENCH_PIDS=()
	return $rc
}

pin() {
	if command -v taskset >/dev/null && [ "$1" -lt "$(nproc)" ]; then
		echo "taskset -c $1"
	fi
}

stats() {
	[ $# -gt 0 ] || return 1
	printf '%s\n' "$@" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.6g %.6g %.6g\n", m, v[1], v[NR]
		}'
}

# Formatters: one number in, text out.
fmt_si() { awk -v x="$1" 'BEGIN {
	if (x >= 1e9) printf "%.2fG", x / 1e9
	else if (x >= 1e6) printf "%.2fM", x / 1e6
	else if (x >= 1e3) printf "%.1fk", x / 1e3
	else printf "%.0f", x }'; }
fmt_us() { awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f" : x < 100 ? "%.1f" : "%.0f"), x }'; }
fmt_pct() { awk -v x="$1" 'BEGIN { printf (x == 0 ? "0" : x < 0.1 ? "%.3f" : "%.1f"), x }'; }
fmt_gbps() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
fmt_x() { awk -v x="$1" 'BEGIN { printf "%.2fx", x }'; }

cell() {
	local fmt=$1; shift
	[ $# -gt 0 ] || { echo "failed"; return; }
	local m lo hi
	read -r m lo hi < <(stats "$@")
	if [ $# -eq 1 ]; then
		echo "$($fmt "$m")"
	else
		echo "$($fmt "$m") [$($fmt "$lo")..$($fmt "$hi")]"
	fi
}

ratio() {
	awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
		if (a == "" || b == "" || b + 0 == 0) print "-"
		else printf "%.2f\n", a / b }'
}

verdict() {
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "-" || v == "") { print "MISS (no figure)"; exit }
		ok = op == "ge" ? v + 0 >= l + 0 : v + 0 <= l + 0
		print ok ? "PASS" : "MISS" }'
}

__table_w=()
table_cols() { __table_w=("$@"); }
table_row() {
	local i=0 out="" w col
	for col in "$@"; do
		w=${__table_w[$i]:-12}
		if [ $i -eq 0 ]; then out+=$(printf '%-*s' "$w" "$col")
		else out+=$(printf ' %*s' "$((w - 1))" "$col"); fi
		i=$((i + 1))
	done
	echo "$out"
}
table_rule() {
	local total=0 w
	for w in "${__table_w[@]}"; do total=$((total + w)); done
	printf '%*s\n' "$total" '' | tr ' ' '-'
}
