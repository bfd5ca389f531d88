#!/bin/bash
# kite ports against sockets this test opens itself, checked beside what
# ss -ltnup / ss -lxp report for the same sockets.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ops_lib.sh"
need python3:python3 iproute2:ss
here=$(cd "$(dirname "$0")" && pwd)
hold="$here/hold_sockets.py"
abs="kite-t$$-ports"

have_ipv6() { [ -r /proc/net/tcp6 ] && python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; }
specs=(tcp:127.0.0.1:0 udp:127.0.0.1:0 "unix:@$abs" "unix:$tmpdir/s.sock" "udgram:$tmpdir/d.sock")
if have_ipv6; then specs+=(tcp6:[::1]:0 udp6:[::1]:0); v6=1; else v6=0; fi

spawn python3 "$hold" --fork "$tmpdir/held" "${specs[@]}"
if ! wait_for 30 test -s "$tmpdir/held"; then
	not_ok "helper opened its sockets"; exit 1
fi
read -r _ pid child < <(grep '^ready' "$tmpdir/held")
port_of() { awk -v s="$1" '$1 == s { print $2 }' "$tmpdir/held"; }
tcp=$(port_of tcp:127.0.0.1:0); udp=$(port_of udp:127.0.0.1:0)

"$KITE" ports >"$tmpdir/all"; rc=$?
check "exit 0 when sockets are listed" [ $rc -eq 0 ]
row() { grep -E "^$1 +$2 +$3 +$me +python3\$" "$tmpdir/all" >/dev/null; }
check "tcp 127.0.0.1 listener with its pid" row tcp "127\.0\.0\.1:$tcp" "$pid"
check "forked child shares it: a second line" row tcp "127\.0\.0\.1:$tcp" "$child"
check "udp bound socket with its pid" row udp "127\.0\.0\.1:$udp" "$pid"
check "abstract unix listener" row u_str "@$abs" "$pid"
check "unix path listener" row u_str "$tmpdir/s\.sock" "$pid"
check "unix datagram server" row u_dgr "$tmpdir/d\.sock" "$pid"
if [ $v6 = 1 ]; then
	check "tcp6 ::1 listener" row tcp "\[::1\]:$(port_of tcp6:[::1]:0)" "$pid"
	check "udp6 ::1 socket" row udp "\[::1\]:$(port_of udp6:[::1]:0)" "$pid"
else
	skip "tcp6 ::1 listener" "no IPv6 here"; skip "udp6 ::1 socket" "no IPv6 here"
fi

# The same sockets as ss sees them (ss -H: no header).
ss -ltnupH >"$tmpdir/ss_inet" 2>/dev/null
ss -lxpH >"$tmpdir/ss_unix" 2>/dev/null
ss_has() { grep -F "$1" "$tmpdir/$2" | grep -q "pid=$pid,"; }
check "ss agrees: tcp port $tcp held by $pid" ss_has "127.0.0.1:$tcp " ss_inet
check "ss agrees: udp port $udp held by $pid" ss_has "127.0.0.1:$udp " ss_inet
check "ss agrees: @$abs held by $pid" ss_has "@$abs " ss_unix
# Every listening TCP port ss shows, kite shows too (and vice versa). Other
# programs may open or close ports between the two snapshots: retry.
same_ports() {
	ss -ltnH | awk '{ print $4 }' | sed 's/.*://' | sort -un >"$tmpdir/ss_ports"
	"$KITE" ports --tcp | awk 'NR > 1 { print $2 }' | sed 's/.*://' | sort -un >"$tmpdir/kite_ports"
	cmp -s "$tmpdir/ss_ports" "$tmpdir/kite_ports"
}
check "same TCP listening ports as ss -ltn" wait_for 30 same_ports

"$KITE" ports "$tcp" >"$tmpdir/one"
check "PORT filter keeps that port" grep -q ":$tcp " "$tmpdir/one"
check "PORT filter drops others" bash -c "! grep -q -e ':$udp ' -e '@$abs' '$tmpdir/one'"
"$KITE" ports --udp >"$tmpdir/udp"
check "--udp: udp rows only" bash -c "grep -q ':$udp ' '$tmpdir/udp' && ! awk 'NR>1' '$tmpdir/udp' | grep -qv '^udp '"
"$KITE" ports --unix >"$tmpdir/unix"
check "--unix: unix rows only" bash -c "grep -q '@$abs' '$tmpdir/unix' && ! awk 'NR>1' '$tmpdir/unix' | grep -q -e '^tcp ' -e '^udp '"
"$KITE" ports --tcp -4 >"$tmpdir/tcp4"
check "--tcp -4: no IPv6, no udp" bash -c "grep -q ':$tcp ' '$tmpdir/tcp4' && ! grep -q -e '^udp' -e '\[' '$tmpdir/tcp4'"

"$KITE" ports --json >"$tmpdir/json"
check "--json parses" bash -c "python3 -m json.tool '$tmpdir/json' >/dev/null"
check "--json has the tcp socket and both pids" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["sockets"] if x["proto"] == "tcp" and x["port"] == int(sys.argv[2]) and x["local"].startswith("127.")]
pids = sorted(p["pid"] for p in s[0]["processes"])
assert len(s) == 1 and pids == sorted([int(sys.argv[3]), int(sys.argv[4])]), (s, pids)
u = [x for x in d["sockets"] if x.get("abstract") and x["path"] == sys.argv[5]]
assert len(u) == 1 and u[0]["netid"] == "u_str" and u[0]["processes"][0]["command"] == "python3", u
' "$tmpdir/json" "$tcp" "$pid" "$child" "$abs"

# Without permission: the socket is still listed, its owner shown as hidden.
if can_nobody; then
	"${as_nobody[@]}" "$KITE" ports "$tcp" \
		>"$tmpdir/nobody" 2>"$tmpdir/nobody.err"
	check "unprivileged: socket listed with PID ?" grep -Eq "^tcp +127\.0\.0\.1:$tcp +\? +root +\(not visible" "$tmpdir/nobody"
	check "unprivileged: says why" grep -q "could not be inspected (no permission: they belong to other users" "$tmpdir/nobody.err"
	# A socket of nobody's own is visible to nobody.
	nb=$(nobody_dir)
	spawn "${as_nobody[@]}" /usr/bin/python3 "$nb/hold_sockets.py" "$nb/held" tcp:127.0.0.1:0
	if wait_for 30 test -s "$nb/held"; then
		np=$(awk '$1 == "tcp:127.0.0.1:0" { print $2 }' "$nb/held")
		read -r _ npid _ < <(grep '^ready' "$nb/held")
		check "user column names the holder's user" bash -c "'$KITE' ports $np | grep -Eq '^tcp +127\.0\.0\.1:$np +$npid +nobody +python3\$'"
		# Root without CAP_SYS_PTRACE (Docker's default) may list
		# nobody's /proc/PID/fd but not read its links: '?', counted.
		setpriv --bounding-set=-sys_ptrace "$KITE" ports "$np" >"$tmpdir/np" 2>"$tmpdir/np.err"
		check "root without CAP_SYS_PTRACE: PID ?, not (no process)" grep -Eq "^tcp +127\.0\.0\.1:$np +\? +nobody +\(not visible" "$tmpdir/np"
		check "root without CAP_SYS_PTRACE: says why" grep -q "could not be inspected (no permission: kite runs as root without CAP_SYS_PTRACE" "$tmpdir/np.err"
		setpriv --bounding-set=-sys_ptrace "$KITE" ports --json "$np" >"$tmpdir/np.json" 2>/dev/null
		check "root without CAP_SYS_PTRACE: JSON owner hidden, count > 0" /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["hidden_processes"] > 0 and d["sockets"][0]["owner"] == "hidden", d
' "$tmpdir/np.json"
	else
		not_ok "user column names the holder's user" "helper as nobody did not start"
	fi
else
	skip "unprivileged: socket listed with PID ?" "$(nobody_missing)"
	skip "unprivileged: says why" "$(nobody_missing)"
	skip "user column names the holder's user" "$(nobody_missing)"
	skip "root without CAP_SYS_PTRACE: PID ?" "$(nobody_missing)"
fi

# Closed sockets vanish: a port nobody holds gives exit 1.
kill -KILL "$pid"; wait "$pid" 2>/dev/null
gone() { ! "$KITE" ports "$tcp" >/dev/null; }
check "port closed: exit 1" wait_for 30 gone

"$KITE" ports 70000 >/dev/null 2>&1; check "bad port: exit 100" [ $? -eq 100 ]
"$KITE" ports --bogus >/dev/null 2>&1; check "bad option: exit 100" [ $? -eq 100 ]
"$KITE" ports --help | grep -q '^Usage: kite ports'; check "--help on stdout" [ $? -eq 0 ]

# Device, scope and dual-stack, as ss shows them, in a network namespace of
# the test's own: a socket bound to a device (SO_BINDTODEVICE lo), one on a
# link-local address with its scope, and IPv6 wildcards dual-stack and
# v6-only; TCP and UDP. kite's LOCAL ADDRESS column must be ss's, socket for
# socket.
ns=kports$$
if have_ipv6 && ip netns add "$ns" 2>/dev/null; then
	at_exit "ip netns del $ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add vops0 type veth peer name vops1
	ip -n "$ns" addr add fe80::99/64 dev vops0 nodad
	ip -n "$ns" link set vops1 up
	ip -n "$ns" link set vops0 up
	spawn ip netns exec "$ns" python3 -c '
import socket, sys, time
out, held = sys.argv[1], []
def sock(typ, fam, addr, v6only=None, dev=None):
    s = socket.socket(fam, typ)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    if dev:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    s.bind(addr)
    if typ == socket.SOCK_STREAM:
        s.listen()
    held.append(s)
for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    sock(typ, socket.AF_INET, ("0.0.0.0", 0), dev="lo")
    sock(typ, socket.AF_INET6, ("fe80::99", 0, 0, socket.if_nametoindex("vops0")))
    sock(typ, socket.AF_INET6, ("::", 0), v6only=0)
    sock(typ, socket.AF_INET6, ("::", 0), v6only=1)
    sock(typ, socket.AF_INET6, ("::1", 0))
open(out, "w").write("ready\n")
time.sleep(3600)
' "$tmpdir/ns.ready"
	if wait_for 30 test -s "$tmpdir/ns.ready"; then
		for p in tcp udp; do
			ip netns exec "$ns" ss -l${p:0:1}nH | awk '{ print $4 }' | sort >"$tmpdir/ss.$p"
			ip netns exec "$ns" "$KITE" ports --$p | awk 'NR > 1 { print $2 }' | sort >"$tmpdir/kite.$p"
			if diff "$tmpdir/ss.$p" "$tmpdir/kite.$p" >"$tmpdir/diff.$p"; then
				ok "$p: device, scope and dual-stack as ss shows them"
			else
				not_ok "$p: device, scope and dual-stack as ss shows them"
				sed 's/^/# /' "$tmpdir/diff.$p"
			fi
		done
		check "the forms themselves: %lo, [fe80::99]%vops0, *, [::]" bash -c "
			grep -q '^0\.0\.0\.0%lo:[0-9]' '$tmpdir/kite.tcp' && grep -q '^\[fe80::99\]%vops0:[0-9]' '$tmpdir/kite.tcp' &&
			grep -q '^\*:[0-9]' '$tmpdir/kite.tcp' && grep -q '^\[::\]:[0-9]' '$tmpdir/kite.tcp'"
		ip netns exec "$ns" "$KITE" ports --json --tcp >"$tmpdir/ns.json"
		check "JSON: device and v6only" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["sockets"]
dev = sorted((x["local"].split(":")[0] if x["family"] == "ipv4" else x["local"].rsplit(":", 1)[0], x["device"], x.get("v6only")) for x in s)
assert ("0.0.0.0%lo", "lo", None) in dev, dev
assert ("[fe80::99]%vops0", "vops0", True) in dev or ("[fe80::99]%vops0", "vops0", False) in dev, dev
assert ("*", None, False) in dev and ("[::]", None, True) in dev, dev
' "$tmpdir/ns.json"
	else
		not_ok "helper opened device-bound and dual-stack sockets"
	fi
else
	skip "device, scope and dual-stack as ss shows them" "no IPv6 or cannot add a network namespace"
fi
