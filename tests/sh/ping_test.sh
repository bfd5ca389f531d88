#!/bin/bash
# kite ping: real ICMP, only inside network namespaces this test makes.
#   two namespaces joined by a veth pair (10.200.7.0/30, fd00:7::/64);
#   `unshare -n` namespaces with only lo. The host's sysctls are never touched:
#   net.ipv4.ping_group_range is set per namespace.
. "$(dirname "$0")/lib.sh"
# all_of 'CMD'...: every shell command (evaluated now) succeeds.
all_of() { local c; for c in "$@"; do eval "$c" || return 1; done; }

# --help and usage errors need no network
out=$("$KITE" ping --help); rc=$?
check "--help prints usage, exit 0" [ $rc -eq 0 -a "${out#Usage: kite ping}" != "$out" ]
for args in "" "-c 0 127.0.0.1" "-c x 127.0.0.1" "-i 0.001 127.0.0.1" "-4 -6 127.0.0.1" \
	"127.0.0.1 127.0.0.2" "--bogus 127.0.0.1" "127.0.0.1 -c"; do
	# shellcheck disable=SC2086
	"$KITE" ping $args >/dev/null 2>"$tmpdir/err"; rc=$?
	check "usage error (100): ping $args" all_of '[ $rc -eq 100 ]' 'grep -q "Try .kite ping --help." "$tmpdir/err"'
done

if ! command -v ip >/dev/null || ! command -v unshare >/dev/null || ! unshare -n true 2>/dev/null; then
	skip "ping in network namespaces" "needs root, ip(8) and unshare(1) with network namespaces"
	exit 0
fi
host_range=$(cat /proc/sys/net/ipv4/ping_group_range)
allow='sysctl -q -w net.ipv4.ping_group_range="0 2147483647"'
# A copy that user nobody can run, wherever the tree lives.
chmod 0711 "$tmpdir"
cp "$KITE" "$tmpdir/kite"
chmod 0755 "$tmpdir/kite"
K=$tmpdir/kite

# in_lo_ns SHELL-CODE: run code in a fresh namespace with lo up; $K is kite.
in_lo_ns() { unshare -n env K="$K" sh -c "ip link set lo up && $1"; }

# loopback inside unshare -n
in_lo_ns "$allow && exec \$K ping -c 3 -i 0.2 127.0.0.1" >"$tmpdir/out" 2>&1; rc=$?
check "127.0.0.1 in unshare -n: exit 0" [ $rc -eq 0 ]
check "127.0.0.1: ping(8)'s header" grep -q '^PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.$' "$tmpdir/out"
check "127.0.0.1: three reply lines" [ "$(grep -cE '^64 bytes from 127\.0\.0\.1: icmp_seq=[123] ttl=64 time=[0-9.]+ ms$' "$tmpdir/out")" = 3 ]
check "127.0.0.1: the summary" grep -qE '^3 packets transmitted, 3 received, 0% packet loss, time [0-9]+ms$' "$tmpdir/out"
check "127.0.0.1: rtt min/avg/max/mdev" grep -qE '^rtt min/avg/max/mdev = [0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3}/[0-9]+\.[0-9]{3} ms$' "$tmpdir/out"
in_lo_ns "$allow && exec \$K ping -6 -c 2 -i 0.2 ::1" >"$tmpdir/out" 2>&1; rc=$?
check "::1 in unshare -n: exit 0, two replies" all_of '[ $rc -eq 0 ]' "grep -q '^2 packets transmitted, 2 received, 0% packet loss' \"\$tmpdir/out\""
in_lo_ns "$allow && exec \$K ping -q -c 2 -i 0.2 127.0.0.1" >"$tmpdir/out" 2>&1; rc=$?
check "-q: summary without reply lines" all_of '[ $rc -eq 0 ]' '! grep -q "^64 bytes" "$tmpdir/out"' 'grep -q ", 2 received," "$tmpdir/out"'

# SIGINT ends a run early with the summary, like ping(8) (-c bounds the
# run should the signal be lost: 300 requests, 60 s)
# (unshare, env and sh each exec the next: $! is kite's pid)
spawn unshare -n env K="$K" sh -c "ip link set lo up && $allow && exec \$K ping -c 300 -i 0.2 127.0.0.1" \
	>"$tmpdir/out" 2>&1
ppid=$LAST_PID
two_replies() { [ "$(grep -c '^64 bytes' "$tmpdir/out")" -ge 2 ]; }
wait_for 60 two_replies
kill -INT $ppid; wait $ppid; rc=$?
check "SIGINT ends the run with exit 0" [ $rc -eq 0 ]
check "SIGINT: the summary, before the 300th request" grep -qE '^([0-9]|[0-9][0-9]|[12][0-9][0-9]) packets transmitted, [0-9]+ received' "$tmpdir/out"

# unprivileged for real: user nobody, allowed by the range / refused by it
in_lo_ns "sysctl -q -w net.ipv4.ping_group_range='65534 65534' && exec setpriv --reuid=nobody --regid=nogroup --clear-groups \$K ping -c 1 127.0.0.1" >"$tmpdir/out" 2>&1; rc=$?
check "user nobody pings when ping_group_range lets its group in" [ $rc -eq 0 ]
in_lo_ns "sysctl -q -w net.ipv4.ping_group_range='0 0' && exec setpriv --reuid=nobody --regid=nogroup --clear-groups \$K ping -c 1 127.0.0.1" >"$tmpdir/out" 2>"$tmpdir/err"; rc=$?
check "ping_group_range excludes nobody: exit 111" [ $rc -eq 111 ]
check "denial names net.ipv4.ping_group_range and its value" grep -q 'net.ipv4.ping_group_range (here "0 0"; your group is 65534)' "$tmpdir/err"
check "denial prints the exact sysctl fix" grep -qx '    sysctl -w net.ipv4.ping_group_range="0 2147483647"' "$tmpdir/err"
check "the host's ping_group_range is untouched" [ "$(cat /proc/sys/net/ipv4/ping_group_range)" = "$host_range" ]

# two namespaces joined by a veth pair
a=kp$$a b=kp$$b
if ! ip netns add "$a" 2>/dev/null; then
	skip "ping across a veth pair" "ip netns add failed"
	exit 0
fi
at_exit "ip netns del $a"
ip netns add "$b" && at_exit "ip netns del $b"
ip link add va netns "$a" type veth peer name vb netns "$b"
ip -n "$a" addr add 10.200.7.1/30 dev va
ip -n "$b" addr add 10.200.7.2/30 dev vb
ip -n "$a" addr add fd00:7::1/64 dev va nodad
ip -n "$b" addr add fd00:7::2/64 dev vb nodad
for ns in "$a" "$b"; do
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -q -w net.ipv4.ping_group_range="0 2147483647"
done
ip -n "$a" link set va up
ip -n "$b" link set vb up
link_ready() { ip -n "$a" link show va | grep -q LOWER_UP && ip -n "$b" link show vb | grep -q LOWER_UP; }
check "veth pair up" wait_for 30 link_ready

ip netns exec "$a" "$K" ping -c 3 -i 0.2 10.200.7.2 >"$tmpdir/out" 2>&1; rc=$?
check "veth peer 10.200.7.2: exit 0" [ $rc -eq 0 ]
check "veth peer: three replies from the peer" [ "$(grep -cE '^64 bytes from 10\.200\.7\.2: icmp_seq=[123] ttl=64 time=' "$tmpdir/out")" = 3 ]
check "veth peer: the summary" grep -q '^3 packets transmitted, 3 received, 0% packet loss' "$tmpdir/out"
ip netns exec "$a" "$K" ping -6 -c 2 -i 0.2 fd00:7::2 >"$tmpdir/out" 2>&1; rc=$?
check "veth peer fd00:7::2 over IPv6: exit 0" all_of '[ $rc -eq 0 ]' 'grep -q "^64 bytes from fd00:7::2: icmp_seq=1 ttl=64" "$tmpdir/out"'

# silence: the peer ignores echo requests -> exit 1, 100% loss
ip netns exec "$b" sysctl -q -w net.ipv4.icmp_echo_ignore_all=1
ip netns exec "$a" "$K" ping -c 2 -i 0.2 -W 1 10.200.7.2 >"$tmpdir/out" 2>&1; rc=$?
check "no reply: exit 1" [ $rc -eq 1 ]
check "no reply: 100% packet loss, no rtt line" all_of 'grep -q "^2 packets transmitted, 0 received, 100% packet loss" "$tmpdir/out"' '! grep -q "^rtt" "$tmpdir/out"'
ip netns exec "$b" sysctl -q -w net.ipv4.icmp_echo_ignore_all=0

# an ICMP error: the peer has an unreachable route for 10.200.9.0/24 and
# says so; the address lives only in namespace b's routing table.
ip netns exec "$b" sysctl -q -w net.ipv4.ip_forward=1
ip -n "$b" route add unreachable 10.200.9.0/24
ip -n "$a" route add 10.200.9.0/24 via 10.200.7.2
ip netns exec "$a" "$K" ping -c 1 -W 5 10.200.9.1 >"$tmpdir/out" 2>&1; rc=$?
check "ICMP unreachable: exit 1" [ $rc -eq 1 ]
check "ICMP unreachable: 'From 10.200.7.2 icmp_seq=1 Destination Host Unreachable'" \
	grep -q '^From 10.200.7.2 icmp_seq=1 Destination Host Unreachable$' "$tmpdir/out"
check "ICMP unreachable: counted as an error" grep -q '^1 packets transmitted, 0 received, +1 errors, 100% packet loss' "$tmpdir/out"

# Side by side with iputils ping(8): the same lines (round-trip figures
# masked) and the same summary time, for IPv4 and IPv6, addresses and host
# names (a private /etc/hosts, bind-mounted in a mount namespace of the
# test's own), replies and an unreachable destination.
if ! command -v ping >/dev/null || ! ping -V 2>/dev/null | grep -q iputils; then
	skip "same output as iputils ping(8)" "iputils-ping not installed"
	exit 0
fi
printf '127.0.0.1 localhost\n::1 loop6\n10.200.7.2 peer4\nfd00:7::2 peer6\n' >"$tmpdir/hosts"
chmod 644 "$tmpdir/hosts"
mask() { sed -E 's/time=[0-9.]+ ms/time=T ms/; s/, time [0-9]+ms$/, time Nms/; s|^(rtt min/avg/max/mdev = ).*|\1N|' "$1"; }
summary_ms() { sed -nE 's/.*, time ([0-9]+)ms$/\1/p' "$1"; }
# like_iputils LABEL WHERE ARGS...: WHERE is "lo" (unshare -n) or a netns.
like_iputils() {
	local label=$1 where=$2 tool; shift 2
	for tool in ping "\$K ping"; do
		local code="mount --bind \$H /etc/hosts && exec $tool $*" out="$tmpdir/like.${tool##* }${tool%% *}"
		if [ "$where" = lo ]; then
			unshare -m -n env K="$K" H="$tmpdir/hosts" sh -c "ip link set lo up && $allow && $code"
		else
			ip netns exec "$where" unshare -m env K="$K" H="$tmpdir/hosts" sh -c "$code"
		fi >"$out" 2>&1
	done
	local i="$tmpdir/like.pingping" k="$tmpdir/like.ping\$K"
	if diff <(mask "$i") <(mask "$k") >"$tmpdir/like.diff"; then ok "$label: lines as ping(8)'s"
	else not_ok "$label: lines as ping(8)'s"; sed 's/^/# /' "$tmpdir/like.diff"; fi
	local a b
	a=$(summary_ms "$i") b=$(summary_ms "$k")
	check "$label: summary time as ping(8)'s ($a vs $b ms, within 150)" \
		bash -c "[ -n '$a' ] && [ -n '$b' ] && [ \$(( $a - $b )) -le 150 ] && [ \$(( $b - $a )) -le 150 ]"
}
like_iputils "127.0.0.1" lo -c 3 -i 0.2 127.0.0.1
like_iputils "::1" lo -c 3 -i 0.2 ::1
like_iputils "host name localhost" lo -c 2 -i 0.2 localhost
like_iputils "IPv6 host name loop6" lo -c 2 -i 0.2 loop6
like_iputils "veth peer by name" "$a" -c 2 -i 0.2 peer4
like_iputils "veth IPv6 peer by name" "$a" -c 2 -i 0.2 peer6
# One error per request: no ICMP rate limit in the router's namespace.
ip netns exec "$b" sysctl -q -w net.ipv4.icmp_ratelimit=0
like_iputils "unreachable" "$a" -c 3 -i 0.25 -W 3 10.200.9.1
# Requests nobody answers: the summary ends the same way.
ip netns exec "$b" sysctl -q -w net.ipv4.icmp_echo_ignore_all=1
like_iputils "no reply" "$a" -c 2 -i 0.2 -W 1 10.200.7.2
ip netns exec "$b" sysctl -q -w net.ipv4.icmp_echo_ignore_all=0
