#!/bin/bash
# A LAN subscriber whose application stops calling kite_recv() while a
# publisher floods it, between two namespace hosts this test creates (a
# veth pair; nothing leaves them; removed at exit): the handle's control
# thread keeps receiving, but what waits for kite_recv() stays within its
# bound (65,536 messages or 64 MiB) instead of growing with the flood, the
# rest is dropped, counted (queue_dropped) and reported as lost, and
# received + lost still equals what was published. And a publisher's
# burst leaves as UDP GSO sends (fewer packets on the path than
# datagrams; gso=0: one each), with exact accounting when those packets
# are dropped whole (nftables loss at the subscriber's host).
. "$(dirname "$0")/lib.sh"
need iproute2:ip nftables:nft
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
# Paced (50,000 a second) so that the control thread takes them all and
# the backlog, not the kernel's socket buffer, is what overflows.
# (An ASan build's quarantine would hold what is dropped: kept small.)
N=200000
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
spawn in_ns a "$tool" stall eth0 'flood.>' >"$tmpdir/sub" 2>"$tmpdir/sub.err"
ps=$LAST_PID
wait_for 10 grep -q ready "$tmpdir/sub"
in_ns b "$tool" pubtime eth0 flood.x $N 1024 50000 >"$tmpdir/pub" 2>&1
wait "$ps"; r=$?
read -r _ rss _ qd _ kd <<<"$(grep '^rss_kib' "$tmpdir/sub")"
read -r _ got _ lost <<<"$(grep '^received' "$tmpdir/sub")"
unsent=$(sed -n 's/.* unsent \([0-9]*\) .*/\1/p' "$tmpdir/pub")
# (One command per check: a "&&" after it would be outside the check.)
check "the stalled subscriber ran to the end (exit $r)" [ "$r${rss:+,}${got:+,}" = "0,," ]
check "its memory stayed bounded: RSS ${rss:-?} KiB < 160 MiB with 200 MiB sent" \
	[ "${rss:-999999999}" -lt $((160 * 1024)) ]
check "what did not fit was dropped and counted (queue_dropped ${qd:-?}, kernel_drops ${kd:-?})" \
	test $(( ${qd:-0} + 65536 >= N - ${kd:-0} && ${qd:-0} > 0 )) = 1
check "the backlog it kept was delivered (${got:-?} messages, at most 65,536)" \
	test $(( ${got:-0} > 1000 && ${got:-0} <= 65536 )) = 1
check "received ${got:-?} + lost ${lost:-?} = $N published (${unsent:-?} unsent)" \
	[ $(( ${got:-0} + ${lost:-0} )) = $N ]

# --- a burst leaves as GSO sends: fewer packets than datagrams ----------
# pubtime publishes as fast as it can (the packer fills); "stall" reads
# after the burst (50,000 fit its backlog). An nftables counter at the
# subscriber's input counts packets: a GSO send is one packet there.
M=50000
counted() { # the input counter's packets (and zero it)
	in_ns a nft list table inet kq_count | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
	in_ns a nft reset counters table inet kq_count >/dev/null
}
in_ns a nft -f - <<'NFT'
table inet kq_count {
	chain in { type filter hook input priority 0; udp dport 7475 counter; }
}
NFT
at_exit "ip netns exec ${P}a nft delete table inet kq_count"
burst() { # OUT LAN-SPEC: M messages of 64 B from b, counted at a
	spawn in_ns a "$tool" stall eth0 'burst.>' >"$tmpdir/$1" 2>&1
	local sp=$LAST_PID
	wait_for 10 grep -q ready "$tmpdir/$1"
	in_ns b "$tool" pubtime "$2" burst.x $M 64 >"$tmpdir/$1.pub" 2>&1
	wait "$sp"
	counted >"$tmpdir/$1.packets"
}
pub_datagrams() { sed -n 's/.* sent \([0-9]*\)$/\1/p' "$tmpdir/$1.pub"; }
got_lost() { sed -n 's/^received \([0-9]*\) lost \([0-9]*\)$/\1 \2/p' "$tmpdir/$1"; }
# received + lost = M (unpaced, the kernel may drop some: counted lost)
accounted() { local g l; read -r g l <<<"$(got_lost "$1")"; [ $(( ${g:-0} + ${l:-0} )) = $M ] && [ "${g:-0}" -gt $((M / 2)) ]; }
counted >/dev/null
burst gso eth0
read -r gp <"$tmpdir/gso.packets"; gd=$(pub_datagrams gso)
check "GSO on: received + lost = $M ($(got_lost gso))" accounted gso
check "GSO on: ${gp:-?} packets reached a for ${gd:-?} datagrams (fewer than half)" \
	test $(( ${gp:-0} > 0 && ${gd:-0} > 0 && 2 * ${gp:-0} < ${gd:-0} )) = 1
burst plain eth0,gso=0
read -r pp <"$tmpdir/plain.packets"; pd=$(pub_datagrams plain)
check "gso=0: received + lost = $M ($(got_lost plain))" accounted plain
check "gso=0: a packet a datagram (${pp:-?} packets, ${pd:-?} datagrams)" \
	test $(( ${pd:-0} > 0 && ${pp:-0} >= ${pd:-0} )) = 1

# --- GSO sends dropped whole at 5 % still account exactly ---------------
in_ns a nft -f - <<'NFT'
table inet kq_loss {
	chain in { type filter hook input priority 0; udp dport 7475 numgen random mod 100 < 5 drop; }
}
NFT
at_exit "ip netns exec ${P}a nft delete table inet kq_loss"
burst lossy eth0
read -r gl ll <<<"$(got_lost lossy)"
check "GSO at 5 % packet loss: received ${gl:-?} + lost ${ll:-?} = $M" \
	test $(( ${gl:-0} + ${ll:-0} )) = $M
check "GSO at 5 % packet loss: some lost (${ll:-?}), most received" \
	test $(( ${ll:-0} > 0 && ${gl:-0} > M / 2 )) = 1

# --- a burst's tail leaves while the publisher stays open: full batches go
# at once; what is left waits at most pack_us (300 ms here; the timer,
# armed for an earlier batch, is armed again when it fires too soon), or
# less: the state frame due 50 ms after the last message sends it first.
# (Sent only at close, after 4 s, it would be too late.)
in_ns a nft delete table inet kq_loss
spawn in_ns a "$KITE" sub --lan eth0 -v -s -n 2001 -t 10 'tail.>' >"$tmpdir/tail" 2>"$tmpdir/tail.err"
sp=$LAST_PID
wait_for 5 grep -q subscribed "$tmpdir/tail.err"
t0=$(date +%s%N)
spawn bash -c "{ seq 1 2001; sleep 4; } | ip netns exec ${P}b '$KITE' pub --lan eth0,pack_us=300000 tail.x"
wait "$sp"; r=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "2,001 messages in a burst all came ($(wc -l <"$tmpdir/tail") lines, exit $r)" \
	test $(( r == 0 )) = 1 -a "$(wc -l <"$tmpdir/tail")" = 2001
check "the burst's last ones came by the packing bound, not at close (${ms} ms < 2,500)" \
	test $ms -lt 2500

# --- a publisher that says goodbye and speaks again, over and over, to a
# stalled subscriber: each return queues a KITE_PUBLISHER_NEW and each
# goodbye a KITE_PUBLISHER_GONE for kite_recv(). Those count against the
# backlog's bound too: once it is full, a return is dropped (counted in
# queue_dropped; its messages are reported lost when the stream is heard
# again), so 800,000 of them (~200 MiB of events unbounded) do not grow it.
F=800000
spawn in_ns a "$tool" stall eth0 'flap.>' >"$tmpdir/flap" 2>&1
sp=$LAST_PID
wait_for 10 grep -q ready "$tmpdir/flap"
in_ns b "$tool" flap eth0 flap.x $F >"$tmpdir/flap.pub" 2>&1
wait "$sp"; r=$?
read -r _ rssf _ qdf _ kdf <<<"$(grep '^rss_kib' "$tmpdir/flap")"
check "flapping publisher ($(cat "$tmpdir/flap.pub")): the stalled subscriber ran to the end (exit $r)" \
	test "$r" = 0 -a -n "$rssf"
check "flapping publisher: RSS ${rssf:-?} KiB < 64 MiB (kernel_drops ${kdf:-?})" \
	test "${rssf:-999999999}" -lt $((64 * 1024))
check "flapping publisher: returns past the backlog dropped and counted (queue_dropped ${qdf:-?})" \
	test "${qdf:-0}" -gt 0

# --- messages held behind gaps, from many streams at once ---------------
# 32 made-up publishers each send a 256 KiB message, skip a sequence, and
# send 63 more: with reorder_ms=10000 each stream holds them all behind
# its gap (504 MiB together, for 10 s, without a cap). The streams hold
# 64 MiB together at most: past it, a stream gives its gap up (reported
# lost) and hands on what it held, to the queue (itself 64 MiB at most).
spawn in_ns a "$tool" stall eth0,reorder_ms=10000 'held.>' >"$tmpdir/held" 2>&1
sp=$LAST_PID
wait_for 10 grep -q ready "$tmpdir/held"
in_ns b "$tool" hold eth0 held.x 32 63 262144 >"$tmpdir/held.pub" 2>&1
wait "$sp"; r=$?
read -r _ rssh _ qdh _ kdh <<<"$(grep '^rss_kib' "$tmpdir/held")"
read -r _ goth _ losth <<<"$(grep '^received' "$tmpdir/held")"
check "held behind gaps ($(cat "$tmpdir/held.pub")): the subscriber ran to the end (exit $r)" \
	test "$r" = 0 -a -n "$rssh" -a -n "$goth"
check "held behind gaps: RSS ${rssh:-?} KiB < 200 MiB with 504 MiB held back (kernel_drops ${kdh:-?})" \
	test "${rssh:-999999999}" -lt $((200 * 1024))
check "held behind gaps: given-up gaps reported lost (${losth:-?}), what was held delivered (${goth:-?})" \
	test "${losth:-0}" -gt 0 -a "${goth:-0}" -gt 32

# --- a stream first heard by a fragment ---------------------------------
# A subscriber that first hears a publisher mid-message (it joined late,
# or the publisher's start was lost) makes the stream at that fragment;
# until the message completes (807 fragments, several reads) the stream
# is not silent: it is neither reported gone nor short of "sequence 0".
spawn in_ns a "$tool" stall eth0 'first.>' >"$tmpdir/first" 2>&1
sp=$LAST_PID
wait_for 10 grep -q ready "$tmpdir/first"
in_ns b "$tool" hold eth0 first.x 1 0 1048576 >/dev/null 2>&1
wait "$sp"; r=$?
check "first heard by a fragment: its 1 MiB message came, nothing lost, not gone ($(grep '^received' "$tmpdir/first"), exit $r)" \
	test "$r" = 0 -a "$(grep '^received' "$tmpdir/first")" = "received 1 lost 0"

# --- a burst larger than the backlog, to a subscriber that reads on -----
# 150,000 small messages as fast as the publisher goes (tens of ms), to a
# kite sub that prints each (slower): the handle stops reading its socket
# while 4,096 wait for kite_recv(), and the kernel's receive buffer holds
# the rest of the burst (150,000 x 18 bytes of records), instead of the
# backlog (65,536) overflowing and dropping.
B=150000
spawn in_ns a "$KITE" sub --lan eth0 -g -t 30 -v -s 'wave.>' >"$tmpdir/wave" 2>"$tmpdir/wave.err"
sp=$LAST_PID
wait_for 5 grep -q "subscribed" "$tmpdir/wave.err"
in_ns b "$tool" pubtime eth0 wave.x $B 8 >"$tmpdir/wave.pub" 2>&1
wait "$sp"; r=$?
wave=$(sed -n 's/^kite sub: received \([0-9]*\), lost \([0-9]*\)$/\1 \2/p' "$tmpdir/wave.err")
pauses=$(sed -n 's/.*rx pauses \([0-9]*\).*/\1/p' "$tmpdir/wave.err")
qdw=$(sed -n 's/.*queue drops \([0-9]*\).*/\1/p' "$tmpdir/wave.err")
check "a burst of $B past the backlog: all received, none lost (${wave:-?}, exit $r; $(cat "$tmpdir/wave.pub"))" \
	test "$r" = 0 -a "$wave" = "$B 0"
check "the socket was left unread while kite_recv() caught up (rx pauses ${pauses:-?}, queue drops ${qdw:-?})" \
	test "${pauses:-0}" -gt 0 -a "${qdw:-1}" = 0

# --- the subscriber's whole process stopped for 5 s (SIGSTOP) -----------
# A burst (the socket left unread while kite_recv() is behind), then a
# trickle that goes on while the subscriber is stopped and after. Its
# control thread comes back seconds late: the handle did not listen, its
# publisher did not fall silent, so the publisher is not reported gone
# (kite sub -g would leave early) and every message is received or
# reported lost.
spawn in_ns a "$KITE" sub --lan eth0 -g -t 60 -v -s 'stop.>' >"$tmpdir/stop" 2>"$tmpdir/stop.err"
wait_for 5 grep -q "subscribed" "$tmpdir/stop.err"
sp=$(ip netns pids "${P}a")
(seq 1 20000; for i in $(seq 1 60); do echo "t$i"; sleep 0.1; done) |
	in_ns b "$KITE" pub --lan eth0 -s stop.x 2>"$tmpdir/stop.pub" &
pp=$!
sleep 0.3
kill -STOP "$sp"
sleep 5
kill -CONT "$sp"
wait "$pp"
wait_for 10 grep -q "^kite sub: received" "$tmpdir/stop.err"
stopped=$(sed -n 's/^kite sub: received \([0-9]*\), lost \([0-9]*\)$/\1 \2/p' "$tmpdir/stop.err")
check "stopped 5 s: received + lost = 20060 published (${stopped:-?}; $(head -1 "$tmpdir/stop.pub"))" \
	test "$(( ${stopped% *} + ${stopped#* } ))" = 20060
check "stopped 5 s: the last message came before the publisher was called gone" \
	grep -q " t60\$" "$tmpdir/stop"
