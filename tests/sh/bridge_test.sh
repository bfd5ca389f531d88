#!/bin/bash
# kite bridge against a real nats-server this test starts on 127.0.0.1 (a
# port the server picks) and stops by pid: two buses bridged through one
# server as two machines would be, identity headers, wildcard mapping both
# ways with a prefix, no echo with '>' both ways, a server killed and
# restarted mid-stream (buffer, counted drops, reconnect), a stopped
# server never blocking a local publisher, a flood that makes the bridge a
# slow consumer, hostile NATS headers, statsd counters, and a NATS client
# (tests/programs/nats_tool, libnats) receiving what `kite pub` sent.
. "$(dirname "$0")/lib.sh"
need nats-server:nats-server
build=$(dirname "$KITE")
BRIDGE=$build/kite-bridge
TOOL=$build/tests/programs/nats_tool
if [ ! -x "$BRIDGE" ] || [ ! -x "$TOOL" ]; then
	skip "$(basename "$0")" "kite-bridge not built (needs libnats-dev, see tests/deps.txt)"
	exit 0
fi
PY=/usr/bin/python3

# --- usage ----------------------------------------------------------------
"$KITE" bridge >/dev/null 2>&1; check "no URL: usage error (100)" [ $? = 100 ]
"$KITE" bridge http://x:1 -e a >/dev/null 2>&1; check "an http:// URL: usage error" [ $? = 100 ]
"$KITE" bridge nats://127.0.0.1:1 >/dev/null 2>&1; check "neither --export nor --import: usage error" [ $? = 100 ]
"$KITE" bridge nats://127.0.0.1:1 -e 'a.>.b' 2>"$tmpdir/u.err" >/dev/null
check "a bad pattern: usage error naming it" bash -c "[ $? = 100 ] && grep -q \"bad export pattern 'a.>.b'\" '$tmpdir/u.err'"
"$KITE" bridge nats://127.0.0.1:1 -e a -p 'x.*' >/dev/null 2>&1; check "a wildcard prefix: usage error" [ $? = 100 ]
"$KITE" bridge nats://127.0.0.1:1 -e a --nkey UABC >/dev/null 2>&1; check "--nkey without --seed: usage error" [ $? = 100 ]
check "kite bridge --help exits 0 and shows the synopsis" \
	bash -c "'$KITE' bridge --help | grep -q '^Usage: kite bridge nats://HOST:PORT'"

# --- a server, and bridges ------------------------------------------------
ns_log=$tmpdir/nats.log
start_server() { # [PORT]: starts nats-server, sets ns_pid and port
	: >"$ns_log"
	spawn nats-server -a 127.0.0.1 -p "${1:--1}" -l "$ns_log"
	ns_pid=$LAST_PID
	wait_for 10 grep -q 'Listening for client connections on' "$ns_log" || return 1
	port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$ns_log" | head -1)
	url=nats://127.0.0.1:$port
}
stop_server() { kill -KILL "$ns_pid"; wait "$ns_pid" 2>/dev/null; }
start_server
check "nats-server listens on 127.0.0.1:$port" [ -n "$port" ]

busA=$KITE_BUS-a busB=$KITE_BUS-b busC=$KITE_BUS-c
bridge() { # NAME BUS ARGS...: a bridge whose stderr goes to $tmpdir/NAME.err
	local name=$1 bus=$2; shift 2
	spawn "$KITE" bridge --bus "$bus" --stats-interval 0 "$url" "$@" 2>"$tmpdir/$name.err"
	eval "${name}_pid=$LAST_PID"
	wait_for 30 grep -q 'kite bridge: ready' "$tmpdir/$name.err"
}
# stop NAME: SIGTERM, wait, and the final counters as shell variables NAME_x
stop_bridge() {
	local name=$1 pid
	eval "pid=\$${name}_pid"
	kill -TERM "$pid"; wait "$pid"
	eval "${name}_rc=$?"
	local line; line=$(grep 'kite bridge: final:' "$tmpdir/$name.err" | tail -1)
	for kv in ${line#*final:}; do eval "${name}_${kv%%=*}=${kv#*=}"; done
}
# Subscribers that run until stopped; listening NAME PID... waits (up to 30 s,
# the machine may be busy) until each says it is subscribed.
kite_sub() { # NAME ARGS...: kite sub -v, stdout in $tmpdir/NAME.out
	local name=$1; shift
	spawn "$KITE" sub --verbose "$@" >"$tmpdir/$name.out" 2>"$tmpdir/$name.sub"
	wait_for 30 grep -q 'kite sub: subscribed' "$tmpdir/$name.sub"
}
nats_sub() { # NAME SUBJECT: nats_tool sub, stdout in $tmpdir/NAME.out
	spawn "$TOOL" sub "$url" "$2" 0 120000 >"$tmpdir/$1.out" 2>"$tmpdir/$1.sub"
	wait_for 30 grep -q ready "$tmpdir/$1.sub"
}
# settle FILE PATTERN...: wait (up to 30 s) until every FILE holds its
# PATTERN, then one more second for anything that should not come (an echo).
settle() {
	while [ $# -ge 2 ]; do wait_for 30 grep -q -- "$2" "$1"; shift 2; done
	sleep 1
}
stop() { kill -TERM "$@" 2>/dev/null; wait "$@" 2>/dev/null; }

check "bridge A (bus a) exports and imports '>'" bridge A "$busA" --export '>' --import '>'
check "bridge B (bus b) exports and imports '>'" bridge B "$busB" --export '>' --import '>'
# The build links jemalloc into kite-bridge where libjemalloc-dev is
# installed (Makefile: libnats frees on another thread; glibc's malloc is
# slow at that), except in the sanitizer build, whose allocator it is.
if ldd "$BRIDGE" | grep -q libasan; then
	skip "kite-bridge runs on jemalloc" "the sanitizer build keeps ASan's allocator"
elif ! pkg-config --exists jemalloc 2>/dev/null; then
	skip "kite-bridge runs on jemalloc" "libjemalloc-dev not installed"
else
	check "kite-bridge runs on jemalloc (libjemalloc-dev is installed)" \
		grep -q 'libjemalloc' "/proc/$A_pid/maps"
	# What matters is libnats's allocations: glibc's dynamic linker says
	# where each of its malloc calls binds.
	check "libnats's malloc binds to jemalloc's, not glibc's" bash -c \
		"LD_DEBUG=bindings '$BRIDGE' --help 2>&1 >/dev/null |
		 grep -q 'binding file [^ ]*libnats[^ ]* .* to [^ ]*libjemalloc[^ ]* .*: normal symbol .malloc.'"
fi

# --- local -> NATS -> local, identity, no echo ----------------------------
nats_sub nats '>'; nsub=$LAST_PID
kite_sub b --bus "$busB" '>'; bsub=$LAST_PID
kite_sub a --bus "$busA" '>'; asub=$LAST_PID
"$KITE" pub --bus "$busA" orders.eu.created '{"id":42}' & pub=$!; wait $pub
settle "$tmpdir/nats.out" id "$tmpdir/b.out" id "$tmpdir/a.out" id
stop $nsub $bsub $asub
line=$(cat "$tmpdir/b.out")
check "bus b gets what bus a published, once" [ "$(wc -l <"$tmpdir/b.out")" = 1 ]
check "... from bridge B (kernel-verified pid), the origin naming kite pub's pid and host" \
	grep -q "^orders.eu.created pid=$B_pid uid=$(id -u) seq=1 origin=nats:orders.eu.created origin-host=$(hostname) origin-pid=$pub origin-uid=$(id -u) origin-seq=1 {\"id\":42}\$" "$tmpdir/b.out"
check "NATS got it once, on the same subject" \
	bash -c "[ \$(wc -l <'$tmpdir/nats.out') = 1 ] && grep -q '^orders.eu.created	.*	{\"id\":42}\$' '$tmpdir/nats.out'"
hdr=$(cut -f2 "$tmpdir/nats.out")
A_id=$(sed -n 's/.*(bridge id \([0-9a-f]\{16\}\)).*/\1/p' "$tmpdir/A.err")
check "NATS header Kite-Id: version 1, bridge A's id, publisher id, seq 1, pid, uid, gid, time, host" \
	grep -qE "^Kite-Id=1 $A_id [0-9a-f]{16} 1 $pub $(id -u) $(id -g) [1-9][0-9]{9,19} $(hostname);\$" <<<"$hdr"
check "bus a sees its own message once, nothing echoed back" \
	bash -c "[ \$(wc -l <'$tmpdir/a.out') = 1 ] && ! grep -q origin= '$tmpdir/a.out'"

# JSON, and a hostile NATS publisher's headers
kite_sub bj --bus "$busB" --json --timeout 60 --count 3 'x.>'; bj=$LAST_PID
"$TOOL" pub "$url" x.json hi "Kite-Id=1 0000000000000001 00000000000000ff 7 12 1000 1000 5 far" X-Other=1
# One lie in the value makes the whole claim "not told"; the 65440-byte
# header fits a header block but not, with the rest, an origin.
"$TOOL" pub "$url" x.liar lie "Kite-Id=1 0000000000000001 00000000000000ff 7 -5 1000 1000 5 far" \
	X-Pad="$(printf 'a%.0s' {1..65440})"
"$TOOL" pub "$url" x.plain plain
wait $bj
check "--json shows the origin object with every claim and the raw headers" \
	grep -qF '"payload":"hi","origin":{"system":"nats","subject":"x.json","host":"far","pid":12,"uid":1000,"publisher":"00000000000000ff","seq":7,"headers":"NATS/1.0\r\n' "$tmpdir/bj.out"
check "a claim with one lie (pid -5) reads as not told, every field" \
	grep -qF '"payload":"lie","origin":{"system":"nats","subject":"x.liar","host":"","pid":-1,"uid":-1,"publisher":"0000000000000000","seq":0,"headers":""}' "$tmpdir/bj.out"
check "a message without headers still has its origin (subject)" \
	grep -qF '"payload":"plain","origin":{"system":"nats","subject":"x.plain","host":"","pid":-1' "$tmpdir/bj.out"
"$TOOL" pub "$url" 'x.a%b' bad
"$TOOL" pub "$url" "$(printf 'x.\033[2J')" bad
sleep 0.3
stop_bridge A; stop_bridge B
check "bridge A exits 0 on SIGTERM" [ "$A_rc" = 0 ]
check "no echo: bridge A imported only what NATS clients sent (3), B exported nothing" \
	bash -c "[ '$A_imported' = 3 ] && [ '$B_exported' = 0 ] && [ '$A_exported' = 1 ]"
check "no echo: neither bridge saw its own exports come back" [ "$A_own_echoes$B_own_echoes" = 00 ]
check "imported messages reach the export side only to be skipped (B: 4 skipped)" [ "$B_relayed_skipped" = 4 ]
check "an origin too big for kite (a 65 KB header) is trimmed, the message still delivered (counted)" [ "$B_origin_trimmed" = 1 ]
check "subjects that are no kite channel (x.a%b, x.ESC[2J) are counted, not imported" \
	bash -c "[ '$B_unmappable' = 2 ] && grep -q \"subject 'x.a%b' is no kite channel\" '$tmpdir/B.err'"
check "... and a control byte in a subject never reaches the terminal" \
	bash -c "grep -qF \"subject 'x.?[2J'\" '$tmpdir/B.err' && ! grep -q \$'\\033' '$tmpdir/B.err'"

# --- wildcards both ways, under a prefix ----------------------------------
check "bridge C: --prefix site1 --export 'orders.*.created' --import 'cmd.>'" \
	bridge C "$busC" --prefix site1 --export 'orders.*.created' --import 'cmd.>' --verbose
nats_sub nc '>'; ncs=$LAST_PID
kite_sub c --bus "$busC" '>'; cs=$LAST_PID
"$KITE" pub --bus "$busC" orders.eu.created one
"$KITE" pub --bus "$busC" orders.eu.deleted two
"$KITE" pub --bus "$busC" orders.eu.created.late three
"$TOOL" pub "$url" site1.cmd.restart.web four
"$TOOL" pub "$url" cmd.restart.web five
"$TOOL" pub "$url" site1.other six
settle "$tmpdir/nc.out" six "$tmpdir/c.out" four
stop $ncs $cs
check "export: orders.eu.created -> NATS site1.orders.eu.created, nothing else of ours" \
	bash -c "[ \"\$(cut -f1,3 '$tmpdir/nc.out' | grep -v -e four -e five -e six)\" = \"\$(printf 'site1.orders.eu.created\tone')\" ]"
check "import: site1.cmd.restart.web -> local cmd.restart.web, nothing else" \
	bash -c "[ \"\$(grep -c origin= '$tmpdir/c.out')\" = 1 ] && grep -q '^cmd.restart.web .*origin=nats:site1.cmd.restart.web .*four\$' '$tmpdir/c.out'"
stop_bridge C

# --- the server killed and restarted mid-stream ---------------------------
# A small buffer: 30 messages of ~500 bytes with their headers cannot all
# wait for the server; what does not fit is dropped and counted, the rest
# arrives once it is back, in order.
check "bridge A again, --buffer 4096" bridge A "$busA" --export 'm.>' --buffer 4096
# m.before reaches the server before it dies (else it would rightly wait
# in the buffer with the rest).
nats_sub mb 'm.>'; mbs=$LAST_PID
"$KITE" pub --bus "$busA" m.before before
wait_for 30 grep -q before "$tmpdir/mb.out"
stop $mbs
stop_server
wait_for 30 grep -q 'disconnected from' "$tmpdir/A.err"
check "the bridge reports the server gone, and its buffer bound" grep -q 'buffering exports up to 4096 bytes' "$tmpdir/A.err"
pad=$(printf 'p%.0s' {1..400})
seq 1 30 | sed "s/\$/ $pad/" | "$KITE" pub --bus "$busA" m.down
sleep 4 # the bridge's reconnect backoff grows meanwhile (to 1.6, then 3.2 s)
# A subscriber that connects the moment the server is back (10 ms retries),
# well before the bridge's next attempt.
spawn "$TOOL" SUB "$url" 'm.>' 0 120000 >"$tmpdir/m.out" 2>/dev/null; ms=$LAST_PID
start_server "$port"
check "the server is back on port $port" [ -n "$port" ]
wait_for 30 grep -q 'connected to .* again' "$tmpdir/A.err"
check "the bridge reconnects by itself" grep -q 'connected to .* again' "$tmpdir/A.err"
sleep 0.5
"$KITE" pub --bus "$busA" m.after after
wait_for 30 grep -q after "$tmpdir/m.out"
kill -TERM $ms; wait $ms 2>/dev/null
stop_bridge A
got=$(grep -c '	m.down	\|^m.down	' "$tmpdir/m.out")
check "some exports were buffered and delivered ($got), some dropped ($A_export_dropped)" \
	bash -c "[ $got -ge 1 ] && [ '$A_export_dropped' -ge 1 ]"
check "buffered + dropped = the 30 published while the server was away" [ $((got + A_export_dropped)) = 30 ]
order=$(cut -f3 "$tmpdir/m.out" | sed 's/ p*$//' | tr '\n' ' ')
check "what was buffered arrives first, in order, then what came after (got: $order)" \
	[ "$order" = "$(seq 1 "$got" | tr '\n' ' ')after " ]
check "the drops were reported on stderr, with the reason" grep -q 'dropped export of m.down' "$tmpdir/A.err"
check "the final counters say so (disconnects, reconnects)" [ "$A_disconnects" -ge 1 -a "$A_reconnects" -ge 1 ]

# --- a stopped server blocks no local publisher ---------------------------
# flood_stopped CHANNEL COUNT PAYLOAD: stop the server, then publish COUNT
# lines "N PAYLOAD" on bus a; how long that took is in ms_taken.
flood_stopped() {
	kill -STOP "$ns_pid"; at_exit "kill -CONT $ns_pid"
	local t0; t0=$(date +%s%N)
	seq 1 "$2" | sed "s/\$/ $3/" | "$KITE" pub --bus "$busA" "$1"
	ms_taken=$(( ($(date +%s%N) - t0) / 1000000 ))
}
# resume_and_stop_bridge_A: the server runs again, A reconnects, A stops.
resume_and_stop_bridge_A() {
	kill -CONT "$ns_pid"
	wait_for 30 grep -q 'connected to .* again' "$tmpdir/A.err"
	check "the bridge reconnects once the server runs again" grep -q 'connected to .* again' "$tmpdir/A.err"
	stop_bridge A
}
check "bridge A again, --ping-interval 1" bridge A "$busA" --export 's.>' --ping-interval 1 --buffer 65536
flood_stopped s.flood 20000 "$pad"
check "20000 local messages published in ${ms_taken} ms while the server is stopped (< 10 s)" [ "$ms_taken" -lt 10000 ]
wait_for 30 grep -q 'disconnected from' "$tmpdir/A.err"
check "unanswered pings turn the stopped server into a disconnect" grep -q 'disconnected from' "$tmpdir/A.err"
resume_and_stop_bridge_A
check "every one of the 20000 is accounted for: exported, dropped or lost before the bridge" \
	[ $((A_exported + A_export_dropped + A_local_lost)) = 20000 ]

# --- a stopped server that never misses a ping in time: the write deadline
# The pings would take 20 minutes to give up; the bridge itself cuts off a
# server that has taken no data for --write-deadline (once the socket
# buffers are full), reconnects, and bounds what waits meanwhile.
check "bridge A again, --ping-interval 600 --write-deadline 1" \
	bridge A "$busA" --export 'w.>' --ping-interval 600 --write-deadline 1 --buffer 65536
# 1.5 MB at a time, paced so that the rings keep up, until the server's
# socket buffers are full and the deadline has passed.
big=$(printf 'b%.0s' {1..3000})
flood_stopped w.flood 500 "$big"; sent=500
while [ $sent -lt 30000 ] && ! grep -q 'took no data' "$tmpdir/A.err"; do
	sleep 0.2
	seq 1 500 | sed "s/\$/ $big/" | "$KITE" pub --bus "$busA" w.flood
	sent=$((sent + 500))
done
wait_for 30 grep -q 'took no data for 1000 ms' "$tmpdir/A.err"
check "a server that takes no data for the write deadline is cut off" grep -q 'took no data for 1000 ms; reconnecting' "$tmpdir/A.err"
check "... and reported as a disconnect" grep -q 'disconnected from' "$tmpdir/A.err"
resume_and_stop_bridge_A
check "every one of the $sent is accounted for ($A_exported exported, $A_export_dropped dropped, $A_local_lost lost)" \
	[ $((A_exported + A_export_dropped + A_local_lost)) = $sent ]
check "... and what did not fit was dropped and counted, not held without bound" [ "$A_export_dropped" -ge 1 ]

# --- a flood makes the bridge a slow consumer -----------------------------
check "bridge B again, --import-pending 1" bridge B "$busB" --import 'f.>' --import-pending 1
"$TOOL" flood "$url" f.flood 100000
wait_for 30 grep -q 'slow consumer' "$tmpdir/B.err"
sleep 0.5
stop_bridge B
check "the slow-consumer notice is on stderr" grep -q 'kite bridge: slow consumer: imports on f.>' "$tmpdir/B.err"
check "imported + dropped by libnats = the 100000 sent ($B_imported + $B_slow_dropped)" \
	bash -c "[ '$B_slow_consumer' -ge 1 ] && [ $((B_imported + B_slow_dropped)) = 100000 ]"

# --- the server down at start; statsd counters ----------------------------
stop_server
spawn "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    sys.stdout.write(s.recv(65536).decode()); sys.stdout.flush()
' >"$tmpdir/statsd.out"
wait_for 30 test -s "$tmpdir/statsd.out"
sport=$(head -1 "$tmpdir/statsd.out")
check "bridge A starts while the server is down" \
	bridge A "$busA" --export 'd.>' --stats-interval 0.3 --statsd "127.0.0.1:$sport"
check "... and says it will retry" grep -q 'is not there yet' "$tmpdir/A.err"
"$KITE" pub --bus "$busA" d.early early
spawn "$TOOL" SUB "$url" 'd.>' 1 60000 >"$tmpdir/d.out" 2>/dev/null; ds=$LAST_PID
start_server "$port"
wait $ds
check "a message published before the server existed arrives once it does" grep -q '	early$' "$tmpdir/d.out"
wait_for 30 grep -q "kite.bridge.exported:1|c" "$tmpdir/statsd.out"
check "statsd gets the counters (kite.bridge.exported:1|c)" grep -q '^kite.bridge.exported:1|c$' "$tmpdir/statsd.out"
stop_bridge A

# --- as nobody: an ordinary handle under the channel policy ---------------
if is_root && command -v setpriv >/dev/null; then
	spawn setpriv --reuid=nobody --regid=nogroup --clear-groups "$BRIDGE" --bus "$busA" \
		--stats-interval 0 "$url" --export 'n.>' 2>"$tmpdir/N.err"; N_pid=$LAST_PID
	wait_for 30 grep -q 'kite bridge: ready' "$tmpdir/N.err"
	spawn "$TOOL" sub "$url" 'n.>' 0 2000 >"$tmpdir/n.out" 2>"$tmpdir/n.err"; nn=$LAST_PID
	wait_for 30 grep -q ready "$tmpdir/n.err"
	"$KITE" pub --bus "$busA" n.secret root-only 2>/dev/null
	wait $nn
	check "a bridge running as nobody gets nothing root publishes (policy)" [ ! -s "$tmpdir/n.out" ]
	stop_bridge N
else
	skip "a bridge running as nobody" "needs root and setpriv"
fi
