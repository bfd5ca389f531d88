#!/bin/bash
# kite who: holders of ports, abstract names and socket paths; --kill with
# TERM, escalation to KILL, bystanders untouched, and the permission paths.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ops_lib.sh"
need python3:python3
hold="$(cd "$(dirname "$0")" && pwd)/hold_sockets.py"
abs="kite-t$$-who"

# start_holder NAME OPTIONS/SPECS...: sets $pid, $child, and ${port[SPEC]}.
declare -A port
start_holder() {
	local out="$tmpdir/$1"; shift
	spawn "${runner[@]}" "$hold_py" "$@" 2>/dev/null
	wait_for 30 test -s "$out" || return 1
	read -r _ pid child < <(grep '^ready' "$out")
	while read -r spec p _; do port[$spec]=$p; done < <(grep -v '^ready' "$out")
}
runner=(python3); hold_py=$hold

start_holder a --fork "$tmpdir/a" tcp:127.0.0.1:0 udp:127.0.0.1:0 "unix:@$abs" "unix:$tmpdir/s.sock" ||
	{ not_ok "helper started"; exit 1; }
a_pid=$pid a_child=$child tcp=${port[tcp:127.0.0.1:0]} udp=${port[udp:127.0.0.1:0]}

has_holder() { grep -Eq "^$1 +$2 +$3 +$me +python3\$" "$tmpdir/out"; }
"$KITE" who "$tcp" >"$tmpdir/out"; rc=$?
check "who PORT: exit 0" [ $rc -eq 0 ]
check "who PORT: parent listed" has_holder tcp "127\.0\.0\.1:$tcp" "$a_pid"
check "who PORT: forked child listed" has_holder tcp "127\.0\.0\.1:$tcp" "$a_child"
"$KITE" who "udp:$udp" >"$tmpdir/out"
check "who udp:PORT" has_holder udp "127\.0\.0\.1:$udp" "$a_pid"
"$KITE" who "@$abs" >"$tmpdir/out"
check "who @name" has_holder u_str "@$abs" "$a_pid"
"$KITE" who "$tmpdir/s.sock" >"$tmpdir/out"
check "who /path" has_holder u_str "$tmpdir/s\.sock" "$a_pid"
(cd "$tmpdir" && "$KITE" who ./s.sock) >"$tmpdir/out"
check "who ./relative path" has_holder u_str "$tmpdir/s\.sock" "$a_pid"
"$KITE" who "tcp:$udp" >/dev/null 2>"$tmpdir/err"; rc=$?
check "a port held only on udp is free on tcp: exit 1" [ $rc -eq 1 ]
check "says nothing holds it" grep -q "nothing holds tcp port $udp" "$tmpdir/err"
"$KITE" who "@$abs" --json >"$tmpdir/json"
check "--json after TARGET" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(p["pid"] for p in d["sockets"][0]["processes"]) == sorted(map(int, sys.argv[2:])), d
' "$tmpdir/json" "$a_pid" "$a_child"

# --kill: a bystander (another socket holder, and a plain sleeper) survives.
start_holder b "$tmpdir/b" tcp:127.0.0.1:0 || not_ok "bystander started"
b_pid=$pid b_tcp=${port[tcp:127.0.0.1:0]}
spawn sleep 300; sleeper=$LAST_PID
"$KITE" who --kill --timeout 120 "$tcp" >"$tmpdir/kill" 2>&1; rc=$?  # no KILL expected, even on a slow machine
check "--kill: exit 0" [ $rc -eq 0 ]
# The forked child dies with its parent (PR_SET_PDEATHSIG), so it may be
# gone before its turn comes: TERM to the parent, to nobody but the two.
check "--kill: TERM sent to the holder" grep -q "^sent TERM to pid $a_pid " "$tmpdir/kill"
check "--kill: signals only holders" bash -c "! grep '^sent ' '$tmpdir/kill' | grep -qv 'to pid \($a_pid\|$a_child\) '"
check "--kill: no KILL needed" bash -c "! grep -q 'sent KILL' '$tmpdir/kill'"
check "--kill: confirms the port is free" grep -qx "tcp port $tcp is free" "$tmpdir/kill"
check "--kill: holder is gone" bash -c "! kill -0 $a_pid 2>/dev/null"
check "--kill: its forked child is gone" wait_for 30 bash -c "! kill -0 $a_child 2>/dev/null || grep -q '^State:.*Z' /proc/$a_child/status"
check "--kill: bystander holder alive" kill -0 "$b_pid"
check "--kill: sleeper alive" kill -0 "$sleeper"
"$KITE" who "$b_tcp" >/dev/null
check "--kill: bystander's port still held" [ $? -eq 0 ]

# Two independent processes on one port (SO_REUSEPORT): both get TERM.
start_holder r1 --reuseport "$tmpdir/r1" tcp:127.0.0.1:0 || not_ok "first reuseport holder started"
r1=$pid rport=${port[tcp:127.0.0.1:0]}
start_holder r2 --reuseport "$tmpdir/r2" "tcp:127.0.0.1:$rport" || not_ok "second reuseport holder started"
r2=$pid
"$KITE" who --kill --timeout 120 "$rport" >"$tmpdir/kill-r" 2>&1; rc=$?
check "two holders: exit 0" [ $rc -eq 0 ]
check "two holders: TERM to each" bash -c "grep -q '^sent TERM to pid $r1 ' '$tmpdir/kill-r' && grep -q '^sent TERM to pid $r2 ' '$tmpdir/kill-r'"
check "two holders: port free" grep -qx "tcp port $rport is free" "$tmpdir/kill-r"

# A holder that ignores TERM gets KILL after --timeout.
start_holder c --ignore-term "$tmpdir/c" "unix:@$abs-c" || not_ok "stubborn holder started"
c_pid=$pid
"$KITE" who --kill=TERM --timeout 0.3 "@$abs-c" >"$tmpdir/kill2" 2>&1; rc=$?
check "escalation: exit 0" [ $rc -eq 0 ]
check "escalation: KILL after the time-out" grep -q "sent KILL to pid $c_pid .*after 0.3 s" "$tmpdir/kill2"
check "escalation: name free" grep -qx "@$abs-c is free" "$tmpdir/kill2"

# --kill=HUP: the named signal is the one sent.
start_holder d "$tmpdir/d" "unix:@$abs-d" || not_ok "HUP holder started"
"$KITE" who --kill=SIGHUP "@$abs-d" >"$tmpdir/kill3" 2>&1
check "--kill=SIGHUP sends HUP" grep -q "sent HUP to pid $pid " "$tmpdir/kill3"

# Permission: an unprivileged kite cannot see root's holder, says so, and
# signals nothing.
if can_nobody; then
	(cd / && "${as_nobody[@]}" "$KITE" who --kill "$b_tcp") >"$tmpdir/np" 2>&1; rc=$?
	check "unseen holder: exit 1" [ $rc -eq 1 ]
	check "unseen holder: says it cannot see" grep -q "could not see who holds 1 socket(s) of tcp port $b_tcp: .* could not be inspected (they belong to other users" "$tmpdir/np"
	check "unseen holder: still alive" kill -0 "$b_pid"
	# Root without CAP_KILL sees a holder of another user but may not
	# signal it: says so, exit 1, holder alive.
	nb=$(nobody_dir)
	runner=("${as_nobody[@]}" /usr/bin/python3); hold_py=$nb/hold_sockets.py
	if start_holder nb/held "$nb/held" tcp:127.0.0.1:0; then
		n_pid=$pid n_tcp=${port[tcp:127.0.0.1:0]}
		setpriv --bounding-set -kill "$KITE" who --kill --timeout 0.2 "$n_tcp" >"$tmpdir/nk" 2>&1; rc=$?
		check "no CAP_KILL: exit 1" [ $rc -eq 1 ]
		check "no CAP_KILL: says no permission to signal" grep -q "no permission to signal pid $n_pid (python3, user nobody)" "$tmpdir/nk"
		check "no CAP_KILL: holder alive" kill -0 "$n_pid"
		# Root without CAP_SYS_PTRACE cannot read nobody's fds: the
		# holder is '?' and hidden, never "held by no process".
		setpriv --bounding-set=-sys_ptrace "$KITE" who --kill --timeout 0.2 "$n_tcp" >"$tmpdir/nptr" 2>&1; rc=$?
		check "no CAP_SYS_PTRACE: exit 1" [ $rc -eq 1 ]
		check "no CAP_SYS_PTRACE: holder shown as ?" grep -Eq "^tcp +127\.0\.0\.1:$n_tcp +\? +nobody " "$tmpdir/nptr"
		check "no CAP_SYS_PTRACE: says why it cannot see" grep -q "could not see who holds 1 socket(s) of tcp port $n_tcp: .* could not be inspected (kite runs as root without CAP_SYS_PTRACE" "$tmpdir/nptr"
		check "no CAP_SYS_PTRACE: never 'no process'" bash -c "! grep -q 'no process' '$tmpdir/nptr'"
		check "no CAP_SYS_PTRACE: holder alive" kill -0 "$n_pid"
	else
		not_ok "holder as nobody started"
	fi
else
	for n in "unseen holder: exit 1" "unseen holder: says it cannot see" "unseen holder: still alive" \
		"no CAP_KILL: exit 1" "no CAP_KILL: says no permission to signal" "no CAP_KILL: holder alive" \
		"no CAP_SYS_PTRACE: exit 1" "no CAP_SYS_PTRACE: holder shown as ?" "no CAP_SYS_PTRACE: says why it cannot see" \
		"no CAP_SYS_PTRACE: never 'no process'" "no CAP_SYS_PTRACE: holder alive"; do
		skip "$n" "$(nobody_missing)"
	done
fi

for bad in 0 70000 udp: tcp:x nonsense "" ; do
	"$KITE" who "$bad" >/dev/null 2>&1
	check "bad target '$bad': exit 100" [ $? -eq 100 ]
done
"$KITE" who --kill=NOPE 80 >/dev/null 2>&1; check "bad signal: exit 100" [ $? -eq 100 ]
"$KITE" who --timeout=-1 80 >/dev/null 2>&1; check "bad timeout: exit 100" [ $? -eq 100 ]
"$KITE" who --help | grep -q '^Usage: kite who'; check "--help on stdout" [ $? -eq 0 ]

# /proc/net/unix prints names byte for byte: a listener whose abstract name
# holds a newline can forge a line tying any path to someone else's socket.
# --kill must not believe it without the kernel's word (SO_PEERCRED).
spawn python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); time.sleep(120)'
victim=$LAST_PID
victim_ino() { for f in /proc/$victim/fd/*; do readlink "$f"; done 2>/dev/null | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | head -n1; }
wait_for 10 test -n "$(victim_ino)"
ino=$(victim_ino)
forged="$tmpdir/f"
# (a short line: abstract names are at most 107 bytes)
spawn python3 -c "import socket,time,sys; s=socket.socket(socket.AF_UNIX); s.bind('\0kf\n0: 2 0 10000 1 1 $ino $forged'); s.listen(); time.sleep(120)"
wait_for 10 grep -q " $ino $forged\$" /proc/net/unix
"$KITE" who --kill --timeout 1 "$forged" >"$tmpdir/forge" 2>&1; rc=$?
check "forged /proc/net/unix line: --kill exits 1" [ $rc -eq 1 ]
check "forged /proc/net/unix line: says the kernel does not confirm" grep -q "kernel does not confirm" "$tmpdir/forge"
check "forged /proc/net/unix line: the victim was not signalled" kill -0 "$victim"
