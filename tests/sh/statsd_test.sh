#!/bin/bash
# kite statsd end to end: Debian's python3-statsd client sends over UDP,
# Unix datagrams arrive on the abstract name and the path, hostile input
# is counted and survived, /metrics passes promtool and is scraped by a real
# Prometheus server, Graphite lines reach a listener this test runs, SIGHUP
# reloads the config file and SIGTERM flushes what was held. Everything on
# 127.0.0.1, ports picked by the kernel (port 0) or by a bind test.
. "$(dirname "$0")/lib.sh"
need curl:curl prometheus:promtool prometheus:prometheus

PY=/usr/bin/python3 # Debian's python, which has python3-statsd
"$PY" -c "import statsd" 2>/dev/null ||
	{ skip "statsd_test.sh" "needs /usr/bin/python3 with python3-statsd, see tests/deps.txt"; exit 0; }
log=$tmpdir/statsd.log
glog=$tmpdir/graphite.txt
conf=$tmpdir/statsd.conf
sock=$tmpdir/statsd.sock
abstract="kite-test-$$/statsd"

# --help and a bad option
out=$("$KITE" statsd --help); rc=$?
check "statsd --help exits 0 and shows the options" \
	test $rc -eq 0 -a -n "$(grep -e '--flush-interval' <<<"$out")"
"$KITE" statsd --no-such-option 1 2>/dev/null; rc=$?
check "statsd with an unknown option exits 100" test $rc -eq 100
"$KITE" statsd --flush-interval 0 2>/dev/null; rc=$?
check "statsd with a bad value exits 100" test $rc -eq 100

# A Graphite plaintext listener: appends what it receives to $glog.
spawn "$PY" "$(dirname "$0")/graphite_sink.py" "$glog"
wait_for 20 test -s "$glog.port" || { not_ok "graphite listener started"; exit 1; }
gport=$(cat "$glog.port")

cat >"$conf" <<EOF
# kite statsd test configuration
flush_interval = 0.5
percentiles = 50,,90
graphite = 127.0.0.1:$gport
EOF
# An empty list item: the first run refuses. Blanks around items are fine.
timeout 20 "$KITE" statsd --config "$conf" --udp 127.0.0.1:0 --http off --unix off 2>/dev/null; rc=$?
check "a bad config file exits 100" test $rc -eq 100
sed -i 's/^percentiles.*/percentiles = 50, 90 ,99/' "$conf"

spawn "$KITE" statsd --config "$conf" --udp 127.0.0.1:0 --http 127.0.0.1:0 \
	--unix "$abstract" --unix-path "$sock" 2>"$log"
kpid=$LAST_PID
ready() { grep -q 'ready' "$log"; }
if ! wait_for 20 ready; then
	not_ok "statsd starts" "$(cat "$log")"
	exit 1
fi
ok "statsd starts"
uport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$log")
hport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$log")
metrics() { curl -sf --max-time 5 "http://127.0.0.1:$hport/metrics"; }
has() { metrics | grep -qxF -- "$1"; }
has_graphite() { grep -qF -- "$1" "$glog"; }

# Real client: python3-statsd over UDP.
"$PY" - "$uport" <<'EOF'
import sys, statsd
c = statsd.StatsClient("127.0.0.1", int(sys.argv[1]), prefix="e2e")
c.incr("hits", 3)
c.incr("hits", 2)
c.gauge("temp", 40)
c.gauge("temp", 2, delta=True)
for ms in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100):
    c.timing("rt", ms)
c.set("users", "alice")
c.set("users", "bob")
c.set("users", "alice")
with c.pipeline() as p:  # several lines in one packet
    p.incr("piped", 1)
    p.incr("piped", 1)
    p.gauge("piped_level", 7)
EOF
check "python3-statsd counter at /metrics" wait_for 20 has "e2e_hits_total 5"
check "python3-statsd gauge with delta at /metrics" wait_for 20 has "e2e_temp 42"
check "python3-statsd timer p90 (nearest rank, seconds)" \
	wait_for 20 has 'e2e_rt{quantile="0.9"} 0.09'
check "python3-statsd timer count" wait_for 20 has "e2e_rt_count 10"
check "pipelined packet: several lines" wait_for 20 has "e2e_piped_total 2"
check "graphite: counter count" wait_for 20 has_graphite "stats.counters.e2e.hits.count 5 "
check "graphite: gauge" wait_for 20 has_graphite "stats.gauges.e2e.temp 42 "
check "graphite: set unique count" wait_for 20 has_graphite "stats.sets.e2e.users.count 2 "
check "graphite: timer upper_50 (statsd's name)" wait_for 20 has_graphite "stats.timers.e2e.rt.upper_50 50 "
check "graphite: timer upper" wait_for 20 has_graphite "stats.timers.e2e.rt.upper 100 "
check "graphite: timer median" wait_for 20 has_graphite "stats.timers.e2e.rt.median 55 "
check "graphite: timer count_90, sum_90" \
	bash -c "grep -qF 'stats.timers.e2e.rt.count_90 9 ' '$glog' && grep -qF 'stats.timers.e2e.rt.sum_90 450 ' '$glog'"

# Every flush is published on the kite channel stats.flush (Graphite lines).
"$KITE" sub --count 1 --timeout 20 stats.flush >"$tmpdir/chan.out" 2>"$tmpdir/chan.err"; rc=$?
check "a flush arrives on the kite channel stats.flush" test $rc -eq 0
check "it comes from the collector's pid, as the kernel says" \
	grep -Eq "^stats\.flush pid=$kpid uid=$(id -u) seq=[0-9]+ " "$tmpdir/chan.out"
check "it carries the flush's Graphite lines" grep -qF "stats.gauges.e2e.temp 42 " "$tmpdir/chan.out"
check "published flushes are counted at /metrics" \
	bash -c "curl -sf 'http://127.0.0.1:$hport/metrics' | grep -Eq '^kite_statsd_channel_messages_total [1-9]'"

# Tags, sample rates and Unix datagrams (abstract name and path).
"$PY" - "$abstract" "$sock" "$uport" <<'EOF'
import socket, sys
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.sendto(b"ux.abstract:4|c|#env:test,region:eu\n", "\0" + sys.argv[1])
u.sendto(b"ux.path:6|c\n", sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"sampled:1|c|@0.25\n", ("127.0.0.1", int(sys.argv[3])))
EOF
check "abstract Unix datagram with tags -> labels" \
	wait_for 20 has 'ux_abstract_total{env="test",region="eu"} 4'
check "Unix datagram at a path" wait_for 20 has "ux_path_total 6"
check "sample rate scales the counter" wait_for 20 has "sampled_total 4"

# Hostile input: each bad line counted, the rest of its packet used, the
# collector alive. 64 KiB UDP, garbage, a huge tag list, a too-big Unix
# datagram (truncated, skipped whole, counted).
"$PY" - "$uport" "$sock" <<'EOF'
import os, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
dst = ("127.0.0.1", port)
s.sendto(b"x" * 65507, dst)
s.sendto(os.urandom(4096), dst)
s.sendto(b"\x00\xff\n|||\n:::\nbad:1|zz\nhostile.ok:1|c\n", dst)
tags = ",".join("k%d:v" % i for i in range(5000)).encode()
s.sendto(b"tagged:1|c|#" + tags + b"\nhostile.ok:1|c\n", dst)
s.sendto(b"m:" + b"9" * 60000 + b"|ms\n", dst)
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
u.sendto(b"y" * 100000, sys.argv[2])
EOF
check "good lines among hostile ones still count" wait_for 20 has "hostile_ok_total 2"
bad_total() { metrics | awk '/^kite_statsd_bad_lines_total/ {s += $2} END {print s + 0}'; }
bad_ge() { [ "$(bad_total)" -ge "$1" ]; }
check "hostile lines counted as bad" wait_for 20 bad_ge 7
check "oversized Unix datagram counted as truncated" \
	wait_for 20 has "kite_statsd_packets_truncated_total 1"
check "statsd survived the hostile input" kill -0 "$kpid"

# promtool on the whole exposition (user metrics, tags, summaries, health).
metrics >"$tmpdir/metrics.txt"
if promtool check metrics <"$tmpdir/metrics.txt" >"$tmpdir/promtool.out" 2>&1; then
	ok "promtool check metrics passes"
else
	not_ok "promtool check metrics passes" "$(head -c 300 "$tmpdir/promtool.out")"
fi

# A real Prometheus server scrapes /metrics; its query API returns the values.
# It scrapes a second collector too, whose timers are histograms (buckets
# every 0.1 s to 1 s).
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 0.5 --timer-histogram 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1 \
	2>"$tmpdir/hist.log"
wait_for 20 grep -q ready "$tmpdir/hist.log"
huport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/hist.log")
hhport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/hist.log")
. "$(dirname "$0")/prom_lib.sh"
prom_start "127.0.0.1:$hport" "127.0.0.1:$hhport"
check "prometheus server ready" kill -0 "$ppid"
# A set's figure is per interval: keep sending its members while scraping.
spawn "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(600):
    s.sendto(b"e2e.users:alice|s\ne2e.users:bob|s\n", ("127.0.0.1", int(sys.argv[1])))
    time.sleep(0.1)
' "$uport"
setpid=$LAST_PID
check "prometheus: counter scraped" wait_for 45 query_is 'e2e_hits_total' 5
check "prometheus: gauge scraped" wait_for 20 query_is 'e2e_temp' 42
check "prometheus: tags are labels" wait_for 20 query_is 'ux_abstract_total{env="test"}' 4
check "prometheus: summary quantile" wait_for 20 query_is 'e2e_rt{quantile="0.5"}' 0.05
check "prometheus: set unique count" wait_for 20 query_is 'max_over_time(e2e_users[5m])' 2
kill "$setpid" 2>/dev/null

# Timers as histograms: rounds of a uniform spread (1, 6, ..., 996 ms)
# across several scrapes; histogram_quantile over rate() interpolates
# within the bucket (0.9, 1]: 0.95 s for the 0.95 quantile, and the
# buckets never went down.
"$PY" - "$huport" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for r in range(6):
    lines = [b"h.lat:%d|ms" % v for v in range(1, 1000, 5)]
    for i in range(0, len(lines), 20):
        s.sendto(b"\n".join(lines[i:i + 20]), ("127.0.0.1", int(sys.argv[1])))
    time.sleep(1.1)
EOF
query_near() { # PROMQL WANT TOLERANCE
	local got; got=$(query "$1")
	[ -n "$got" ] && awk -v g="$got" -v w="$2" -v t="$3" 'BEGIN {d = g - w; exit !(d <= t && -d <= t)}'
}
check "prometheus: the histogram's count is every sample" wait_for 20 query_is 'h_lat_count' 1200
check "prometheus: histogram_quantile(0.95) of a timer histogram is 0.95 s" \
	wait_for 20 query_near 'histogram_quantile(0.95, sum by (le) (rate(h_lat_bucket[1m])))' 0.95 0.01
check "prometheus: histogram_quantile(0.5) is 0.5 s" \
	query_near 'histogram_quantile(0.5, sum by (le) (h_lat_bucket))' 0.5 0.01
check "prometheus: histogram buckets never reset" \
	query_is 'sum(resets(h_lat_bucket[5m]))' 0

# A counter never goes down: decrements are refused and counted, so a real
# Prometheus sees no reset while a client sends +5 and -3 by turns across
# its scrapes (it saw one per decrement when they were summed in).
"$PY" - "$uport" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(8):
    s.sendto(b"mono.q:5|c" if i % 2 == 0 else b"mono.q:-3|c", ("127.0.0.1", int(sys.argv[1])))
    time.sleep(1.2)
EOF
query_ge() { [ "$(query "$1" | cut -d. -f1)" -ge "$2" ] 2>/dev/null; }
check "prometheus: the counter was scraped through the decrements" \
	wait_for 20 query_ge 'count_over_time(mono_q_total[5m])' 6
check "prometheus: resets() == 0 under decrements" query_is 'resets(mono_q_total[5m])' 0
check "prometheus: the counter holds only the increments" wait_for 20 query_is 'mono_q_total' 20
check "decrements counted as bad lines (negative)" \
	wait_for 20 has 'kite_statsd_bad_lines_total{reason="negative"} 4'

# SIGHUP: the config file is read again (new Graphite prefix).
echo "graphite_prefix = reloaded" >>"$conf"
kill -HUP "$kpid"
check "SIGHUP reload: new Graphite prefix" \
	wait_for 20 has_graphite "reloaded.counters.e2e.hits.count 0 "
check "SIGHUP reload counted" wait_for 20 has "kite_statsd_reloads_total 1"

# SIGTERM flushes what it holds: with an hour between flushes, values sent
# just before SIGTERM still reach Graphite.
echo "flush_interval = 3600" >>"$conf"
kill -HUP "$kpid"
wait_for 20 has "kite_statsd_reloads_total 2"
"$PY" - "$uport" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"final.count:1|c\nfinal.gauge:%d|g\nfinal.rt:%d|ms\n" % (i, i), ("127.0.0.1", int(sys.argv[1])))
EOF
kill -TERM "$kpid"
gone() { ! kill -0 "$kpid" 2>/dev/null; }
wait_for 20 gone
wait "$kpid"; rc=$?
check "SIGTERM: exits 0" test $rc -eq 0
check "SIGTERM: counter flushed" wait_for 20 has_graphite "reloaded.counters.final.count.count 100 "
check "SIGTERM: gauge flushed" wait_for 20 has_graphite "reloaded.gauges.final.gauge 99 "
check "SIGTERM: timer flushed" wait_for 20 has_graphite "reloaded.timers.final.rt.count 100 "
# The last interval was cut short (seconds, not the hour): its rate is per
# second of what it lasted.
final_rate() {
	awk '$1 == "reloaded.counters.final.count.rate" && $2 >= 3 {f = 1} END {exit !f}' "$glog"
}
check "SIGTERM: the cut interval's rate is per second of what it lasted" wait_for 20 final_rate
check "SIGTERM: the Unix socket file is removed" test ! -e "$sock"

# Kernel drops (SO_RXQ_OVFL): a stopped collector with a tiny receive buffer
# overflows; the count arrives with the next datagram queued after the drops.
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --rcvbuf 4096 \
	--flush-interval 0.5 2>"$tmpdir/drops.log"
dpid=$LAST_PID
dready() { grep -q 'ready' "$tmpdir/drops.log"; }
if wait_for 20 dready; then
	duport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/drops.log")
	dhport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/drops.log")
	kill -STOP "$dpid"
	"$PY" - "$duport" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(500):
    s.sendto(b"flood:1|c\n" * 20, ("127.0.0.1", int(sys.argv[1])))
PYEOF
	kill -CONT "$dpid"
	"$PY" -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"after:1|c\n", ("127.0.0.1", int(sys.argv[1])))' "$duport"
	drops_seen() {
		curl -sf --max-time 5 "http://127.0.0.1:$dhport/metrics" |
			awk '$1 == "kite_statsd_kernel_drops_total" && $2 > 0 {f = 1} END {exit !f}'
	}
	check "kernel drops counted (SO_RXQ_OVFL)" wait_for 20 drops_seen
	# every datagram is either read (20 lines) or counted as dropped
	accounted() {
		curl -sf --max-time 5 "http://127.0.0.1:$dhport/metrics" | awk '
			$1 == "kite_statsd_kernel_drops_total" {d = $2}
			$1 == "kite_statsd_lines_received_total" {l = $2}
			END {exit !(l + 20 * d == 500 * 20 + 1)}'
	}
	check "every flooded datagram read or counted as a kernel drop" wait_for 20 accounted
else
	not_ok "kernel drops counted (SO_RXQ_OVFL)" "second collector did not start"
fi

# --unix-path never removes what is not a stale socket of its own.
echo "precious" >"$tmpdir/not-a-socket"
timeout 20 "$KITE" statsd --udp off --http off --unix off --channel off \
	--unix-path "$tmpdir/not-a-socket" 2>"$tmpdir/np.log"; rc=$?
check "--unix-path on a regular file: refuses to start" test $rc -ne 0
check "--unix-path on a regular file: the file is untouched" grep -qx precious "$tmpdir/not-a-socket"

# /metrics is streamed: chunked to an HTTP/1.1 client (so a cut page is
# seen as cut), ended by the close for an HTTP/1.0 one; both whole pages.
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 60 2>"$tmpdir/page.log"
if wait_for 20 grep -q ready "$tmpdir/page.log"; then
	pport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/page.log")
	curl -sf --max-time 5 -D "$tmpdir/h11" "http://127.0.0.1:$pport/metrics" >"$tmpdir/page1"
	curl -sf --max-time 5 --http1.0 -D "$tmpdir/h10" "http://127.0.0.1:$pport/metrics" >"$tmpdir/page2"
	check "an HTTP/1.1 scrape is chunked" grep -qi '^transfer-encoding: chunked' "$tmpdir/h11"
	check "an HTTP/1.0 scrape is not chunked" bash -c "! grep -qi '^transfer-encoding' '$tmpdir/h10'"
	check "both pages are whole (the last health line ends them)" \
		bash -c "tail -n1 '$tmpdir/page1' | grep -q 'reason=\"negative\"' &&
			 tail -n1 '$tmpdir/page2' | grep -q 'reason=\"negative\"'"
else
	not_ok "an HTTP/1.1 scrape is chunked" "collector did not start"
	not_ok "an HTTP/1.0 scrape is not chunked" "collector did not start"
	not_ok "both pages are whole (the last health line ends them)" "collector did not start"
fi

# A second collector needs only its own --udp and --http: the default
# abstract --unix name, taken (here held by this test, or by any other
# collector), is skipped with a note; a name asked for must be had.
spawn "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.bind("\0kite/statsd")
except OSError:
    pass  # held by someone else: taken all the same
open(sys.argv[1], "w").write("held")
time.sleep(600)
' "$tmpdir/held"
holder=$LAST_PID
wait_for 20 test -s "$tmpdir/held"
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --channel off 2>"$tmpdir/second.log"
spid=$LAST_PID
check "a second collector with only --udp and --http starts" wait_for 20 grep -q "ready, flushing" "$tmpdir/second.log"
check "it says the default Unix name is taken" grep -q "unix @kite/statsd is taken" "$tmpdir/second.log"
kill "$spid" 2>/dev/null
timeout 20 "$KITE" statsd --udp 127.0.0.1:0 --http off --channel off --unix kite/statsd 2>/dev/null; rc=$?
check "a Unix name given and taken: exits 111" test $rc -eq 111
kill "$holder" 2>/dev/null

# Idle HTTP connections cannot lock a scraper out: 100 silent connections
# (more than the 64 slots), then a scrape that must be answered.
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	2>"$tmpdir/idle.log"
if wait_for 20 grep -q ready "$tmpdir/idle.log"; then
	iport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/idle.log")
	spawn "$PY" -c '
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(100)]
open(sys.argv[2], "w").write("open")
time.sleep(600)
' "$iport" "$tmpdir/idle.open"
	wait_for 20 test -s "$tmpdir/idle.open"
	sleep 0.5 # the collector accepts them all
	check "100 idle HTTP connections: a scrape is still answered" \
		bash -c "curl -sf --max-time 5 'http://127.0.0.1:$iport/metrics' | grep -q '^kite_statsd_http_refused_total [1-9]'"
else
	not_ok "100 idle HTTP connections: a scrape is still answered" "collector did not start"
fi

# contrib/kite-statsd.service starts on a fresh install (no config file),
# with the documented defaults; run in a network namespace of its own so
# the default ports and names are free.
if unshare -rn true 2>/dev/null; then
	cmd=$(sed -n 's/^ExecStart=//p' "$(dirname "$0")/../../contrib/kite-statsd.service")
	cmd=${cmd//\/usr\/local\/bin\/kite/$KITE}
	cmd=${cmd//\/etc\/kite\/statsd.conf/$tmpdir/absent.conf}
	# exec all the way down, so the pid spawn keeps is the collector's
	spawn unshare -rn sh -c 'ip link set lo up && exec sh -c "exec $1"' _ "$cmd" \
		2>"$tmpdir/service.log"
	svcpid=$LAST_PID
	check "the service's command starts without a config file" \
		wait_for 20 grep -q "ready, flushing" "$tmpdir/service.log"
	check "... on the documented defaults" \
		bash -c "grep -q 'udp 127.0.0.1:8125' '$tmpdir/service.log' && grep -q 'http 127.0.0.1:9102' '$tmpdir/service.log'"
	check "... as the process the service manager started" \
		bash -c "[ \"\$(readlink /proc/$svcpid/exe)\" = \"\$(readlink -f '$KITE')\" ]"
else
	skip "the service's command starts without a config file" "unshare -rn not permitted"
fi

# A full table heals: with --max-metrics 5, five names fill it; once they
# are idle for --expire they go (counted) and five new names are taken.
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 0.2 --max-metrics 5 --expire 2 --expire-gauges 2 2>"$tmpdir/expire.log"
if wait_for 20 grep -q "ready, flushing" "$tmpdir/expire.log"; then
	eu=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/expire.log")
	eh=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/expire.log")
	send_names() { # PREFIX
		"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"".join(b"%s%d:1|g\n" % (sys.argv[2].encode(), i) for i in range(5)), ("127.0.0.1", int(sys.argv[1])))' "$eu" "$1"
	}
	emetrics() { curl -sf --max-time 5 "http://127.0.0.1:$eh/metrics"; }
	send_names old
	wait_for 20 bash -c "curl -sf 'http://127.0.0.1:$eh/metrics' | grep -qx 'old4 1'"
	send_names early # the table is full: refused, counted
	check "a full table refuses new names (counted)" \
		wait_for 10 bash -c "curl -sf 'http://127.0.0.1:$eh/metrics' | grep -qx 'kite_statsd_metrics_refused_total 5'"
	gone() { ! emetrics | grep -q '^old'; }
	check "idle series expire" wait_for 20 gone
	check "expired series are counted" \
		bash -c "curl -sf 'http://127.0.0.1:$eh/metrics' | grep -qx 'kite_statsd_series_expired_total 5'"
	send_names new
	check "after expiry the table takes new names" \
		wait_for 20 bash -c "curl -sf 'http://127.0.0.1:$eh/metrics' | grep -qx 'new4 1'"
else
	not_ok "a full table refuses new names (counted)" "collector did not start"
fi

# kite_statsd_datagram_wait_max_seconds measures how long datagrams waited
# to be read: a datagram sent to a collector stopped (SIGSTOP) and resumed
# 0.6 s later shows that wait (the kernel's arrival time counts, though the
# socket was empty when the collector stopped). Before, the figure is small.
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 1 2>"$tmpdir/wait.log"
wpid=$LAST_PID
if wait_for 20 grep -q ready "$tmpdir/wait.log"; then
	wu=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/wait.log")
	wh=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/wait.log")
	waited() { curl -sf --max-time 5 "http://127.0.0.1:$wh/metrics" |
		awk '$1 == "kite_statsd_datagram_wait_max_seconds" {print $2}'; }
	echo "w:1|c" >/dev/udp/127.0.0.1/"$wu"
	wait_for 10 bash -c "curl -sf 'http://127.0.0.1:$wh/metrics' | grep -q '^w_total'"
	before=$(waited)
	check "datagrams waited little while the collector ran (${before}s)" \
		awk -v w="$before" 'BEGIN { exit !(w != "" && w < 0.5) }'
	kill -STOP "$wpid"
	sleep 0.2
	echo "w:1|c" >/dev/udp/127.0.0.1/"$wu" # arrives at a stopped reader
	sleep 0.6
	kill -CONT "$wpid"
	after=$(waited)
	check "a stopped collector shows the wait of a datagram it left unread (${after}s)" \
		awk -v w="$after" 'BEGIN { exit !(w >= 0.55 && w < 5) }'
else
	not_ok "datagram wait figure" "collector did not start"
fi
