#!/bin/bash
# lan_bench.sh — LAN channels between two namespace hosts this script
# creates (a veth pair; nothing leaves them; removed at exit): kite's LAN
# (UDP multicast, packing on) against ZeroMQ PUB/SUB over tcp:// between the
# same hosts and against bare UDP floors (sendmmsg/recvmmsg, one message a
# datagram; and the same with UDP_SEGMENT sends and UDP_GRO reads). Messages
# per second from the subscriber's first to its last message, publisher CPU
# per message, and
# loss at that rate (the publisher sends as fast as it can). Then repair:
# kite with repair=1 at both ends, 5 % of datagrams dropped at the
# subscriber's host (nftables numgen), the publisher paced at a moderate
# rate: the rate reached, what stayed unrecovered, what was repaired.
# Needs root.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
: "${BENCH_BIN:?BENCH_BIN must name the bench program folder}"
peer=$BENCH_BIN/lan_peer_zmq
[ -x "$peer" ] || { echo "lan: $peer missing" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "lan: needs root for network namespaces (skipped)"; exit 0; }

if [ -n "${QUICK:-}" ]; then n64=300000 n1k=100000 n64k=3000
else n64=1000000 n1k=300000 n64k=10000; fi
cases=("64:$n64" "1024:$n1k" "65536:$n64k")
# LAN_SIZES="64 1024": only those sizes (while working on one).
if [ -n "${LAN_SIZES:-}" ]; then
	keep=()
	for c in "${cases[@]}"; do [[ " $LAN_SIZES " == *" ${c%%:*} "* ]] && keep+=("$c"); done
	cases=("${keep[@]}")
fi
transports=(kite zmq udp udp-gso)

P=klb$$
FP=${P}f fan_hosts="p s1 s2 s3"
__lan_cleanup() {
	local h
	for h in a b; do ip netns del ${P}$h 2>/dev/null; done
	for h in $fan_hosts br; do ip netns del ${FP}$h 2>/dev/null; done
}
trap '__lan_cleanup; __bench_cleanup' EXIT
ip netns add ${P}a && ip netns add ${P}b || exit 1
ip -n ${P}a link add eth0 type veth peer name eth0 netns ${P}b
ip -n ${P}a addr add 10.78.0.1/24 dev eth0
ip -n ${P}b addr add 10.78.0.2/24 dev eth0
for h in a b; do ip -n ${P}$h link set lo up; ip -n ${P}$h link set eth0 up; done

declare -A R # "case|transport|figure" -> values
med() { stats $1 | awk '{printf "%.0f\n", $1}'; }
one_run() { # transport size count
	local t=$1 size=$2 count=$3 sub pub
	bench_tmpdir || return 1
	case $t in
	kite) sub=(kite-sub eth0 "$count"); pub=(kite-pub eth0 "$size" "$count");;
	kite-paced) sub=(kite-sub eth0 "$count"); pub=(kite-pub eth0 "$size" "$count" "$PACE");;
	kite-repair) sub=(kite-sub eth0,repair=1 "$count")
		pub=(kite-pub eth0,repair=1 "$size" "$count" "${REPAIR_RATE[$size]}");;
	zmq) sub=(zmq-sub tcp://10.78.0.1:7491 "$count"); pub=(zmq-pub tcp://10.78.0.1:7491 "$size" "$count");;
	udp) sub=(udp-sub eth0 "$count" "$size"); pub=(udp-pub eth0 "$size" "$count" 0);;
	udp-gso) sub=(udp-sub eth0 "$count" "$size"); pub=(udp-pub eth0 "$size" "$count" 1);;
	esac
	ip netns exec ${P}b $(pin 1) "$peer" "${sub[@]}" >"$BENCH_TMP/sub" 2>&1 &
	local sp=$!
	local i
	for i in $(seq 100); do grep -qs ready "$BENCH_TMP/sub" && break; sleep 0.05; done
	timeout 60 ip netns exec ${P}a $(pin 0) "$peer" "${pub[@]}" >"$BENCH_TMP/pub" 2>&1
	wait "$sp"
	local got lost el cpu sent
	read -r _ got _ lost _ el <<<"$(grep '^received' "$BENCH_TMP/sub")"
	read -r _ sent _ cpu <<<"$(grep '^sent' "$BENCH_TMP/pub")"
	[ -n "${got:-}" ] && [ -n "${el:-}" ] && [ "${el:-0}" -gt 0 ] || { echo "lan: $t $size failed: $(cat "$BENCH_TMP/sub" "$BENCH_TMP/pub" | head -3)" >&2; return 1; }
	R["$size|$t|rate"]+="$(awk -v g="$got" -v e="$el" 'BEGIN { printf "%.0f", g * 1e9 / e }') "
	R["$size|$t|loss"]+="$(awk -v l="$lost" -v s="$sent" 'BEGIN { printf "%.2f", s ? 100 * l / s : 0 }') "
	R["$size|$t|cpu"]+="$(awk -v c="$cpu" -v s="$sent" 'BEGIN { printf "%.3f", s ? c / s / 1000 : 0 }') "
	R["$size|$t|lost"]+="$lost "
	R["$size|$t|repaired"]+="$(sed -n 's/^repaired \([0-9]*\).*/\1/p' "$BENCH_TMP/sub" | grep . || echo 0) "
	[ -n "${LAN_VERBOSE:-}" ] && cat "$BENCH_TMP/sub" "$BENCH_TMP/pub" >&2
}

# Repair: moderate rates (messages a second) and counts (3 s of each).
declare -A REPAIR_RATE=([64]=50000 [1024]=20000 [65536]=50)
repair_cases=("64:150000" "1024:60000" "65536:150")
loss_on() {
	ip netns exec ${P}b nft -f - <<'NFT'
table inet kite_bench_loss {
	chain in { type filter hook input priority 0; udp dport 7475 numgen random mod 100 < 5 drop; }
}
NFT
}
loss_off() { ip netns exec ${P}b nft delete table inet kite_bench_loss 2>/dev/null; }

# LAN_REPAIR_ONLY=1: only the repair rows (no zero-loss search, no fan-out).
[ -n "${LAN_REPAIR_ONLY:-}" ] && cases=()
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for c in "${cases[@]}"; do
		for t in "${transports[@]}"; do
			progress "lan run $rep/$BENCH_REPS: $t ${c%%:*} B"
			one_run "$t" "${c%%:*}" "${c#*:}"
		done
	done
done

# Zero loss: the highest paced rate at which kite's subscriber reported no
# loss at all, by bisection between nothing and the unpaced rate (a probe
# is one run of about a second, 20,000 messages at least; ZL_STEPS
# probes). A run that loses nothing unpaced needs no search.
ZL_STEPS=${ZL_STEPS:-6}
declare -A ZL # "size" -> "rate-at-subscriber paced-at probes"
last() { awk '{print $NF}' <<<"$1"; }
zero_loss_search() { # size
	local s=$1 lo=0 hi best=0 paced=0 probes=0 mid n
	hi=$(med "${R["$s|kite|rate"]:-0}")
	[ "$hi" -gt 0 ] || return 0
	if [ "$(stats ${R["$s|kite|lost"]} | awk '{print $3}')" = 0 ]; then
		ZL[$s]="$hi unpaced 0"
		return 0
	fi
	for ((i = 0; i < ZL_STEPS; i++)); do
		mid=$(( (lo + hi) / 2 ))
		n=$(( mid < 20000 ? 20000 : mid ))
		progress "lan zero-loss search $s B: paced at $mid/s"
		local before=${R["$s|kite-paced|lost"]:-}
		PACE=$mid one_run kite-paced "$s" "$n"
		# (A run that failed recorded nothing: as good as a loss.)
		[ "${R["$s|kite-paced|lost"]:-}" != "$before" ] || { hi=$mid; continue; }
		probes=$((probes + 1))
		if [ "$(last "${R["$s|kite-paced|lost"]}")" = 0 ]; then
			lo=$mid; best=$(last "${R["$s|kite-paced|rate"]}"); paced=$mid
		else
			hi=$mid
		fi
	done
	ZL[$s]="$best $paced $probes"
}
if [ ${#cases[@]} -gt 0 ]; then
	for s in 64 1024; do zero_loss_search "$s"; done
fi

if command -v nft >/dev/null; then
	loss_on || exit 1
	for ((rep = 1; rep <= BENCH_REPS; rep++)); do
		for c in "${repair_cases[@]}"; do
			progress "lan run $rep/$BENCH_REPS: kite-repair ${c%%:*} B, 5 % loss"
			one_run kite-repair "${c%%:*}" "${c#*:}"
		done
	done
	loss_off
fi

echo
echo "LAN: two namespace hosts on a veth pair; median [min..max] of $BENCH_REPS runs"
table_cols 8 9 26 18 16
table_row size transport "msgs/s" "loss %" "pub CPU us/msg"
table_rule
for c in "${cases[@]}"; do
	s=${c%%:*}
	for t in "${transports[@]}"; do
		[ -n "${R["$s|$t|rate"]:-}" ] || continue
		table_row "$s" "$t" "$(cell fmt_si ${R["$s|$t|rate"]})" \
			"$(cell fmt_pct ${R["$s|$t|loss"]})" "$(cell fmt_us ${R["$s|$t|cpu"]})"
	done
done
echo
if [ ${#cases[@]} -gt 0 ]; then
k64=$(med "${R["64|kite|rate"]:-0}"); z64=$(med "${R["64|zmq|rate"]:-0}")
zl_line() { # size: the zero-loss rate found, labelled
	local r p n
	read -r r p n <<<"${ZL[$1]:-0 - 0}"
	if [ "$p" = unpaced ]; then echo "$(fmt_si "$r") (unpaced, no run lost any)"
	elif [ "$r" -gt 0 ]; then echo "$(fmt_si "$r") (paced at $(fmt_si "$p")/s, highest of $n probes without loss)"
	else echo "none found ($n probes all lost some)"; fi
}
zl_rate() { read -r r _ <<<"${ZL[$1]:-0}"; echo "${r:-0}"; }
echo "64 B unpaced: kite $(fmt_si "$k64") with $(fmt_pct "$(med "${R["64|kite|loss"]:-100}")") loss, ZeroMQ $(fmt_si "$z64") (2x: $(fmt_si "$(awk -v z="$z64" 'BEGIN{print 2 * z}')"))"
echo "64 B at zero loss: kite $(zl_line 64)"
echo "64 B: kite at zero loss >= 2x ZeroMQ: $(verdict "$(awk -v a="$(zl_rate 64)" -v b="$z64" 'BEGIN{print (b ? a / b : 0)}')" ge 2)"
for s in 1024 65536; do
	[ -n "${R["$s|kite|rate"]:-}" ] || continue # not run (LAN_SIZES)
	k=$(med "${R["$s|kite|rate"]:-0}"); z=$(med "${R["$s|zmq|rate"]:-0}")
	u=$(med "${R["$s|udp|rate"]:-0}"); g=$(med "${R["$s|udp-gso|rate"]:-0}")
	best=$(awk -v u="$u" -v g="$g" 'BEGIN{print (u > g ? u : g)}')
	need=$(awk -v z="$z" -v b="$best" 'BEGIN{x = b / 1.5; print (z < x ? z : x)}')
	echo "$s B: kite >= min(ZeroMQ, best UDP floor / 1.5) = $(fmt_si "$need"): $(verdict "$k" ge "$need") ($(fmt_si "$k") unpaced, $(fmt_pct "$(med "${R["$s|kite|loss"]:-100}")") loss)"
	[ "$s" = 1024 ] &&
		echo "$s B at zero loss: kite $(zl_line "$s"): $(verdict "$(zl_rate "$s")" ge "$need")"
done
fi
if [ -n "${R["64|kite-repair|rate"]:-}" ]; then
	echo
	echo "LAN repair: repair=1 at both ends, 5 % of datagrams dropped at the subscriber,"
	echo "publisher paced; median [min..max] of $BENCH_REPS runs"
	table_cols 8 14 26 18 18
	table_row size "paced at/s" "msgs/s" unrecovered repaired
	table_rule
	for c in "${repair_cases[@]}"; do
		s=${c%%:*}
		table_row "$s" "${REPAIR_RATE[$s]}" "$(cell fmt_si ${R["$s|kite-repair|rate"]})" \
			"$(cell echo ${R["$s|kite-repair|lost"]})" "$(cell echo ${R["$s|kite-repair|repaired"]})"
	done
	worst=0
	for c in "${repair_cases[@]}"; do
		for v in ${R["${c%%:*}|kite-repair|lost"]}; do [ "$v" -gt "$worst" ] && worst=$v; done
	done
	echo "repair at 5 % loss: 0 unrecovered in every run: $(verdict "$worst" le 0) (worst run $worst)"
fi

# (LAN_REPAIR_ONLY=1: not this either.)
if [ ${#cases[@]} -gt 0 ]; then
# Fan-out: four namespace hosts on a bridge (p publishes; s1..s3
# subscribe), 64 B messages unpaced, with one subscriber host and with
# three: the publisher's CPU per message (ZeroMQ's once its I/O thread has
# sent everything), for kite (multicast: one send, the bridge copies) and
# ZeroMQ (one tcp stream a subscriber).
ip netns add ${FP}br && ip -n ${FP}br link set lo up &&
	ip -n ${FP}br link add br0 type bridge mcast_snooping 0 && ip -n ${FP}br link set br0 up || exit 1
i=1
for h in $fan_hosts; do
	ip netns add ${FP}$h && ip -n ${FP}$h link set lo up || exit 1
	ip -n ${FP}$h link add eth0 type veth peer name p$h netns ${FP}br
	ip -n ${FP}br link set p$h master br0 up
	ip -n ${FP}$h addr add 10.78.1.$i/24 dev eth0
	ip -n ${FP}$h link set eth0 up
	i=$((i + 1))
done
declare -A F # "transport|subs|figure" -> values
fan_run() { # transport subs count
	local t=$1 n=$2 count=$3 sub pub j
	bench_tmpdir || return 1
	case $t in
	kite) sub=(kite-sub eth0 "$count"); pub=(kite-pub eth0 64 "$count");;
	zmq) sub=(zmq-sub tcp://10.78.1.1:7491 "$count"); pub=(zmq-pub tcp://10.78.1.1:7491 64 "$count");;
	esac
	local sps=()
	for ((j = 1; j <= n; j++)); do
		ip netns exec ${FP}s$j $(pin 1) "$peer" "${sub[@]}" >"$BENCH_TMP/sub$j" 2>&1 &
		sps+=($!)
	done
	for ((j = 1; j <= n; j++)); do
		for i in $(seq 100); do grep -qs ready "$BENCH_TMP/sub$j" && break; sleep 0.05; done
	done
	timeout 90 ip netns exec ${FP}p $(pin 0) "$peer" "${pub[@]}" >"$BENCH_TMP/pub" 2>&1
	wait "${sps[@]}"
	local sent cpu lost=0 l
	read -r _ sent _ cpu <<<"$(grep '^sent' "$BENCH_TMP/pub")"
	[ -n "${cpu:-}" ] || { echo "lan: fan-out $t x$n failed: $(head -3 "$BENCH_TMP/pub")" >&2; return 1; }
	for ((j = 1; j <= n; j++)); do
		read -r _ _ _ l _ <<<"$(grep '^received' "$BENCH_TMP/sub$j")"
		lost=$((lost + ${l:-$count}))
	done
	F["$t|$n|cpu"]+="$(awk -v c="$cpu" -v s="$sent" 'BEGIN { printf "%.3f", c / s / 1000 }') "
	F["$t|$n|loss"]+="$(awk -v l="$lost" -v s="$sent" -v n="$n" 'BEGIN { printf "%.2f", 100 * l / (s * n) }') "
}
for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for t in kite zmq; do
		for n in 1 3; do
			progress "lan fan-out run $rep/$BENCH_REPS: $t, $n subscriber host(s)"
			fan_run "$t" "$n" "$n64"
		done
	done
done
echo
echo "LAN fan-out: 64 B, one publisher host and 1 or 3 subscriber hosts on a bridge;"
echo "median [min..max] of $BENCH_REPS runs (loss: all subscribers together)"
table_cols 10 6 22 16
table_row transport subs "pub CPU us/msg" "loss %"
table_rule
for t in kite zmq; do
	for n in 1 3; do
		[ -n "${F["$t|$n|cpu"]:-}" ] || continue
		table_row "$t" "$n" "$(cell fmt_us ${F["$t|$n|cpu"]})" "$(cell fmt_pct ${F["$t|$n|loss"]})"
	done
done
fan_ratio() { awk -v a="$(stats ${F["$1|3|cpu"]:-0} | awk '{print $1}')" \
	-v b="$(stats ${F["$1|1|cpu"]:-0} | awk '{print $1}')" 'BEGIN { print (b ? a / b : 0) }'; }
echo "3 subscriber hosts vs 1, publisher CPU per message: kite $(fmt_x "$(fan_ratio kite)"), ZeroMQ $(fmt_x "$(fan_ratio zmq)")"
echo "kite's publisher CPU per message with 3 hosts no higher than with 1: $(verdict "$(fan_ratio kite)" le 1)"
fi
