#!/bin/bash
# kite serve: socket activation, readiness, reloads under load, crashes,
# --inetd, --handoff, the control socket, and that nothing is left running.
# All traffic goes to 127.0.0.1 or abstract Unix sockets; every client is
# bounded in count and time.
. "$(dirname "$0")/lib.sh"
W="$(dirname "$KITE")/tests/helpers/serve_worker"
[ -x "$W" ] || { not_ok "serve_worker helper built" "missing $W"; exit 1; }
P="t$$"   # service name prefix, private to this run

status() { "$KITE" serve status "$1" 2>/dev/null; }
port_of() { status "$1" | awk '/^listen tcp:127/{n=split($2,a,":"); print a[n]; exit}'; }
udp_port_of() { status "$1" | awk '/^listen udp:127/{n=split($2,a,":"); print a[n]; exit}'; }
is_up() { status "$1" | grep -q "^generation $2 up current"; }
no_stopping() { ! status "$1" | grep -q ' stopping'; }
pids_of() { status "$1" | awk '/^process/{print $3}'; }
gone() { for p in "$@"; do [ "$p" -gt 0 ] 2>/dev/null && kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
# A child that just exited is a zombie until kite reads SIGCHLD: poll.
no_zombies() { wait_for 20 bash -c "[ \$(ps -o stat= --ppid $1 | grep -c '^Z') = 0 ]"; }

# clients TAG TARGET N COUNT: N concurrent clients of COUNT requests each;
# their summaries in $tmpdir/TAG.out; 0 if every one of them succeeded.
clients() {
	local tag=$1 target=$2 n=$3 count=$4 i fails=0 pids=()
	for ((i = 1; i <= n; i++)); do
		spawn "$W" client "$target" "$count" 120 >"$tmpdir/$tag.$i"
		pids+=("$LAST_PID")
	done
	for i in "${pids[@]}"; do wait "$i" || fails=1; done
	cat "$tmpdir/$tag".[0-9]* >"$tmpdir/$tag.out"
	[ $fails = 0 ] && [ "$(grep -c "requests=$count failed=0" "$tmpdir/$tag.out")" = "$n" ]
}

# start NAME ARGS... : a supervisor in the background; $SUP is its pid.
start() {
	local name=$1; shift
	spawn "$KITE" serve --name "$name" "$@" 2>>"$tmpdir/$name.log"
	SUP=$LAST_PID
}

# stop_check NAME SUP TESTNAME: kite serve stop, the supervisor exits 0 and
# no process it started is left.
stop_check() {
	local name=$1 sup=$2 pids
	pids=$(pids_of "$name")
	if "$KITE" serve stop "$name" >/dev/null 2>&1 && wait "$sup" &&
	   wait_for 20 gone $pids; then ok "$3"
	else not_ok "$3" "pids $pids"; sed 's/^/# /' "$tmpdir/$name.log"; fi
}

echo 100 > "$tmpdir/delay"

# ---- usage errors: one line, a pointer to --help, exit 100 ----
usage_case() {
	local err
	err=$("$KITE" serve "$@" 2>&1 >/dev/null)
	[ $? = 100 ] && grep -q "Try 'kite serve --help'" <<<"$err"
}
check "usage: no --name" usage_case --listen tcp:0 -- "$W"
check "usage: bad listen spec" usage_case --name x --listen tcp:1.2.3 -- "$W"
check "usage: udp with --inetd" usage_case --name x --inetd --listen udp:0 -- "$W"
check "usage: no COMMAND" usage_case --name x --listen tcp:0
check "usage: reload without NAME" usage_case reload
check "usage: --max-conns without --inetd" usage_case --name x --max-conns 4 --listen tcp:0 -- "$W"
check "usage: --max-conns without --inetd, said so" bash -c "'$KITE' serve --name x --max-conns 4 --listen tcp:0 -- '$W' 2>&1 | grep -q -- '--max-conns applies only to --inetd'"
check "usage: an unknown verb" usage_case frobnicate x
check "usage: an unknown verb is named as one" bash -c "'$KITE' serve frobnicate x 2>&1 | grep -q \"unknown verb 'frobnicate'\""
check "usage: --help exits 0" bash -c "'$KITE' serve --help | grep -q '^Usage: kite serve'"

# ---- socket activation ----
n="$P-act"
start "$n" --ready-timeout 15 --listen tcp:127.0.0.1:0 --listen udp:127.0.0.1:0 --listen "unix:@kite-test/$n" \
	-- "$W" --ready-delay-file "$tmpdir/delay"
sup_act=$SUP
if wait_for 30 is_up "$n" 1; then ok "activation: generation 1 up after READY=1"
else not_ok "activation: generation 1 up after READY=1"; sed 's/^/# /' "$tmpdir/$n.log"; exit 1; fi
port=$(port_of "$n")
out=$("$W" client "127.0.0.1:$port" 3 30)
check "activation: tcp served, LISTEN_PID and LISTEN_FDS/FDNAMES as systemd sets them" \
	grep -q "failed=0 .*fds=3 names=tcp-127.0.0.1-0:udp-127.0.0.1-0:unix-@kite-test/$n " <<<"$out"
out=$("$W" client "unix:@kite-test/$n" 2 30)
check "activation: abstract unix socket served" grep -q "failed=0" <<<"$out"
out=$("$W" client "udp:127.0.0.1:$(udp_port_of "$n")" 1 30)
check "activation: udp socket passed (datagram echoed)" grep -q "failed=0 .*udp=" <<<"$out"
if grep -q '00000000000000000000000000000001 01' /proc/net/if_inet6 2>/dev/null; then
	n6="$P-v6"
	start "$n6" --listen 'tcp:[::1]:0' -- "$W"
	sup6=$SUP
	if wait_for 30 is_up "$n6" 1; then
		port6=$(status "$n6" | awk '/^listen tcp:\[/{n=split($2,a,":"); print a[n]}')
		out=$("$W" client "[::1]:$port6" 2 30)
		check "activation: IPv6 [::1] served" grep -q "failed=0" <<<"$out"
	else not_ok "activation: IPv6 [::1] served" "never up"; fi
	stop_check "$n6" "$sup6" "IPv6 supervisor stopped, nothing left"
else
	skip "activation: IPv6 [::1] served" "no IPv6 loopback here"
	skip "IPv6 supervisor stopped, nothing left" "no IPv6 loopback here"
fi

# ---- the control socket ----
"$KITE" serve --name "$n" --listen tcp:127.0.0.1:0 -- "$W" 2>"$tmpdir/dup.err"
rc=$?
check "control: a second supervisor of the same name exits 1 (already running)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'already running (pid [0-9]*, user $(id -un))' '$tmpdir/dup.err'"
check "control: the name carries the uid (@kite-serve/UID/NAME/control)" \
	grep -q "@kite-serve/$(id -u)/$n/control\$" /proc/net/unix
check "control: status says who holds the name" bash -c \
	"'$KITE' serve status '$n' | grep -qx 'user $(id -un) $(id -u)' && '$KITE' serve status '$n' | grep -qx 'control @kite-serve/$(id -u)/$n/control'"
if command -v python3 >/dev/null; then
	check "control: status --json is one valid JSON object" bash -c \
		"'$KITE' serve status '$n' --json | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d[\"generations\"][0][\"processes\"][0][\"state\"] == \"ready\" else 1)'"
else
	skip "control: status --json is one valid JSON object" "no python3 to parse it"
fi
"$KITE" serve status "$P-nosuch" 2>"$tmpdir/none.err"
rc=$?
check "control: status of a name nobody runs exits 1" \
	bash -c "[ $rc -eq 1 ] && grep -q 'no supervisor' '$tmpdir/none.err'"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	setpriv --reuid 65534 --regid 65534 --clear-groups "$KITE" serve status --user root "$n" 2>"$tmpdir/ref.err"
	rc=$?
	check "control: another uid is refused (SO_PEERCRED), and told so" \
		bash -c "[ $rc -eq 1 ] && grep -q 'refused' '$tmpdir/ref.err'"
	check "control: the refusal names root once ('only root')" \
		bash -c "grep -q '(only root)' '$tmpdir/ref.err' && ! grep -q 'only uid 0' '$tmpdir/ref.err'"
	setpriv --reuid 65534 --regid 65534 --clear-groups "$KITE" serve status "$n" 2>"$tmpdir/own.err"
	rc=$?
	check "control: names are per user (nobody's '$n' is not running)" \
		bash -c "[ $rc -eq 1 ] && grep -q 'no supervisor' '$tmpdir/own.err'"
	if command -v python3 >/dev/null; then
		# 40 idle connections from another uid must not lock the owner out.
		setpriv --reuid 65534 --regid 65534 --clear-groups python3 -c "
import socket, time
held = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect('\0kite-serve/0/$n/control')
    held.append(s)
print('holding', flush=True)
time.sleep(20)
" >"$tmpdir/hold.out" 2>&1 &
		holder=$!
		__pids+=("$holder")
		wait_for 20 grep -q holding "$tmpdir/hold.out"
		check "control: the owner is answered while another uid floods the socket" \
			bash -c "'$KITE' serve status '$n' --timeout 10 | grep -q '^generation 1 up'"
		kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
	else
		skip "control: the owner is answered while another uid floods the socket" "no python3"
	fi
else
	skip "control: another uid is refused (SO_PEERCRED), and told so" "needs root and setpriv"
	skip "control: the owner is answered while another uid floods the socket" "needs root and setpriv"
fi

# ---- five reloads under steady load: no failed request ----
spawn "$W" client "127.0.0.1:$port" 1000000 240 >"$tmpdir/load.out"
client=$LAST_PID
reload_ok=1
for g in 2 3 4 5 6; do
	"$KITE" serve reload "$n" >/dev/null 2>>"$tmpdir/reload.err" || reload_ok=0
	wait_for 30 no_stopping "$n" || reload_ok=0
done
kill -TERM "$client"; wait "$client"
check "reload: five reloads each answered ok" test $reload_ok = 1
check "reload: generation 6 is current" is_up "$n" 6
if grep -q '^requests=[1-9][0-9]* failed=0 ' "$tmpdir/load.out"; then
	ok "reload: zero failed requests across five reloads ($(cut -d' ' -f1,2,4 "$tmpdir/load.out"))"
else not_ok "reload: zero failed requests across five reloads" "$(cat "$tmpdir/load.out")"; fi
check "reload: no zombie children" no_zombies "$sup_act"

# ---- readiness: the old generation serves until the new one is READY ----
echo hold > "$tmpdir/delay"
"$KITE" serve reload "$n" >/dev/null 2>&1 &
rl=$!
if wait_for 30 bash -c "'$KITE' serve status '$n' | grep -q '^generation 7 starting'"; then
	out=$("$W" client "127.0.0.1:$port" 3 30)
	check "readiness: while generation 7 is starting, generation 6 answers" \
		grep -q "failed=0 .*gen=6 " <<<"$out"
else not_ok "readiness: while generation 7 is starting, generation 6 answers" "never starting"; fi
check "readiness: the reload waits for READY=1" kill -0 $rl
echo 0 > "$tmpdir/delay"
wait $rl
check "readiness: the slow generation 7 became current after READY=1" is_up "$n" 7
echo never > "$tmpdir/delay"
"$KITE" serve reload "$n" --timeout 60 >/dev/null 2>"$tmpdir/never.err"
rc=$?
check "readiness: a generation that never says READY=1 fails the reload (exit 1)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'not ready' '$tmpdir/never.err'"
wait_for 30 no_stopping "$n"
out=$("$W" client "127.0.0.1:$port" 2 30)
check "readiness: after the failed reload generation 7 still serves" \
	bash -c "is_up() { '$KITE' serve status '$n' | grep -q '^generation 7 up current'; }; is_up && grep -q 'failed=0 .*gen=7 ' <<<'$out'"
echo 0 > "$tmpdir/delay"

# ---- crashes: restarted after the backoff; signals forwarded ----
old=$(pids_of "$n")
"$W" client "127.0.0.1:$port" 1 10 /crash >/dev/null 2>&1
if wait_for 30 bash -c "'$KITE' serve status '$n' | grep -q '^restarts 1' &&
		'$KITE' serve status '$n' | grep -q '^process 7 [0-9]* ready'"; then
	new=$(pids_of "$n")
	out=$("$W" client "127.0.0.1:$port" 2 30)
	check "crash: restarted with a new pid that serves" \
		bash -c "[ '$new' != '$old' ] && grep -q 'failed=0' <<<'$out'"
else not_ok "crash: restarted with a new pid that serves"; fi
check "crash: logged with its exit status and the backoff delay" \
	grep -q "pid $old exited with status 42; restart in 100 ms" "$tmpdir/$n.log"
kill -USR1 "$sup_act"
check "signals: SIGUSR1 forwarded to the server" \
	wait_for 30 grep -q "killed by signal 10" "$tmpdir/$n.log"
wait_for 30 bash -c "'$KITE' serve status '$n' | grep -q '^process 7 [0-9]* ready'"
# Generation 8 was the one that never got ready: SIGHUP starts 9.
kill -HUP "$sup_act"
check "signals: SIGHUP reloads" wait_for 30 is_up "$n" 9
stop_check "$n" "$sup_act" "stop: supervisor exits 0, every process reaped"

# ---- a crash loop gives up ----
n="$P-loop"
"$KITE" serve --name "$n" --listen tcp:127.0.0.1:0 --backoff 0.01 --max-restarts 3 \
	-- sh -c 'exit 7' 2>"$tmpdir/loop.err" &
loop=$!
__pids+=("$loop")
wait_for 60 bash -c "! kill -0 $loop 2>/dev/null"
wait $loop
rc=$?
check "crash loop: gives up after --max-restarts, exit 1" \
	bash -c "[ $rc -eq 1 ] && grep -q '4 crashes in a row, giving up' '$tmpdir/loop.err'"
"$KITE" serve --name "$n" --listen tcp:127.0.0.1:0 -- /nonexistent/server 2>"$tmpdir/noexec.err"
rc=$?
check "start: a COMMAND that cannot run is reported, exit 111" \
	bash -c "[ $rc -eq 111 ] && grep -q 'cannot start' '$tmpdir/noexec.err'"

# ---- orphans are reaped and stopped (PR_SET_CHILD_SUBREAPER) ----
n="$P-orphan"
mark=$((900000 + $$ % 99999))
# The grandchild leaves the worker's process group and ignores SIGTERM:
# only the subreaper's own clean-up (TERM, grace, KILL) can end it.
start "$n" --listen tcp:127.0.0.1:0 --grace 2 -- \
	sh -c "setsid sh -c \"trap '' TERM; exec sleep $mark\" & exec '$W'"
sup_orphan=$SUP
wait_for 30 is_up "$n" 1
check "orphans: the escaped grandchild runs" wait_for 10 pgrep -f "^sleep $mark\$" >/dev/null
stop_check "$n" "$sup_orphan" "orphans: supervisor exits 0"
check "orphans: the grandchild is gone after stop" \
	wait_for 20 bash -c "! pgrep -f '^sleep $mark\$' >/dev/null"

# ---- --handoff ----
n="$P-ho"
echo 1000 > "$tmpdir/delay"
start "$n" --handoff --workers 3 --listen tcp:127.0.0.1:0 --listen "unix:@kite-test/$n" \
	-- "$W" --ready-delay-file "$tmpdir/delay"
sup_ho=$SUP
wait_for 30 bash -c "[ -n \"\$('$KITE' serve status '$n' 2>/dev/null)\" ]"
port=$(port_of "$n")
# Clients start before any worker is ready: they wait in the backlog.
check "handoff: 4 concurrent clients, 100 requests, none failed" \
	clients ho "127.0.0.1:$port" 4 25
check "handoff: no connection handed to a worker before its READY=1" \
	bash -c "! grep -q 'early=[1-9]' '$tmpdir/ho.out'"
check "handoff: the peer address travels with the connection" \
	grep -q "peer=127.0.0.1 " "$tmpdir/ho.out"
used=$(status "$n" | awk '/^process/ && $6 > 0' | wc -l)
check "handoff: connections spread over the workers ($used of 3 used)" test "$used" -ge 2
out=$("$W" client "unix:@kite-test/$n" 2 30)
check "handoff: unix peer's kernel-verified uid travels with the connection" \
	grep -q "failed=0 .*peer=uid:$(id -u) " <<<"$out"
echo 800 > "$tmpdir/delay"
spawn "$W" client "127.0.0.1:$port" 1000000 240 >"$tmpdir/hoload.out"
client=$LAST_PID
reload_ok=1
for g in 2 3 4; do
	"$KITE" serve reload "$n" >/dev/null 2>>"$tmpdir/reload.err" || reload_ok=0
	wait_for 30 no_stopping "$n" || reload_ok=0
done
kill -TERM "$client"; wait "$client"
if [ $reload_ok = 1 ] && grep -q '^requests=[1-9][0-9]* failed=0 early=0 ' "$tmpdir/hoload.out"; then
	ok "handoff: three slow-to-ready reloads under load, no failure, nothing early"
else not_ok "handoff: three slow-to-ready reloads under load, no failure, nothing early" \
	"$reload_ok $(cat "$tmpdir/hoload.out")"; fi
stop_check "$n" "$sup_ho" "handoff: supervisor exits 0, every worker reaped"

# ---- --inetd ----
n="$P-inetd"
mkdir -p "$tmpdir/active"
KITE_TEST_ACTIVE_DIR="$tmpdir/active" start "$n" --inetd --max-conns 2 \
	--listen tcp:127.0.0.1:0 --listen "unix:@kite-test/$n" -- "$W" --inetd
sup_inetd=$SUP
wait_for 30 bash -c "[ -n \"\$('$KITE' serve status '$n' 2>/dev/null)\" ]"
port=$(port_of "$n")
check "inetd: 4 concurrent clients, 40 requests, none failed" \
	clients inetd "127.0.0.1:$port" 4 10
check "inetd: REMOTE_ADDR set for each connection" grep -q "remote=127.0.0.1" "$tmpdir/inetd.out"
max=$(cat "$tmpdir/active.max" 2>/dev/null || echo 0)
check "inetd: never more than --max-conns 2 at once (saw $max)" \
	bash -c "[ $max -ge 1 ] && [ $max -le 2 ]"
out=$("$W" client "unix:@kite-test/$n" 2 30)
check "inetd: unix peer gets its kernel-verified REMOTE_UID" \
	grep -q "failed=0 .*remote=$(id -u)\$" <<<"$out"
check "inetd: no zombie children" no_zombies "$sup_inetd"
stop_check "$n" "$sup_inetd" "inetd: supervisor exits 0"

# ---- SIGTERM stops everything ----
n="$P-term"
start "$n" --workers 2 --listen tcp:127.0.0.1:0 -- "$W"
sup_term=$SUP
wait_for 30 is_up "$n" 1
pids=$(pids_of "$n")
kill -TERM "$sup_term"
wait "$sup_term"
rc=$?
if [ $rc = 0 ] && wait_for 20 gone $pids; then ok "SIGTERM: supervisor exits 0 and both workers are gone"
else not_ok "SIGTERM: supervisor exits 0 and both workers are gone" "rc $rc, pids $pids"; fi

# ---- SIGINT too, though a background job starts with SIGINT ignored ----
n="$P-int"
start "$n" --listen tcp:127.0.0.1:0 -- "$W"
sup_int=$SUP
wait_for 30 is_up "$n" 1
pids=$(pids_of "$n")
kill -INT "$sup_int"
if wait_for 30 bash -c "! kill -0 $sup_int 2>/dev/null"; then
	wait "$sup_int"
	rc=$?
else rc=timeout; fi
if [ "$rc" = 0 ] && wait_for 20 gone $pids; then ok "SIGINT: supervisor exits 0, worker gone"
else not_ok "SIGINT: supervisor exits 0, worker gone" "rc $rc"; fi

# An abstract control name can be bound by anyone: the client believes only
# a supervisor of its own uid or root's.
if command -v setpriv >/dev/null && [ -x /usr/bin/python3 ] && [ "$(id -u)" = 0 ]; then
	imp=impostor$$
	spawn setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "
import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind('\0kite-serve/0/$imp/control'); s.listen()
while True:
    c, _ = s.accept()
    try:
        c.recv(100); c.send(b'ok stopping')
    except OSError:
        pass  # a client that only asked who holds the name
    c.close()"
	sq=$LAST_PID
	wait_for 10 grep -q "@kite-serve/0/$imp/control" /proc/net/unix
	"$KITE" serve stop "$imp" >"$tmpdir/imp.out" 2>&1; rc=$?
	check "control: an impostor of another uid is not believed (exit 1)" [ $rc -eq 1 ]
	check "control: and the client says whose socket it is" grep -q "held by uid 65534 (user nobody), pid $sq, .*squatted" "$tmpdir/imp.out"
	# A squatter on the name: the supervisor refuses to start, says who.
	timeout -k 5 20 "$KITE" serve --name "$imp" --listen tcp:127.0.0.1:0 -- "$W" >"$tmpdir/sq.out" 2>&1; rc=$?
	check "squatted name: kite serve exits 1 without starting" [ $rc -eq 1 ]
	check "squatted name: names the squatter" grep -q "control socket of '$imp' (@kite-serve/0/$imp/control) is held by uid 65534 (user nobody), pid $sq" "$tmpdir/sq.out"
else
	skip "control: an impostor of another uid is not believed (exit 1)" "needs root and setpriv"
	skip "control: and the client says whose socket it is" "needs root and setpriv"
	skip "squatted name" "needs root and setpriv"
fi
