#!/bin/bash
# kite sub --last / --last-ms (replay for late joiners) and kite pub
# --ring-bytes, end to end on a private bus.
. "$(dirname "$0")/lib.sh"

"$KITE" sub --last 0 'a.>' 2>"$tmpdir/e"; rc=$?
check "sub --last 0 exits 100 and says why" test $rc = 100 -a -n "$(grep -- '--last wants' "$tmpdir/e")"
"$KITE" sub --last-ms x 'a.>' 2>/dev/null; rc=$?
check "sub --last-ms x exits 100" test $rc = 100
"$KITE" pub --ring-bytes 3000 a.b x 2>"$tmpdir/e"; rc=$?
check "pub --ring-bytes 3000 exits 100 and says why" test $rc = 100 -a -n "$(grep 'power of two' "$tmpdir/e")"
"$KITE" pub --ring-bytes 1G a.b x 2>/dev/null; rc=$?
check "pub --ring-bytes 1G (over 512M) exits 100" test $rc = 100
"$KITE" pub --ring-bytes 2K a.b x 2>/dev/null; rc=$?
check "pub --ring-bytes 2K (one slot) exits 100" test $rc = 100

# A publisher that stays (stdin open): three values, then a late joiner.
mkfifo "$tmpdir/in"
exec 3<>"$tmpdir/in" # (read-write: opening it never waits for the other end)
# (a background job's stdin is /dev/null unless redirected inside it)
spawn sh -c 'exec "$0" pub --keep-ring --ring-bytes 64K config.x <"$1"' "$KITE" "$tmpdir/in"
pub_pid=$LAST_PID
printf 'v1\nv2\nv3\n' >&3
# (the values are written once kite pub has read them: wait for its ring)
wait_for 10 bash -c "ls -l /proc/$pub_pid/fd 2>/dev/null | grep -q 'kite-ring:config.x'" ||
	not_ok "publisher made its ring"
sleep 0.3
check "the ring has the size asked for (64 KiB + its header page + a 256 KiB pool)" bash -c \
	"for f in /proc/$pub_pid/fd/*; do [[ \$(readlink \$f) == *kite-ring:config.x* ]] && stat -L -c %s \$f; done | grep -qx 331776"
timeout 20 "$KITE" sub --last 1 --count 1 'config.*' >"$tmpdir/last1.out"; rc=$?
check "sub --last 1 gets the latest value at once" test $rc = 0
check "... with its original seq" bash -c "cut -d' ' -f4- '$tmpdir/last1.out' | grep -qx 'seq=3 v3'"
timeout 20 "$KITE" sub --last 2 --count 3 'config.*' >"$tmpdir/last2.out" &
sub_pid=$!
sleep 1
printf 'v4\n' >&3
wait $sub_pid; rc=$?
check "sub --last 2 then live: exits 0" test $rc = 0
check "... seq 2, 3 replayed, then 4 live, nothing twice" \
	bash -c "cut -d' ' -f4- '$tmpdir/last2.out' | diff - <(printf 'seq=2 v2\nseq=3 v3\nseq=4 v4\n')"
timeout 20 "$KITE" sub --last-ms 60000 --count 4 'config.*' >"$tmpdir/ms.out"; rc=$?
check "sub --last-ms 60000 gets all four" bash -c "test $rc = 0 && cut -d' ' -f4 '$tmpdir/ms.out' | tr '\n' ' ' | grep -qx 'seq=1 seq=2 seq=3 seq=4 '"
# --keep-ring: past the default 10 s idle release the value is still held.
sleep 11
timeout 20 "$KITE" sub --last 1 --count 1 'config.*' >"$tmpdir/kept.out"; rc=$?
check "--keep-ring: the last value is still there after 11 s of silence" \
	bash -c "test $rc = 0 && cut -d' ' -f4- '$tmpdir/kept.out' | grep -qx 'seq=4 v4'"
exec 3>&-

# A publisher in another time namespace (unshare -T): its CLOCK_MONOTONIC
# is 100,000 s ahead of ours, so its stream seems to begin after anything
# we subscribe to. A plain subscriber that subscribes after v1..v3 must
# not take them for a stream begun after it subscribed: it gets v4 only.
if ! unshare -T --monotonic 100000 true 2>/dev/null; then
	skip "a publisher in another time namespace: no replay for a late joiner" \
		"unshare -T needs root (or a kernel with time namespaces)"
else
	mkfifo "$tmpdir/tns"
	exec 4<>"$tmpdir/tns"
	spawn sh -c 'exec unshare -T --monotonic 100000 "$0" pub --keep-ring tns.x <"$1"' \
		"$KITE" "$tmpdir/tns"
	tns_pid=$LAST_PID
	printf 'v1\nv2\nv3\n' >&4
	wait_for 10 bash -c "ls -l /proc/$tns_pid/fd 2>/dev/null | grep -q 'kite-ring:tns.x'" ||
		not_ok "the publisher in a time namespace made its ring"
	sleep 0.3
	timeout 20 "$KITE" sub --count 1 tns.x >"$tmpdir/tns.out" &
	sub_pid=$!
	sleep 1
	printf 'v4\n' >&4
	wait $sub_pid; rc=$?
	check "a publisher in another time namespace: a late joiner gets v4 only, not v1..v3" \
		bash -c "test $rc = 0 && cut -d' ' -f4- '$tmpdir/tns.out' | diff - <(printf 'seq=4 v4\n')"
	exec 4>&-
fi
