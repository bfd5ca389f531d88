# Sourced by tests/sh/*_test.sh: TAP output, a private kite bus, and cleanup
# of everything a test starts, also when it fails.
#   ok NAME / not_ok NAME [WHY] / skip NAME WHY / check NAME COMMAND...
#   spawn COMMAND... (background; its pid is killed at exit; sets $LAST_PID)
#   tmpdir is a private folder, removed at exit.
#   need PACKAGE:COMMAND...: skip the whole file (one # SKIP line naming the
#   package) unless every COMMAND is installed.
#   is_root: true when running as root (tests that need it skip otherwise:
#   `make check` runs the suite as an ordinary user); $me is our user name.
set -u
: "${KITE:?KITE must name the kite binary (tests/run.sh sets it)}"
export KITE_BUS="t$$-$(basename "$0" .sh)"
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/kite-test.XXXXXX")
me=$(id -un)
__pids=()
__cleanups=()

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1${2:+ # $2}"; }
skip() { echo "ok - $1 # SKIP $2"; }
is_root() { [ "$(id -u)" = 0 ]; }
need() {
	local pc missing=
	for pc; do command -v "${pc#*:}" >/dev/null 2>&1 || missing+=" ${pc#*:} (${pc%%:*})"; done
	[ -z "$missing" ] && return 0
	skip "$(basename "$0")" "needs$missing, see tests/deps.txt"
	exit 0
}
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name"; fi; }

spawn() { "$@" & LAST_PID=$!; __pids+=("$LAST_PID"); }
at_exit() { __cleanups+=("$*"); }

__cleanup() {
	local p c
	for p in "${__pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 0.05
	for p in "${__pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for c in "${__cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
	rm -rf "$tmpdir"
}
trap __cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds; 1 on time-out.
wait_for() {
	local deadline=$(( $(date +%s%N) / 1000000 + ${1%.*} * 1000 )); shift
	until "$@"; do
		[ $(( $(date +%s%N) / 1000000 )) -lt $deadline ] || return 1
		sleep 0.02
	done
}
