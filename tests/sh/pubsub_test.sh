#!/bin/bash
# kite pub / kite sub / kite hoststats end to end, on a private bus.
. "$(dirname "$0")/lib.sh"

# start_sub NAME ARGS...: a subscriber whose stdout/stderr go to
# $tmpdir/NAME.{out,err}; returns once its subscriptions are in force.
# It is killed after 60 s (exit 124), so a test never hangs on it.
start_sub() {
	local name=$1; shift
	spawn timeout 60 "$KITE" sub -v "$@" >"$tmpdir/$name.out" 2>"$tmpdir/$name.err"
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
	# kite_open does not wait for a peer the policy lets into nothing
	# (a stranger's listener must cost it nothing): publish once the
	# subscriber's patterns have reached us.
	{ sleep 0.5; echo classified; } | "$KITE" pub secret.x 2>"$tmpdir/p.err"; rc=$?
	check "pub exits 1 when a subscriber was refused" test $rc = 1
	check "the publisher says whom it refused and why" grep -q 'uid 65534 is not allowed on .*channel.* secret.x' "$tmpdir/p.err"
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

# Options after operands, as GNU tools take them; "--" ends the options; a
# token that looks like an option is never a channel, pattern or payload.
start_sub o1 'opt.>' --count 3 --timeout 20 || not_ok "subscriber with options after its pattern ready"
"$KITE" pub opt.a first --stats 2>"$tmpdir/o1.pub"; rc=$?
check "pub CHANNEL MESSAGE --stats: exit 0, --stats obeyed" \
	bash -c "[ $rc = 0 ] && grep -q 'published 1 messages on opt.a' '$tmpdir/o1.pub'"
printf 'from stdin\n' | "$KITE" pub opt.b --stats 2>/dev/null
"$KITE" pub opt.c -- --stats
wait "$o1_pid"; rc=$?
check "sub PATTERN --count 3 --timeout 20: exits 0 after 3" test $rc = 0
check "options after operands are options; after '--' they are payload" \
	diff <(cut -d' ' -f1,5- "$tmpdir/o1.out") <(printf 'opt.a first\nopt.b from stdin\nopt.c --stats\n')
POSIXLY_CORRECT=1 timeout 20 "$KITE" sub --timeout 0.2 nothing.here --count 1 >/dev/null 2>&1; rc=$?
check "POSIXLY_CORRECT does not turn options into patterns (exit 2: timed out)" test $rc = 2
for args in "sub a.b --bogus" "sub a.b -x" "pub a.b --bogus" "pub a.b -5" "pub a.b x --bogus" "sub a.b --count"; do
	# shellcheck disable=SC2086
	timeout 20 "$KITE" $args </dev/null >/dev/null 2>"$tmpdir/e"; rc=$?
	check "kite $args: exit 100, says what is wrong" \
		bash -c "[ $rc = 100 ] && grep -Eq \"unknown option '(--bogus|-x|-5)' .*after '--'|option '--count' needs a value\" '$tmpdir/e'"
done
"$KITE" pub a.b x y 2>"$tmpdir/e"; rc=$?
check "pub with a third operand: exit 100" bash -c "[ $rc = 100 ] && grep -q \"then 'y'\" '$tmpdir/e'"
timeout 20 "$KITE" sub --json=yes a.b 2>"$tmpdir/e"; rc=$?
check "--json=yes: exit 100, takes no value" bash -c "[ $rc = 100 ] && grep -q \"'--json' takes no value\" '$tmpdir/e'"
for cmd in "pub a.b x" "sub a.b"; do
	# shellcheck disable=SC2086
	timeout 20 "$KITE" $cmd --bus bad/bus 2>"$tmpdir/e"; rc=$?
	check "kite $cmd --bus bad/bus: exit 100, names the bus" \
		bash -c "[ $rc = 100 ] && grep -q \"bad bus name 'bad/bus'\" '$tmpdir/e'"
done
KITE_BUS=bad/bus timeout 20 "$KITE" sub a.b 2>"$tmpdir/e"; rc=$?
check "KITE_BUS=bad/bus: exit 100, says it came from \$KITE_BUS" \
	bash -c "[ $rc = 100 ] && grep -q \"bad bus name 'bad/bus' (from \\\$KITE_BUS)\" '$tmpdir/e'"

# Text mode: one message, one line. Control bytes, backslash, DEL and bytes
# that are not well-formed UTF-8 are escaped; UTF-8 text is kept; printf
# '%b' gives back the exact payload.
start_sub e1 --count 4 --timeout 20 'esc.>' || not_ok "escaping subscriber ready"
"$KITE" pub esc.a "$(printf 'two\nlines\r\ttab \\ \033[31m\177 caf\303\251 \360\237\230\200')"
printf 'nul\0|\302\205|\302\240|\300\257|\355\240\200|\364\220\200\200|\342\202|\200\n' | "$KITE" pub esc.b
head -c 200000 /dev/urandom | tr -d '\n' >"$tmpdir/random"
printf '\n' | cat "$tmpdir/random" - | "$KITE" pub esc.c
"$KITE" pub esc.d 'plain "json" {}'
wait "$e1_pid"
check "four messages, four lines" test "$(wc -l <"$tmpdir/e1.out")" = 4
payload() { grep -a "^$1 " "$tmpdir/e1.out" | cut -d' ' -f5-; }
check "newline, CR, tab, backslash, ESC, DEL escaped; UTF-8 kept" \
	test "$(payload esc.a)" = 'two\nlines\r\ttab \\ \x1b[31m\x7f café 😀'
check "NUL, C1 NEL, overlong, surrogate, > U+10FFFF, truncated, stray byte escaped; NBSP kept" \
	test "$(payload esc.b)" = "nul\\x00|\\xc2\\x85|$(printf '\302\240')|\\xc0\\xaf|\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80|\\xe2\\x82|\\x80"
check "200 kB of random bytes: printf %b gives them back exactly" \
	bash -c "printf '%b' \"\$(grep -a '^esc.c ' '$tmpdir/e1.out' | cut -d' ' -f5-)\" | cmp -s - '$tmpdir/random'"
check "plain text unchanged" test "$(payload esc.d)" = 'plain "json" {}'
check "the random payload's line holds no control byte" \
	bash -c "! grep -a '^esc.c ' '$tmpdir/e1.out' | LC_ALL=C grep -aq '[[:cntrl:]]'"

# --json: every line is strict JSON whatever the payload; UTF-8 text stays
# "payload", any other bytes come back exactly from "payload_base64".
start_sub j1 --json --count 3 --timeout 20 'js.>' || not_ok "JSON subscriber ready"
"$KITE" pub js.a "$(printf 'caf\303\251 "q" \\ \001 \302\205')"
printf '\n' | cat "$tmpdir/random" - | "$KITE" pub js.b
printf 'bin\377\376\000z\n' | "$KITE" pub js.c
wait "$j1_pid"
check "--json: three lines of strict JSON; text kept, bytes exact in payload_base64" \
	/usr/bin/python3 - "$tmpdir/j1.out" "$tmpdir/random" <<'PY'
import base64, json, sys
got = {}
for line in open(sys.argv[1], "rb"):
    m = json.loads(line.decode("utf-8"))  # strict: invalid UTF-8 raises
    got[m["channel"]] = m
assert got["js.a"]["payload"] == 'caf\u00e9 "q" \\ \x01 \x85', got["js.a"]
assert "payload" not in got["js.b"]
assert base64.b64decode(got["js.b"]["payload_base64"], validate=True) == open(sys.argv[2], "rb").read()
assert base64.b64decode(got["js.c"]["payload_base64"], validate=True) == b"bin\xff\xfe\x00z"
PY
