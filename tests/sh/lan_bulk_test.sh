#!/bin/bash
# LAN channels, large messages and floods, between two namespace hosts this
# test creates (a and b on a veth pair; nothing is sent outside them; both
# removed at exit): fragments go by UDP_SEGMENT sends and come up as
# UDP_GRO-coalesced buffers, at fragment counts around every boundary of a
# send (64 fragments), plain, authenticated and repaired under loss; a
# send the kernel refuses falls back to sendmmsg; and a subscriber whose
# small receive buffer overflows counts the kernel's drops (SO_RXQ_OVFL)
# beside the sequence gaps they make, with exact accounting.
. "$(dirname "$0")/lib.sh"
need iproute2:ip nftables:nft util-linux:setpriv
if ! is_root; then
	skip "lan_bulk_test.sh" "needs root to create network namespaces"
	exit 0
fi

P=kb$$
ns() { echo "$P$1"; }
in_ns() { local h=$1; shift; ip netns exec "$(ns "$h")" "$@"; }
teardown() { for h in a b; do ip netns del "$(ns "$h")" 2>/dev/null; done; }
at_exit teardown
ip netns add "$(ns a)" && ip netns add "$(ns b)" || { not_ok "create namespaces"; exit 0; }
ip -n "$(ns a)" link add eth0 type veth peer name eth0 netns "$(ns b)"
i=1
for h in a b; do
	ip -n "$(ns "$h")" link set lo up
	# MTU 1000: a fragment frame is at most 972 bytes, so 64 of them (one
	# UDP_SEGMENT send) fit in the 65,507 bytes a send may carry.
	ip -n "$(ns "$h")" link set eth0 mtu 1000
	ip -n "$(ns "$h")" addr add "10.79.0.$i/24" dev eth0
	ip -n "$(ns "$h")" link set eth0 up
	i=$((i + 1))
done
ok "two namespace hosts on a veth pair, MTU 1000"

start_sub() { # HOST OUTFILE ARGS...: a LAN subscriber, ready once it said so
	local h=$1 out=$2; shift 2
	spawn in_ns "$h" "$KITE" sub -v -s "$@" >"$out" 2>"$out.err"
	wait_for 5 grep -q "subscribed" "$out.err"
}
counts() { sed -n 's/^kite sub: received \([0-9]*\), lost \([0-9]*\)$/\1 \2/p' "$1" | tail -1; }
lanstat() { sed -n "s/.*[;,:] $2 \([0-9]*\).*/\1/p" "$1" | head -1; }
# LEN random letters and digits, one line.
line_of() { tr -dc 'a-z0-9' </dev/urandom | head -c "$1"; echo; }

# Fragment payload per frame: 972 - 65 - 6 ("gso.xy") - 4 (stream age) header bytes, less
# the 16-byte tag with a key. A message of c fragments goes in
# c / 64 UDP_SEGMENT sends, plus one for a remainder of 2 or more (a lone
# last fragment goes by itself).
sizes_for() { # ROOM: the message sizes, each "size:fragments"
	local room=$1 c
	for c in 1 2 63 64 65 128 129; do
		echo "$((c * room)):$c"              # last fragment exact
		[ "$c" -gt 1 ] && echo "$((c * room - 1)):$c"  # last one byte short
		[ "$c" -gt 1 ] && echo "$(((c - 1) * room + 1)):$c"  # spread: last shorter
	done
}
gso_sends_for() { local c=$1; echo $((c / 64 + (c % 64 > 1 ? 1 : 0))); }

keyfile() { (umask 077; { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo; } >"$1"); }
keyfile "$tmpdir/k"

run_sizes() { # NAME LANOPTS ROOM [resends]: with resends, more GSO sends
	local tag=$1 opts=$2 room=$3 resends=${4:-} n=0 want_gso=0 frags=0 s c
	: >"$tmpdir/$tag.sent"
	for sc in $(sizes_for "$room"); do
		s=${sc%%:*} c=${sc#*:}
		line_of "$s" >>"$tmpdir/$tag.sent"
		n=$((n + 1)) frags=$((frags + c)) want_gso=$((want_gso + $(gso_sends_for "$c")))
	done
	start_sub b "$tmpdir/$tag" -n "$n" -t 30 --lan "eth0$opts" 'gso.>'
	local ps=$LAST_PID
	# (pack_us=0: nothing is packed; the messages go one after another.)
	in_ns a "$KITE" pub -s --lan "eth0$opts,pack_us=0" gso.xy <"$tmpdir/$tag.sent" \
		2>"$tmpdir/$tag.pub"
	wait "$ps"; local r=$?
	check "$tag: $n messages of 1 to 129 fragments received (exit $r, $(counts "$tmpdir/$tag.err"))" \
		eval '[ "$r" = 0 ] && [ "$(counts "$tmpdir/$tag.err")" = "$n 0" ]'
	check "$tag: each byte for byte, in order" \
		cmp -s <(awk '{print $5}' "$tmpdir/$tag") "$tmpdir/$tag.sent"
	local gso; gso=$(lanstat "$tmpdir/$tag.pub" "gso sends")
	check "$tag: $frags fragments went in $gso UDP_SEGMENT sends ($want_gso expected: 64 a send${resends:+, and resends})" \
		eval '{ [ "$gso" = "$want_gso" ] || { [ -n "$resends" ] && [ "${gso:-0}" -gt "$want_gso" ]; }; } &&
			[ "$(lanstat "$tmpdir/$tag.pub" "gso refused")" = 0 ]'
	local gro; gro=$(lanstat "$tmpdir/$tag.err" "gro buffers")
	check "$tag: the subscriber read coalesced buffers (gro buffers $gro)" [ "${gro:-0}" -gt 0 ]
}

# --- sizes around every send boundary ----------------------------------
run_sizes plain "" $((972 - 75))
run_sizes keyed ",key=$tmpdir/k,repair=1" $((972 - 75 - 16))

# --- repaired under loss: a whole send (up to 64 fragments) is lost -----
# b drops the 4th UDP packet of every 7 to the LAN port: a GSO send
# crosses the veth pair whole, so each drop takes all its fragments; the
# subscriber asks, the publisher resends the messages from its history,
# their fragments by UDP_SEGMENT sends too (a resend of up to 3 sends
# never meets the drop at the same place twice).
in_ns b nft -f - <<'NFT'
table inet kite_loss {
	chain in { type filter hook input priority 0; udp dport 7475 numgen inc mod 7 == 3 counter drop; }
}
NFT
run_sizes repaired ",key=$tmpdir/k,repair=1" $((972 - 75 - 16)) resends
rep=$(lanstat "$tmpdir/repaired.err" repaired)
dropped=$(in_ns b nft list table inet kite_loss | sed -n 's/.*packets \([0-9]*\).*/\1/p')
check "repaired: $dropped sends dropped, $rep messages repaired" \
	eval '[ "${dropped:-0}" -gt 3 ] && [ "${rep:-0}" -gt 3 ]'
in_ns b nft delete table inet kite_loss

# --- a burst of equal small messages: packed datagrams of one length ----
# 300-byte messages pack two to a datagram (742 bytes), every datagram
# alike: the packer's datagrams go by UDP_SEGMENT sends too.
M=3000
for ((i = 1; i <= M; i++)); do printf '%05d%0295d\n' "$i" 0; done >"$tmpdir/eq.sent"
start_sub b "$tmpdir/eq" -n $M -t 20 --lan eth0 'gso.>'
ps=$LAST_PID
in_ns a "$KITE" pub -s --lan eth0 gso.xy <"$tmpdir/eq.sent" 2>"$tmpdir/eq.pub"
wait "$ps"; r=$?
check "packed burst: $M messages, each once, in order (exit $r, $(counts "$tmpdir/eq.err"))" \
	eval '[ "$r" = 0 ] && cmp -s <(awk "{print \$5}" "$tmpdir/eq") "$tmpdir/eq.sent"'
eqg=$(lanstat "$tmpdir/eq.pub" "gso sends"); eqd=$(lanstat "$tmpdir/eq.pub" "datagrams sent")
check "packed burst: its datagrams went by UDP_SEGMENT sends ($eqg sends, $eqd datagrams)" \
	eval '[ "${eqg:-0}" -gt 0 ] && [ "$eqg" -lt "${eqd:-0}" ]'

# The kernel refuses a GSO send mid-run: b subscribes to gso.> for $2
# messages into $tmpdir/$1; a publishes on gso.xy with --lan $3 the lines
# of file $4, then, once b has the first and a's MTU has dropped to 600
# (a 972-byte segment no longer fits: EMSGSIZE), those of file $5. a's
# stderr goes to $tmpdir/$1.pub; r is set to the subscriber's exit status.
refused_midway() {
	local name=$1 n=$2 lan=$3 first=$4 rest=$5
	start_sub b "$tmpdir/$name" -n "$n" -t 20 --lan eth0 'gso.>'
	local ps=$LAST_PID
	{ cat "$first"; wait_for 10 test -e "$tmpdir/$name.go"; cat "$rest"; } |
		in_ns a "$KITE" pub -s --lan "$lan" gso.xy 2>"$tmpdir/$name.pub" &
	local pp=$!
	__pids+=("$pp")
	wait_for 10 grep -q "seq=1 " "$tmpdir/$name"
	ip -n "$(ns a)" link set eth0 mtu 600
	touch "$tmpdir/$name.go"
	wait "$pp"
	wait "$ps"; r=$?
	ip -n "$(ns a)" link set eth0 mtu 1000
}

# --- the kernel refuses a GSO send: the handle falls back to sendmmsg ----
# a's MTU drops to 600 after its publisher opened: a 972-byte segment no
# longer fits and the kernel refuses the send (EMSGSIZE); the fragments go
# by sendmmsg (and IP fragmentation), and so does every later message.
big=$((65536))
line_of $big >"$tmpdir/fb.sent"; line_of $big >>"$tmpdir/fb.sent"; line_of 5000 >>"$tmpdir/fb.sent"
head -1 "$tmpdir/fb.sent" >"$tmpdir/fb.first"; tail -2 "$tmpdir/fb.sent" >"$tmpdir/fb.rest"
refused_midway fb 3 eth0,pack_us=0 "$tmpdir/fb.first" "$tmpdir/fb.rest"
check "fallback: all three arrived whole (exit $r, $(counts "$tmpdir/fb.err"))" \
	eval '[ "$r" = 0 ] && cmp -s <(awk "{print \$5}" "$tmpdir/fb") "$tmpdir/fb.sent"'
check "fallback: refused once, remembered ($(lanstat "$tmpdir/fb.pub" "gso sends") GSO sends, refused $(lanstat "$tmpdir/fb.pub" "gso refused"))" \
	eval '[ "$(lanstat "$tmpdir/fb.pub" "gso refused")" = 1 ] && [ "$(lanstat "$tmpdir/fb.pub" "gso sends")" = 2 ]'

# --- the kernel refuses a packed GSO send: the packer falls back --------
# The same, for a burst of equal packed datagrams (742 bytes, two 300-byte
# messages each): the first UDP_SEGMENT send of the burst is refused, and
# exactly what did not go is sent again by sendmmsg: every message once,
# none unsent, none twice.
M=2000
for ((i = 1; i <= M; i++)); do printf '%05d%0295d\n' "$i" 0; done >"$tmpdir/pf.sent"
echo first >"$tmpdir/pf.first"
refused_midway pf $((M + 1)) eth0 "$tmpdir/pf.first" "$tmpdir/pf.sent"
check "packed fallback: $M messages after the refusal, each once, in order (exit $r, $(counts "$tmpdir/pf.err"))" \
	eval '[ "$r" = 0 ] && [ "$(counts "$tmpdir/pf.err")" = "$((M + 1)) 0" ] &&
		cmp -s <(awk "{print \$5}" "$tmpdir/pf" | tail -n +2) "$tmpdir/pf.sent"'
check "packed fallback: refused once, no GSO send, none unsent ($(lanstat "$tmpdir/pf.pub" "gso sends") GSO sends, refused $(lanstat "$tmpdir/pf.pub" "gso refused"), unsent $(lanstat "$tmpdir/pf.pub" unsent))" \
	eval '[ "$(lanstat "$tmpdir/pf.pub" "gso refused")" = 1 ] && [ "$(lanstat "$tmpdir/pf.pub" "gso sends")" = 0 ] &&
		[ "$(lanstat "$tmpdir/pf.pub" unsent)" = 0 ]'
check "packed fallback: the subscriber saw no duplicate ($(lanstat "$tmpdir/pf.err" duplicates))" \
	[ "$(lanstat "$tmpdir/pf.err" duplicates)" = 0 ]

# --- a receive buffer that overflows: SO_RXQ_OVFL beside the gaps -------
# b's subscriber runs as nobody, so its buffer is capped at
# net.core.rmem_max (SO_RCVBUFFORCE needs CAP_NET_ADMIN); it is stopped
# while a floods more than that, then resumes; the messages that follow
# carry the kernel's drop count. (pack_us=0: a datagram a message, sent
# alone, so each drop the kernel counts is one message; a GSO send dropped
# whole would count once for all its datagrams.)
rmem=$(cat /proc/sys/net/core/rmem_max)
if [ "$rmem" -gt $((64 << 20)) ]; then
	skip "kernel drops" "net.core.rmem_max is $rmem: a flood past it would take minutes"
else
	N1=$(( rmem / 200 > 20000 ? rmem / 200 : 20000 )) N2=200
	spawn in_ns b setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$KITE" sub -v -s -g --lan eth0 'ovfl.>' >"$tmpdir/ov" 2>"$tmpdir/ov.err"
	psub=$LAST_PID
	wait_for 5 grep -q "subscribed" "$tmpdir/ov.err"
	# (spawn ran a subshell: the subscriber is its child.)
	kpid=$(pgrep -P "$psub" -x kite)
	check "overflow: the subscriber runs as nobody" [ "$(ps -o user= -p "${kpid:-0}")" = nobody ]
	kill -STOP "$kpid"
	body=$(head -c 800 /dev/zero | tr '\0' 'o')
	{ for ((i = 1; i <= N1; i++)); do echo "$body"; done
	  touch "$tmpdir/ov.flooded"
	  wait_for 30 test -e "$tmpdir/ov.go"
	  for ((i = 1; i <= N2; i++)); do echo "after$i"; [ $((i % 20)) = 0 ] && sleep 0.02; done; } |
		in_ns a "$KITE" pub -s --lan eth0,pack_us=0 ovfl.x 2>"$tmpdir/ov.pub" &
	pp=$!
	__pids+=("$pp")
	wait_for 30 test -e "$tmpdir/ov.flooded"
	sleep 1 # (the publisher empties the pipe)
	kill -CONT "$kpid"
	sleep 0.5 # (the subscriber drains its buffer)
	touch "$tmpdir/ov.go"
	wait "$pp"
	wait "$psub"; r=$?
	read -r got lost <<<"$(counts "$tmpdir/ov.err")"
	drops=$(lanstat "$tmpdir/ov.err" "kernel drops")
	check "overflow: received $got + lost $lost = $((N1 + N2)) published (exit $r)" \
		eval '[ "$r" = 0 ] && [ "$((got + lost))" = $((N1 + N2)) ]'
	check "overflow: the kernel's drops counted ($drops) beside the loss ($lost)" \
		eval '[ "${drops:-0}" -gt 0 ] && [ "$lost" -gt 0 ] && [ "$lost" -le "$drops" ] &&
			[ "$drops" -le $((lost + 10)) ]'
	check "overflow: every message after the flood arrived" \
		[ "$(grep -c " after[0-9]*\$" "$tmpdir/ov")" = $N2 ]
	if [ "$rmem" -lt $((8 << 20)) ]; then
		check "overflow: the capped buffer is warned about, naming the sysctl" \
			grep -q "raise net.core.rmem_max" "$tmpdir/ov.err"
	fi
fi
