#!/bin/bash
# kite lock: exit codes, the holder's status, signal forwarding, a SIGKILLed
# holder freeing the lock once its job is gone, --wait/--timeout, options
# after NAME, the job keeping the lock (beside flock(1)), squatters, and
# racing starters.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ops_lib.sh"
L="t$$"   # lock names private to this run
U=$(id -u)

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
check "--status: holder pid, user and command" grep -q "^$L-a is held by pid $a (user $(id -un)): .*kite lock $L-a -- sleep 300\$" "$tmpdir/st"
check "--status: the job holding the lock" grep -q "^job pid $child (user $(id -un)): sleep 300\$" "$tmpdir/st"
if command -v ss >/dev/null; then
	check "ss shows the abstract lock socket, uid in its name" bash -c "ss -lxpH | grep -F '@kite-lock/$U/$L-a ' | grep -q 'pid=$a,'"
else
	skip "ss shows the abstract lock socket, uid in its name" "no ss (iproute2), see tests/deps.txt"
fi
"$KITE" lock "$L-a" -- touch "$tmpdir/ran" 2>"$tmpdir/err"; rc=$?
check "held by another: exit 1" [ $rc -eq 1 ]
check "held by another: COMMAND not run" [ ! -e "$tmpdir/ran" ]
check "held by another: names the holder" grep -q "is held by pid $a" "$tmpdir/err"
"$KITE" lock -E 75 "$L-a" -- true 2>/dev/null; rc=$?
check "--conflict-exit picks the code" [ $rc -eq 75 ]
"$KITE" lock --timeout 0.2 "$L-a" -- true 2>/dev/null; rc=$?
check "--timeout expires: exit 2" [ $rc -eq 2 ]
# Options where the synopsis puts them: after NAME, before "--".
"$KITE" lock "$L-a" -E 75 -- true 2>/dev/null; rc=$?
check "NAME -E CODE --: held gives CODE" [ $rc -eq 75 ]
"$KITE" lock "$L-a" --timeout 0.2 -- true 2>/dev/null; rc=$?
check "NAME --timeout S --: exit 2" [ $rc -eq 2 ]
# -E covers a time-out too, as flock -E does (flock -E 75 -w 0.3: 75).
"$KITE" lock "$L-a" --timeout 0.2 -E 75 -- true 2>/dev/null; rc=$?
check "-E applies to a time-out" [ $rc -eq 75 ]
"$KITE" lock -E 76 -t 0.2 "$L-a" -- true 2>/dev/null; rc=$?
check "-E before NAME applies to a time-out" [ $rc -eq 76 ]
"$KITE" lock "$L-a" --status >"$tmpdir/st2"; rc=$?
check "NAME --status: exit 0, holder named" bash -c "[ $rc -eq 0 ] && grep -q 'is held by pid $a ' '$tmpdir/st2'"
ino=$(awk -v n="@kite-lock/$U/$L-a" '$8 == n { print $7 }' /proc/net/unix)
check "COMMAND inherits the lock socket (the job holds the lock)" bash -c "[ -n '$ino' ] && ls -l /proc/$child/fd | grep -qF 'socket:[$ino]'"

# --wait after NAME: blocked while held, runs once the holder goes.
spawn "$KITE" lock "$L-a" --wait -- touch "$tmpdir/waited"; w=$LAST_PID
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
# Its COMMAND (sleep, TERMed as kite died) held the lock to the end.
check "SIGKILLed holder: lock free once its job is gone" wait_for 30 free "$L-b"
"$KITE" lock "$L-b" -- true; rc=$?
check "SIGKILLed holder: the lock can be taken again" [ $rc -eq 0 ]
"$KITE" lock "$L-free" --wait -- true; rc=$?
check "NAME --wait -- COMMAND on a free lock runs COMMAND" [ $rc -eq 0 ]

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
check "race: the winner holds the lock" bash -c "'$KITE' lock --status '$L-race' | grep -q 'by pid ${winner[0]} '"
check "race: COMMAND ran once" wait_for 30 bash -c "[ \"\$(wc -l < '$tmpdir/wins')\" -eq 1 ]"

"$KITE" lock "bad name" -- true 2>/dev/null; check "bad name: exit 100" [ $? -eq 100 ]
"$KITE" lock "$L-u" 2>/dev/null; check "no COMMAND: exit 100" [ $? -eq 100 ]
"$KITE" lock --wait --timeout 1 "$L-u" -- true 2>/dev/null; check "--wait with --timeout: exit 100" [ $? -eq 100 ]
"$KITE" lock --help | grep -q '^Usage: kite lock'; check "--help on stdout" [ $? -eq 0 ]

# The job keeps the lock, side by side with flock(1): a COMMAND that traps
# the TERM kite's death brings, a script's child after kite's SIGKILL, and
# a script's child after an ordinary TERM to kite (which flock does not
# forward and kite does). In every case no second instance may start while
# the job runs, and the lock is free once the job is gone.
job_case() { # ID LABEL SIGNAL JOB (JOB writes $D/pids, then touches $D/ready)
	local id=$1 label=$2 sig=$3 job=$4 tool
	for tool in flock kite; do
		local D="$tmpdir/$id-$tool"
		mkdir -p "$D"
		at_exit "kill -KILL \$(cat '$D/pids' 2>/dev/null) 2>/dev/null"
		if [ $tool = flock ]; then
			spawn flock "$tmpdir/$id.flock" env D="$D" sh -c "$job"
		else
			spawn "$KITE" lock "$L-$id" -- env D="$D" sh -c "$job"
		fi
		local holder=$LAST_PID
		if ! wait_for 30 test -e "$D/ready"; then
			not_ok "$label: $tool started the job"; continue
		fi
		kill "-$sig" "$holder"; wait "$holder" 2>/dev/null
		sleep 0.3 # time for a wrongly freed lock to be seen free
		if [ $tool = flock ]; then
			flock -n "$tmpdir/$id.flock" touch "$D/second"; rc=$?
		else
			"$KITE" lock "$L-$id" -- touch "$D/second" 2>/dev/null; rc=$?
		fi
		check "$label: $tool refuses a second instance while the job runs" \
			bash -c "[ $rc -eq 1 ] && [ ! -e '$D/second' ] && kill -0 \$(tail -n1 '$D/pids')"
		kill -KILL $(cat "$D/pids") 2>/dev/null
		if [ $tool = flock ]; then
			check "$label: $tool free once the job is gone" \
				wait_for 30 flock -n "$tmpdir/$id.flock" true
		else
			check "$label: $tool free once the job is gone" wait_for 30 free "$L-$id"
		fi
	done
}
job_case trap "COMMAND traps TERM, kite SIGKILLed" KILL \
	'trap "" TERM; echo $$ > "$D/pids"; touch "$D/ready"; while :; do sleep 0.05; done'
job_case kill "script child, kite SIGKILLed" KILL \
	'echo $$ > "$D/pids"; sleep 300 & echo $! >> "$D/pids"; touch "$D/ready"; wait; true'
job_case term "script child, kite TERMed" TERM \
	'echo $$ > "$D/pids"; sleep 300 & echo $! >> "$D/pids"; touch "$D/ready"; wait; true'

# --status while kite is gone and the job holds on: the job is listed.
D="$tmpdir/st-job"; mkdir -p "$D"
at_exit "kill -KILL \$(cat '$D/pids' 2>/dev/null) 2>/dev/null"
spawn "$KITE" lock "$L-st" -- sh -c 'sleep 300 & echo $! > '"$D/pids"'; touch '"$D/ready"'; wait; true'
k=$LAST_PID
wait_for 30 test -e "$D/ready"
kill -TERM "$k"; wait "$k" 2>/dev/null
"$KITE" lock --status "$L-st" >"$tmpdir/st3"; rc=$?
check "--status after kite exited: held (exit 0)" [ $rc -eq 0 ]
check "--status after kite exited: says kite is gone" grep -q "^$L-st is held by the job of pid $k (user $(id -un)), which has exited\$" "$tmpdir/st3"
check "--status after kite exited: lists the job" grep -q "^job pid $(cat "$D/pids") (user $(id -un)): sleep 300\$" "$tmpdir/st3"
kill -KILL "$(cat "$D/pids")"

# A squatter: another user binding our lock's name first is not a holder
# kite respects. It is named as such, and --wait does not wait on it.
if can_nobody; then
	nb=$(nobody_dir)
	spawn "${as_nobody[@]}" /usr/bin/python3 "$nb/hold_sockets.py" "$nb/sq" "unix:@kite-lock/$U/$L-sq"
	sq=$LAST_PID
	if wait_for 30 grep -qs "^ready" "$nb/sq"; then
		"$KITE" lock "$L-sq" -- touch "$tmpdir/sq-ran" 2>"$tmpdir/sq.err"; rc=$?
		check "squatter: refused, exit 1" [ $rc -eq 1 ]
		check "squatter: COMMAND not run" [ ! -e "$tmpdir/sq-ran" ]
		check "squatter: named, with its user" grep -q "$L-sq is squatted: @kite-lock/$U/$L-sq is held by pid $sq (user nobody)" "$tmpdir/sq.err"
		start=$(date +%s)
		"$KITE" lock "$L-sq" --wait -E 75 -- true 2>/dev/null; rc=$?
		check "squatter: --wait refuses at once with -E's code" bash -c "[ $rc -eq 75 ] && [ \$(( \$(date +%s) - $start )) -lt 5 ]"
		"$KITE" lock --status "$L-sq" >"$tmpdir/sq.st"
		check "squatter: --status says who" grep -q "is squatted: .* by pid $sq (user nobody)" "$tmpdir/sq.st"
		# The squatter's own lock of that NAME is another lock (its uid).
		"${as_nobody[@]}" "$KITE" lock "$L-sq" -- true; rc=$?
		check "names are per uid: nobody's $L-sq is free" [ $rc -eq 0 ]
	else
		not_ok "squatter as nobody started"
	fi
else
	skip "squatter" "no user nobody or no /usr/bin/python3"
fi
