#!/bin/bash
# kite pub / kite sub / kite hoststats end to end, on a private bus.
. "$(dirname "$0")/lib.sh"

# start_sub NAME ARGS...: a subscriber whose stdout/stderr go to
# $tmpdir/NAME.{out,err}; returns once its subscriptions are in force.
start_sub() {
	local name=$1; shift
	spawn "$KITE" sub -v "$@" >"$tmpdir/$name.out" 2>"$tmpdir/$name.err"
	eval "${name}_pid=$LAST_PID"
	wait_for 10 grep -q 'subscribed' "$tmpdir/$name.err"
}

# --help everywhere, exit codes for bad arguments
for cmd in pub sub hoststats; do
	check "$cmd --help exits 0 with usage" bash -c "'$KITE' $cmd --help | grep -q '^Usage: kite $cmd'"
done
check "kite --help lists pub and sub" bash -c "'$KITE' --help | grep -q '^  pub ' && '$KITE' --help | grep -q '^  sub '"
check "kite --version" bash -c "'$KITE' --version | grep -Eq '^kite [0-9]+\.[0-9]+\.[0-9]+$'"
"$KITE" pub 'bad..name' x 2>"$tmpdir/e"; rc=$?
check "pub with a bad channel exits 100 and says why" test $rc = 100 -a -n "$(grep 'bad channel name' "$tmpdir/e")"
"$KITE" sub 'a.>.b' 2>"$tmpdir/e"; rc=$?
check "sub with '>' not last exits 100" test $rc = 100
"$KITE" sub --count 0 a 2>/dev/null; rc=$?
check "sub --count 0 exits 100" test $rc = 100
"$KITE" sub --bogus a 2>"$tmpdir/e"; rc=$?
check "unknown option exits 100 and points to --help" test $rc = 100 -a -n "$(grep -- "--help" "$tmpdir/e")"
"$KITE" nosuch 2>/dev/null; rc=$?
check "unknown command exits 100" test $rc = 100

# lines from stdin, exact output
start_sub s1 --count 3 --timeout 20 'orders.>' || not_ok "subscriber ready"
printf 'one\ntwo words\nthree\n' | "$KITE" pub orders.eu.created
wait "$s1_pid"; rc=$?
check "sub --count 3 exits 0" test $rc = 0
pid_line=$(head -n1 "$tmpdir/s1.out")
check "sub prints channel, pid, uid, seq, payload" \
	bash -c "[[ '$pid_line' =~ ^orders\.eu\.created\ pid=[0-9]+\ uid=$(id -u)\ seq=1\ one$ ]]"
check "sequence 1..3 in order, payloads intact" \
	bash -c "cut -d' ' -f4- '$tmpdir/s1.out' | diff - <(printf 'seq=1 one\nseq=2 two words\nseq=3 three\n')"

# JSON output
start_sub s2 --json --count 2 --timeout 20 'j.*' || not_ok "json subscriber ready"
"$KITE" pub j.x 'he said "hi"'
printf 'tab\there\n' | "$KITE" pub j.y
wait "$s2_pid"
if command -v python3 >/dev/null; then
	check "--json lines parse and carry every field" python3 - "$tmpdir/s2.out" <<'PY'
import json, sys, os
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
assert rows[0]["payload"] == 'he said "hi"' and rows[0]["channel"] == "j.x", rows
assert rows[1]["payload"] == "tab\there" and rows[1]["channel"] == "j.y", rows
for r in rows:
    assert r["seq"] == 1 and r["uid"] == os.getuid() and r["gid"] == os.getgid(), r
    assert r["pid"] > 0 and len(r["publisher"]) == 16 and r["timestamp_ns"] > 0, r
PY
else
	skip "--json lines parse and carry every field" "no python3 to parse them"
fi

# timeouts
"$KITE" sub --count 1 --timeout 0.3 nothing.here >/dev/null 2>&1; rc=$?
check "--timeout before --count exits 2" test $rc = 2
"$KITE" sub --timeout 0.3 nothing.here >/dev/null 2>&1; rc=$?
check "--timeout without --count exits 0" test $rc = 0

# a late joiner sees only what comes after it joined
"$KITE" pub late.x before
start_sub s3 --count 1 --timeout 20 late.x || not_ok "late subscriber ready"
"$KITE" pub late.x after
wait "$s3_pid"
check "late joiner gets the message after it joined, not before" \
	bash -c "grep -q ' after$' '$tmpdir/s3.out' && ! grep -q before '$tmpdir/s3.out'"

# --exit-when-gone, and hoststats
start_sub s4 --exit-when-gone --timeout 30 'host.*.>' || not_ok "hoststats subscriber ready"
"$KITE" hoststats --interval 0.05 --count 3 --prefix host.testbox --stats 2>"$tmpdir/hs.err"; rc=$?
check "hoststats --count 3 exits 0" test $rc = 0
wait "$s4_pid"; rc=$?
check "sub --exit-when-gone exits 0 after the publisher left" test $rc = 0
for ch in cpu mem load; do
	check "hoststats publishes host.testbox.$ch" grep -q "^host\.testbox\.$ch pid=" "$tmpdir/s4.out"
done
check "cpu figures are percentages" bash -c "grep -Eq '^host\.testbox\.cpu .* user=[0-9]+\.[0-9] system=[0-9]+\.[0-9] iowait=[0-9.]+ idle=[0-9]+\.[0-9]$' '$tmpdir/s4.out'"
published=$(grep -o 'published [0-9]*' "$tmpdir/hs.err" | cut -d' ' -f2)
check "every message hoststats published was received ($published)" \
	test "$(wc -l <"$tmpdir/s4.out")" = "$published"

# the channel policy: a subscriber of another uid is refused, both sides say so
if is_root && command -v setpriv >/dev/null; then
	chmod 755 "$tmpdir"
	spawn setpriv --reuid=65534 --regid=65534 --clear-groups "$KITE" sub -v --timeout 20 --count 1 secret.x \
		>"$tmpdir/n.out" 2>"$tmpdir/n.err"
	npid=$LAST_PID
	wait_for 10 grep -q subscribed "$tmpdir/n.err"
	"$KITE" pub secret.x classified 2>"$tmpdir/p.err"; rc=$?
	check "pub exits 1 when a subscriber was refused" test $rc = 1
	check "the publisher says whom it refused and why" grep -q 'uid 65534 is not allowed on channel secret.x' "$tmpdir/p.err"
	wait_for 10 grep -q 'refused' "$tmpdir/n.err"
	check "the refused subscriber is told why" grep -q 'refused by pid .*not allowed' "$tmpdir/n.err"
	kill "$npid" 2>/dev/null; wait "$npid" 2>/dev/null
	check "the refused subscriber received nothing" test ! -s "$tmpdir/n.out"
else
	skip "policy refusal across uids" "needs root and setpriv to run a subscriber as uid 65534"
fi

# the demo itself
bash demo/run.sh "$KITE" >"$tmpdir/demo.out" 2>&1; rc=$?
check "make demo's script runs and exits 0" test $rc = 0
check "the demo ends with its counts and no loss" grep -q 'received [1-9][0-9]*, lost 0' "$tmpdir/demo.out"
