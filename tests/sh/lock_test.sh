#!/bin/bash
# kite lock: exit codes, the holder's status, signal forwarding, a SIGKILLed
# holder freeing the lock at once, --wait/--timeout, and racing starters.
. "$(dirname "$0")/lib.sh"
L="t$$"   # lock names private to this run

held() { "$KITE" lock --status "$1" >/dev/null 2>&1; }
free() { ! held "$1"; }

"$KITE" lock "$L-rc" -- sh -c 'exit 42'; rc=$?
check "runs COMMAND, exits with its status" [ $rc -eq 42 ]
"$KITE" lock "$L-sig" -- sh -c 'kill -KILL $$'; rc=$?
check "killed COMMAND: 128+signal" [ $rc -eq 137 ]
"$KITE" lock "$L-nf" -- /nonexistent/cmd 2>/dev/null; rc=$?
check "COMMAND not found: 127" [ $rc -eq 127 ]
"$KITE" lock --status "$L-none" >"$tmpdir/st"; rc=$?
check "--status of a free lock: exit 1" [ $rc -eq 1 ]
check "--status says free" grep -qx "$L-none is free" "$tmpdir/st"

# A holder, seen through --status and ss; a second starter is refused.
spawn "$KITE" lock "$L-a" -- sleep 300; a=$LAST_PID
check "holder takes the lock" wait_for 30 held "$L-a"
# The child runs once it has exec'd (between fork and exec it is still kite).
check "COMMAND started" wait_for 30 bash -c "pgrep -P $a -x sleep >/dev/null"
child=$(pgrep -P "$a" -x sleep)
"$KITE" lock --status "$L-a" >"$tmpdir/st"
check "--status: holder pid and command" grep -q "^$L-a is held by pid $a: .*kite lock $L-a -- sleep 300\$" "$tmpdir/st"
if [ -r "/proc/$a/task/$a/children" ]; then
	check "--status: the running child" grep -q "^running pid $child: sleep 300\$" "$tmpdir/st"
else
	skip "--status: the running child" "no /proc/PID/task/TID/children in this kernel"
fi
if command -v ss >/dev/null; then
	check "ss shows the abstract lock socket" bash -c "ss -lxpH | grep -F '@kite-lock/$L-a ' | grep -q 'pid=$a,'"
else
	skip "ss shows the abstract lock socket" "no ss (iproute2), see tests/deps.txt"
fi
"$KITE" lock "$L-a" -- touch "$tmpdir/ran" 2>"$tmpdir/err"; rc=$?
check "held by another: exit 1" [ $rc -eq 1 ]
check "held by another: COMMAND not run" [ ! -e "$tmpdir/ran" ]
check "held by another: names the holder" grep -q "is held by pid $a" "$tmpdir/err"
"$KITE" lock -E 75 "$L-a" -- true 2>/dev/null; rc=$?
check "--conflict-exit picks the code" [ $rc -eq 75 ]
"$KITE" lock --timeout 0.2 "$L-a" -- true 2>/dev/null; rc=$?
check "--timeout expires: exit 2" [ $rc -eq 2 ]
ino=$(awk -v n="@kite-lock/$L-a" '$8 == n { print $7 }' /proc/net/unix)
check "COMMAND does not inherit the lock socket" bash -c "[ -n '$ino' ] && ! ls -l /proc/$child/fd | grep -qF 'socket:[$ino]'"

# --wait: blocked while held, runs once the holder goes.
spawn "$KITE" lock --wait "$L-a" -- touch "$tmpdir/waited"; w=$LAST_PID
check "--wait: blocked while held" bash -c "kill -0 $w && [ ! -e '$tmpdir/waited' ]"
# SIGKILL the holder: the kernel frees the name at once; COMMAND gets TERM.
kill -KILL "$a"; wait "$a" 2>/dev/null
check "SIGKILLed holder: waiter runs" wait_for 30 test -e "$tmpdir/waited"
wait "$w"; rc=$?
check "--wait: exit 0 after running" [ $rc -eq 0 ]
# Gone, or a zombie its new parent has yet to reap.
check "SIGKILLed holder: its COMMAND got TERM" wait_for 30 bash -c "! kill -0 $child 2>/dev/null || grep -q '^State:.*Z' /proc/$child/status"

spawn "$KITE" lock "$L-b" -- sleep 300; b=$LAST_PID
wait_for 30 held "$L-b"
kill -KILL "$b"; wait "$b" 2>/dev/null
"$KITE" lock "$L-b" -- true; rc=$?
check "SIGKILLed holder: lock free at once (no wait)" [ $rc -eq 0 ]

# TERM is forwarded to COMMAND; kite exits with COMMAND's status.
spawn "$KITE" lock "$L-f" -- sh -c "trap 'echo got-term > $tmpdir/term; exit 7' TERM; touch $tmpdir/f.ready; while :; do sleep 0.05; done"; f=$LAST_PID
wait_for 30 test -e "$tmpdir/f.ready" # the trap is set
kill -TERM "$f"; wait "$f"; rc=$?
check "TERM forwarded to COMMAND" grep -qx got-term "$tmpdir/term"
check "exit status after forwarded TERM" [ $rc -eq 7 ]
check "lock released after COMMAND exits" free "$L-f"

# HUP too (INT cannot be tried here: background jobs of a script start with
# INT ignored, and COMMAND inherits that, as nohup relies on for HUP).
spawn "$KITE" lock "$L-h" -- sh -c "trap 'echo got-hup > $tmpdir/hup; exit 9' HUP; touch $tmpdir/h.ready; while :; do sleep 0.05; done"; h=$LAST_PID
wait_for 30 test -e "$tmpdir/h.ready"
kill -HUP "$h"; wait "$h"; rc=$?
check "HUP forwarded to COMMAND" grep -qx got-hup "$tmpdir/hup"
check "exit status after forwarded HUP" [ $rc -eq 9 ]

# Eight starters at once: exactly one wins, seven are refused.
pids=()
for _ in 1 2 3 4 5 6 7 8; do
	spawn "$KITE" lock "$L-race" -- sh -c "echo \$\$ >> $tmpdir/wins; exec sleep 300" \
		>/dev/null 2>&1
	pids+=("$LAST_PID")
done
# The losers exit by themselves; the winner runs until told.
seven_done() {
	local n=0 p
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || n=$((n + 1)); done
	[ $n -ge 7 ]
}
check "race: seven starters exit by themselves" wait_for 60 seven_done
refused=0 winner=()
for p in "${pids[@]}"; do
	if kill -0 "$p" 2>/dev/null; then
		winner+=("$p")
	else
		wait "$p"; [ $? -eq 1 ] && refused=$((refused + 1))
	fi
done
check "race: exactly one winner" [ ${#winner[@]} -eq 1 ]
check "race: seven refused with exit 1" [ $refused -eq 7 ]
check "race: the winner holds the lock" bash -c "'$KITE' lock --status '$L-race' | grep -q 'by pid ${winner[0]}:'"
check "race: COMMAND ran once" wait_for 30 bash -c "[ \"\$(wc -l < '$tmpdir/wins')\" -eq 1 ]"

"$KITE" lock "bad name" -- true 2>/dev/null; check "bad name: exit 100" [ $? -eq 100 ]
"$KITE" lock "$L-u" 2>/dev/null; check "no COMMAND: exit 100" [ $? -eq 100 ]
"$KITE" lock --wait --timeout 1 "$L-u" -- true 2>/dev/null; check "--wait with --timeout: exit 100" [ $? -eq 100 ]
"$KITE" lock --help | grep -q '^Usage: kite lock'; check "--help on stdout" [ $? -eq 0 ]
