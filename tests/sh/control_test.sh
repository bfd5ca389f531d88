#!/bin/bash
# The control plane from the command line (issue 9): one-shot `kite pub`
# runs against an idle `kite sub` lose nothing silently, and listeners of
# another user squatting on the bus cannot make `kite pub` slow to start.
. "$(dirname "$0")/lib.sh"

# start_sub NAME ARGS...: a subscriber whose stdout/stderr go to
# $tmpdir/NAME.{out,err}; returns once its subscriptions are in force.
start_sub() {
	local name=$1; shift
	spawn "$KITE" sub -v "$@" >"$tmpdir/$name.out" 2>"$tmpdir/$name.err"
	eval "${name}_pid=$LAST_PID"
	wait_for 10 grep -q 'subscribed' "$tmpdir/$name.err"
}

# one_shots NAME N PAYLOAD CHANNEL_FMT: N `kite pub` runs, each publishing
# PAYLOAD once and exiting, against an idle subscriber of 'oneshot.>'; the
# subscriber must get all N, and report nothing lost (nothing was overrun).
one_shots() {
	local name=$1 n=$2 payload=$3 fmt=$4 i rc
	start_sub "$name" --count "$n" --timeout 10 'oneshot.>' || not_ok "$name: subscriber ready"
	for i in $(seq "$n"); do
		# shellcheck disable=SC2059
		"$KITE" pub "$(printf "$fmt" "$i")" "$payload" || not_ok "$name: kite pub $i"
	done
	eval "wait \$${name}_pid"; rc=$?
	local got lost
	got=$(wc -l <"$tmpdir/$name.out")
	lost=$(grep -c '^kite sub: lost ' "$tmpdir/$name.err")
	echo "# $name: $got of $n received, $lost loss reports, sub exit $rc"
	check "$name: all $n one-shot messages arrive" test "$rc" = 0 -a "$got" = "$n"
	check "$name: nothing reported lost (nothing was overrun)" test "$lost" = 0
}

big=$(head -c 3000 /dev/zero | tr '\0' 'b')
one_shots big 40 "$big" 'oneshot.big'

# Squatters: nobody binds 20 names @kite/<bus>/<hex> with listen(0) and one
# pending connect each; a root `kite pub` (kite_open, default handshake
# 1000 ms) must not pay ~0.5 s for each.
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
	skip "kite pub beside 20 hostile listeners of nobody" "needs root and setpriv"
else
	cat >"$tmpdir/squat.py" <<'PY'
import socket, sys, time
bus = sys.argv[1]
keep = []
for i in range(20):
    name = "\0kite/%s/%016x" % (bus, 0x5a5a000000000000 + i)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(name)
    listener.listen(0)
    pending = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pending.setblocking(False)
    pending.connect(name)  # fills a backlog of 0: the next connect waits
    keep += [listener, pending]
print("ready", flush=True)
time.sleep(120)
PY
	chmod 755 "$tmpdir"
	chmod 644 "$tmpdir/squat.py"
	spawn setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/bin/python3 "$tmpdir/squat.py" \
		"$KITE_BUS" >"$tmpdir/squat.out" 2>&1
	if wait_for 10 grep -q ready "$tmpdir/squat.out"; then
		start=$(date +%s%N)
		"$KITE" pub squat.x hello; rc=$?
		ms=$(( ($(date +%s%N) - start) / 1000000 ))
		echo "# kite pub beside 20 hostile listeners of nobody: $ms ms"
		check "kite pub beside 20 hostile listeners exits 0" test $rc = 0
		check "kite pub beside 20 hostile listeners starts in < 1.5 s ($ms ms)" test "$ms" -lt 1500
	else
		not_ok "squatting listeners ready" "$(head -c 300 "$tmpdir/squat.out")"
	fi
fi
