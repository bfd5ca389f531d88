#!/bin/bash
# LAN channels between namespace hosts this test creates: four hosts (a, b,
# c, d) on veth pairs to a bridge in a fifth namespace; nothing is ever
# sent outside them, and all are removed at exit. Loss and duplication by
# nftables in the namespaces; reordering and corruption by the seeded
# relay of tests/helpers/lan_tool.
. "$(dirname "$0")/lib.sh"
need iproute2:ip nftables:nft
if ! is_root; then
	skip "lan_test.sh" "needs root to create network namespaces"
	exit 0
fi
tool=$(dirname "$KITE")/tests/helpers/lan_tool
[ -x "$tool" ] || { not_ok "lan_tool built" "make check-build builds $tool"; exit 0; }

P=kl$$
hosts="a b c d"
ns() { echo "$P$1"; }
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
teardown() { for h in $hosts br; do ip netns del "$(ns "$h")" 2>/dev/null; done; }
at_exit teardown
ip netns add "$(ns br)" || { not_ok "create namespaces"; exit 0; }
ip -n "$(ns br)" link set lo up
# Multicast snooping off: with no querier on this bridge, it would stop
# forwarding groups after the first report expires.
ip -n "$(ns br)" link add br0 type bridge mcast_snooping 0
ip -n "$(ns br)" link set br0 up
i=1
for h in $hosts; do
	ip netns add "$(ns "$h")"
	ip -n "$(ns "$h")" link set lo up
	# Made inside the namespaces: the host's own stack never sees them.
	ip -n "$(ns "$h")" link add eth0 type veth peer name "p$h" netns "$(ns br)"
	ip -n "$(ns br)" link set "p$h" master br0 up
	ip -n "$(ns "$h")" addr add "10.77.0.$i/24" dev eth0
	ip -n "$(ns "$h")" link set eth0 up
	i=$((i + 1))
done
addr() { case $1 in a) echo 10.77.0.1;; b) echo 10.77.0.2;; c) echo 10.77.0.3;; d) echo 10.77.0.4;; esac; }
ok "four namespace hosts on a bridge"

# sub HOST OUTFILE ARGS...: a LAN subscriber, ready once it said so.
start_sub() {
	local h=$1 out=$2; shift 2
	spawn in_ns "$h" "$KITE" sub --lan eth0 -v -s "$@" >"$out" 2>"$out.err"
	wait_for 5 grep -q "subscribed" "$out.err"
}
# The received/lost line of a subscriber's --stats.
counts() { sed -n 's/^kite sub: received \([0-9]*\), lost \([0-9]*\)$/\1 \2/p' "$1" | tail -1; }
lanstat() { sed -n "s/.*; $2 \([0-9]*\).*/\1/p;s/.*[;,] $2 \([0-9]*\).*/\1/p" "$1" | head -1; }

# --- basic: one publisher, two subscribers on other hosts ---------------
start_sub a "$tmpdir/a1" -n 3 -j 'orders.>'
pa=$LAST_PID
start_sub c "$tmpdir/c1" -n 3 'orders.*'
pc=$LAST_PID
printf 'one\ntwo\nthree\n' | in_ns b "$KITE" pub --lan eth0 orders.eu
wait "$pa"; ra=$?
wait "$pc"; rc=$?
check "a and c both got all three (exit $ra, $rc)" [ "$ra" = 0 ] && [ "$rc" = 0 ]
check "c prints the sender's address and claimed pid" \
	grep -q "^orders.eu lan=$(addr b) pid=[0-9]* seq=3 three\$" "$tmpdir/c1"
check "a's JSON marks the identity as LAN-claimed" \
	grep -q "\"lan\":{\"host\":\"[0-9a-f]*\",\"address\":\"$(addr b)\",\"port\":[0-9]*,\"claimed_pid\":[0-9]*}" "$tmpdir/a1"
check "nothing lost" [ "$(counts "$tmpdir/c1.err")" = "3 0" ]

# --- a bad --lan is a usage error, a missing interface a system error ----
in_ns a "$KITE" sub --lan 'eth0,port=0' x >/dev/null 2>"$tmpdir/bad"; r=$?
check "--lan with a bad option: exit 100 and why ($r)" [ $r = 100 ] && grep -q "port=0" "$tmpdir/bad"
in_ns a "$KITE" sub --lan nosuch0 x >/dev/null 2>"$tmpdir/bad"; r=$?
check "--lan with no such interface: exit 111 ($r)" [ $r = 111 ] && grep -q "nosuch0" "$tmpdir/bad"

# --- exact accounting under 5 % loss (a) and 2 % duplication (c) --------
N=3000
in_ns a nft -f - <<'NFT'
table inet kite_loss {
	chain in { type filter hook input priority 0; udp dport 7475 numgen random mod 100 < 5 drop; }
}
NFT
in_ns b nft -f - <<'NFT'
table ip kite_dup {
	chain out { type filter hook output priority 0; udp dport 7475 numgen random mod 100 < 2 dup to ip daddr device "eth0"; }
}
NFT
start_sub a "$tmpdir/a2" -g 'load.>'
pa=$LAST_PID
start_sub c "$tmpdir/c2" -g 'load.>'
pc=$LAST_PID
# A moderate rate: 3000 messages in about 1.5 s.
for i in $(seq 1 $N); do echo "m$i"; [ $((i % 100)) = 0 ] && sleep 0.05; done |
	in_ns b "$KITE" pub --lan eth0 -s load.x 2>"$tmpdir/pub2"
wait "$pa"
wait "$pc"
read -r ga la <<<"$(counts "$tmpdir/a2.err")"
read -r gc lc <<<"$(counts "$tmpdir/c2.err")"
check "5 % loss: received $ga + lost $la = $N" [ "$((ga + la))" = $N ]
check "5 % loss: some were lost ($la), not too many" [ "$la" -gt 30 ] && [ "$la" -lt 400 ]
check "a printed each message once, in order" \
	bash -c "awk '{print \$4}' '$tmpdir/a2' | sed 's/seq=//' | sort -n -c -u"
dups=$(lanstat "$tmpdir/c2.err" duplicates)
check "duplication: received $gc + lost $lc = $N" [ "$((gc + lc))" = $N ]
check "duplication: duplicates dropped and counted ($dups)" [ "${dups:-0}" -gt 10 ]
check "duplication: nothing lost ($lc)" [ "$lc" = 0 ]
check "c printed $N distinct messages" [ "$(awk '{print $4}' "$tmpdir/c2" | sort -u | wc -l)" = $N ]
in_ns a nft delete table inet kite_loss
in_ns b nft delete table ip kite_dup

# --- reordering and corruption: a seeded relay on d ---------------------
# a hears b only through d's relay (b's own datagrams are dropped at a).
in_ns a nft -f - <<NFT
table inet kite_via_d {
	chain in { type filter hook input priority 0; ip saddr $(addr b) udp dport 7475 drop; }
}
NFT
spawn in_ns d "$tool" relay eth0 42 2 5 1500 >"$tmpdir/relay"
prelay=$LAST_PID
wait_for 5 grep -q ready "$tmpdir/relay"
start_sub a "$tmpdir/a3" -g 'faults.>'
pa=$LAST_PID
# (No packing here: one message a datagram, so each corrupted datagram is
# exactly one message lost.)
for i in $(seq 1 $N); do echo "f$i"; [ $((i % 100)) = 0 ] && sleep 0.05; done |
	in_ns b "$KITE" pub --lan eth0,pack_us=0 faults.x
wait "$pa"
wait "$prelay"
read -r _ relayed _ corrupted _ reordered <<<"$(tail -1 "$tmpdir/relay")"
read -r g3 l3 <<<"$(counts "$tmpdir/a3.err")"
crc=$(sed -n 's/.*(bad CRC \([0-9]*\)).*/\1/p' "$tmpdir/a3.err")
rej=$(sed -n 's/.*rejected \([0-9]*\) (bad CRC.*/\1/p' "$tmpdir/a3.err")
check "relay: $reordered reordered, $corrupted corrupted of $relayed" \
	[ "${reordered:-0}" -gt 20 ] && [ "${corrupted:-0}" -gt 5 ]
check "every corrupted datagram rejected by CRC ($crc of $corrupted, rejected $rej)" \
	[ "$crc" = "$corrupted" ] && [ "$rej" = "$corrupted" ]
check "reordered and corrupted: received $g3 + lost $l3 = $N" [ "$((g3 + l3))" = $N ]
late3=$(lanstat "$tmpdir/a3.err" late)
check "only the corrupted were lost ($l3 of $corrupted; late $late3)" [ "$l3" = "$corrupted" ]
check "reordered messages delivered in order" \
	bash -c "awk '{print \$4}' '$tmpdir/a3' | sed 's/seq=//' | sort -n -c -u"
in_ns a nft delete table inet kite_via_d

# --- packing: a burst shares datagrams, a lone message still goes at once
start_sub c "$tmpdir/c8" -n $N 'burst.>'
pc=$LAST_PID
seq 1 $N | in_ns b "$KITE" pub --lan eth0 -s burst.x 2>"$tmpdir/pub8"
wait "$pc"; r=$?
sent=$(sed -n 's/.*datagrams sent \([0-9]*\),.*/\1/p' "$tmpdir/pub8")
check "packing: $N messages in a burst all arrive (exit $r, $(counts "$tmpdir/c8.err"))" \
	[ "$r" = 0 ] && [ "$(counts "$tmpdir/c8.err")" = "$N 0" ]
check "packing: $N messages took $sent datagrams (several a datagram)" \
	[ -n "$sent" ] && [ "$sent" -lt $((N / 4)) ]
check "packing: in order, each once" \
	bash -c "awk '{print \$5}' '$tmpdir/c8' | sort -n -c -u"
start_sub c "$tmpdir/c9" -n 1 -t 5 'lone.>'
pc=$LAST_PID
t0=$(date +%s%N)
in_ns b "$KITE" pub --lan eth0,pack_us=1000000 lone.x "just one"
wait "$pc"; r=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a lone message is not held for the 1 s packing bound (${ms} ms, exit $r)" \
	[ "$r" = 0 ] && [ "$ms" -lt 700 ]

# --- a late joiner hears from its join on, and reports nothing lost -----
# (The writers wait for a file: a publisher's stdin stays open meanwhile.)
{ for i in $(seq 1 50); do echo "early$i"; done
  wait_for 15 test -e "$tmpdir/go4"
  for i in $(seq 1 50); do echo "later$i"; done; } |
	in_ns b "$KITE" pub --lan eth0 late.x &
ppub=$!
__pids+=("$ppub")
sleep 0.3
start_sub c "$tmpdir/c4" -g 'late.>'
pc=$LAST_PID
touch "$tmpdir/go4"
wait "$ppub"
wait "$pc"
check "late joiner: the 50 published after it joined ($(counts "$tmpdir/c4.err"))" \
	[ "$(counts "$tmpdir/c4.err")" = "50 0" ]
check "late joiner: starts at seq 51" grep -q "seq=51 later1\$" "$tmpdir/c4"

# --- a publisher host that vanishes: reported gone after its silence ----
{ wait_for 15 test -e "$tmpdir/go5"
  for i in $(seq 1 20); do echo "g$i"; done
  wait_for 15 test -e "$tmpdir/end5"; } |
	in_ns b "$KITE" pub --lan eth0 gone.x &
ppub=$!
__pids+=("$ppub")
start_sub a "$tmpdir/a5" -g 'gone.>'
pa=$LAST_PID
touch "$tmpdir/go5"
wait_for 5 grep -q "seq=20 g20" "$tmpdir/a5"
# The host drops off the LAN: no goodbye can reach anyone.
ip -n "$(ns b)" link set eth0 down
t0=$(date +%s%N)
wait "$pa"; r=$?
t1=$(date +%s%N)
touch "$tmpdir/end5"
wait "$ppub" 2>/dev/null
ip -n "$(ns b)" link set eth0 up
ms=$(( (t1 - t0) / 1000000 ))
check "vanished host: subscriber told it has gone after ${ms} ms (exit $r)" \
	[ "$r" = 0 ] && [ "$ms" -lt 10000 ] && grep -q "has gone" "$tmpdir/a5.err"
check "vanished host: all 20 received, none lost" [ "$(counts "$tmpdir/a5.err")" = "20 0" ]

# --- a message of 16 MiB, fragmented and reassembled --------------------
start_sub c "$tmpdir/c6" -n 1 -t 20 'big.>'
pc=$LAST_PID
head -c $((16 << 20)) /dev/zero | tr '\0' 'x' | in_ns b "$KITE" pub --lan eth0 big.one
wait "$pc"; r=$?
len=$(awk '{print length($5)}' "$tmpdir/c6")
check "16 MiB message reassembled (exit $r, payload $len bytes)" [ "$r" = 0 ] && [ "$len" = $((16 << 20)) ]

# --- a fragment flood stays under the reassembly cap --------------------
start_sub a "$tmpdir/a7" -n 1 -t 30 'flood.>'
pa=$LAST_PID
subpid=$(pgrep -P "$pa" -x kite || echo "$pa")
in_ns d "$tool" flood eth0 flood.x 3000 >"$tmpdir/flood"
echo after-the-flood | in_ns b "$KITE" pub --lan eth0 flood.x
wait "$pa"; r=$?
check "after a flood of 3000 never-completed 16 MiB messages, a real one arrives (exit $r)" \
	[ "$r" = 0 ] && grep -q "after-the-flood" "$tmpdir/a7"
dropped=$(lanstat "$tmpdir/a7.err" "partial messages dropped")
check "flood: partial messages dropped and counted ($dropped)" [ "${dropped:-0}" -ge 2900 ]

# --- a full send queue: kite_publish waits at most 200 ms in all ---------
# b's interface drains at 200 kbit/s into a queue that never drops, so its
# socket's send queue fills and stays full. A 64 KiB message is 47
# datagrams: a wait per datagram (the old bound) made one publish take
# about 2.8 s here; the bound is per call.
tc -n "$(ns b)" qdisc add dev eth0 root tbf rate 200kbit burst 3000 limit 100000000
in_ns b timeout 60 "$tool" pubtime eth0 slow.x 80 65536 >"$tmpdir/slow" 2>&1; r=$?
tc -n "$(ns b)" qdisc del dev eth0 root
read -r _ longest _ _ _ closing _ unsent _ _ <"$tmpdir/slow"
check "full send queue: the longest kite_publish took ${longest:-?} ms (<= 200 + scheduling), exit $r" \
	[ "$r" = 0 ] && [ "${longest:-9999}" -le 700 ]
check "full send queue: messages were given up and counted unsent (${unsent:-?})" \
	[ "${unsent:-0}" -gt 0 ]
check "full send queue: kite_close took ${closing:-?} ms (<= 200 + scheduling)" \
	[ "${closing:-9999}" -le 700 ]
