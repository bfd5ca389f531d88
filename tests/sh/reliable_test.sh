#!/bin/bash
# kite sub --reliable and kite pub's back-pressure, on a private bus: a
# subscriber whose output stalls for a second (a full pipe) loses nothing
# when reliable, while a radio one beside it is overrun and says so.
. "$(dirname "$0")/lib.sh"

N=300000 # 6-byte lines: about 9 MiB of records, over 4 laps of a 2 MiB ring

# start_sub NAME ARGS...: a subscriber whose output goes through a pipe
# that is not read for its first second; stderr to $tmpdir/NAME.err.
start_sub() {
	local name=$1; shift
	spawn bash -c "timeout 60 '$KITE' sub -v --stats --count $N --exit-when-gone $* \
		2>'$tmpdir/$name.err' | { sleep 1; cat >'$tmpdir/$name.out'; }"
	eval "${name}_pid=$LAST_PID"
	wait_for 10 grep -qs 'subscribed' "$tmpdir/$name.err"
}

start_sub rel --reliable "'rel.>'" || not_ok "reliable subscriber ready"
start_sub radio "'rel.>'" || not_ok "radio subscriber ready"
spawn bash -c "seq 1 $N | timeout 60 '$KITE' pub rel.pipe"; pub_pid=$LAST_PID
# (held by the stalled reliable subscriber for about a second)
check "kite ls --json shows the reliable delivery and the radio one" \
	wait_for 10 bash -c "'$KITE' ls --json 'rel.>' >'$tmpdir/ls.json' && \
		grep -q '\"delivery\":\"reliable\"' '$tmpdir/ls.json' && \
		grep -q '\"delivery\":\"radio\"' '$tmpdir/ls.json'"
wait "$pub_pid"; rc=$?
check "kite pub exits 0 after waiting for the reliable subscriber" test $rc = 0
wait "$rel_pid"
wait "$radio_pid"
check "reliable: every line, in order" bash -c "cut -d' ' -f5 '$tmpdir/rel.out' | cmp -s - <(seq 1 $N)"
check "reliable: nothing lost" grep -q "received $N, lost 0" "$tmpdir/rel.err"
check "radio beside it: overrun, and the loss is reported exactly" \
	bash -c "l=\$(sed -n 's/.*received \\([0-9]*\\), lost \\([0-9]*\\)$/\\1 \\2/p' '$tmpdir/radio.err'); \
		set -- \$l; [ \"\$2\" -gt 0 ] && [ \$((\$1 + \$2)) = $N ]"
