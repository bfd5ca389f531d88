#!/bin/bash
# A LAN subscriber whose application stops calling kite_recv() while a
# publisher floods it, between two namespace hosts this test creates (a
# veth pair; nothing leaves them; removed at exit): the handle's control
# thread keeps receiving, but what waits for kite_recv() stays within its
# bound (65,536 messages or 64 MiB) instead of growing with the flood, the
# rest is dropped, counted (queue_dropped) and reported as lost, and
# received + lost still equals what was published.
. "$(dirname "$0")/lib.sh"
need iproute2:ip
if ! is_root; then
	skip "lan_backlog_test.sh" "needs root to create network namespaces"
	exit 0
fi
tool=$(dirname "$KITE")/tests/helpers/lan_tool
[ -x "$tool" ] || { not_ok "lan_tool built" "make check-build builds $tool"; exit 0; }

P=kq$$
in_ns() { local h=$1; shift; ip netns exec "$P$h" "$@"; }
teardown() { ip netns del "${P}a" 2>/dev/null; ip netns del "${P}b" 2>/dev/null; }
at_exit teardown
ip netns add "${P}a" && ip netns add "${P}b" || { not_ok "create namespaces"; exit 0; }
ip -n "${P}a" link add eth0 type veth peer name eth0 netns "${P}b"
ip -n "${P}a" addr add 10.76.0.1/24 dev eth0
ip -n "${P}b" addr add 10.76.0.2/24 dev eth0
for h in a b; do ip -n "$P$h" link set lo up; ip -n "$P$h" link set eth0 up; done
ok "two namespace hosts on a veth pair"

# 200,000 messages of 1 KiB: 200 MiB if the backlog were not bounded.
# (An ASan build's quarantine would hold what is dropped: kept small.)
N=200000
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
spawn in_ns a "$tool" stall eth0 'flood.>' >"$tmpdir/sub" 2>"$tmpdir/sub.err"
ps=$LAST_PID
wait_for 10 grep -q ready "$tmpdir/sub"
in_ns b "$tool" pubtime eth0 flood.x $N 1024 >"$tmpdir/pub" 2>&1
wait "$ps"; r=$?
read -r _ rss _ qd _ kd <<<"$(grep '^rss_kib' "$tmpdir/sub")"
read -r _ got _ lost <<<"$(grep '^received' "$tmpdir/sub")"
unsent=$(sed -n 's/.* unsent \([0-9]*\) .*/\1/p' "$tmpdir/pub")
# (One command per check: a "&&" after it would be outside the check.)
check "the stalled subscriber ran to the end (exit $r)" [ "$r${rss:+,}${got:+,}" = "0,," ]
check "its memory stayed bounded: RSS ${rss:-?} KiB < 160 MiB with 200 MiB sent" \
	[ "${rss:-999999999}" -lt $((160 * 1024)) ]
check "what did not fit was dropped and counted (queue_dropped ${qd:-?}, kernel_drops ${kd:-?})" \
	[ "${qd:-0}" -gt 0 ]
check "the backlog it kept was delivered (${got:-?} messages, at most 65,536)" \
	test $(( ${got:-0} > 1000 && ${got:-0} <= 65536 )) = 1
check "received ${got:-?} + lost ${lost:-?} = $N published (${unsent:-?} unsent)" \
	[ $(( ${got:-0} + ${lost:-0} )) = $N ]
