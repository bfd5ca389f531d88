#!/bin/bash
# kite statsd streams /metrics from the table: a scrape of a large table
# read slowly spans several flushes while datagrams keep coming (new names
# among them) and the big names go idle past --expire-gauges. The page must
# still be whole (chunked, ended), promtool-clean, every family's HELP and
# TYPE once, no series twice; expiry does not wait for the scrape (the idle
# names go while it is still open, and are then missing from the rest of
# its page), and ingest goes on meanwhile: a counter sent during the slow
# scrape is seen whole by quick scrapes beside it. A reader slower than
# the 10 s of a scrape timeout but steady gets the whole page; a reader
# that stalls is cut off (its page has no last chunk); 64 slow readers
# cannot lock a scraper out. And the kite channel gets a large flush in
# parts. Timing margins are wide: the page is read for several seconds,
# the idle limit is two.
# Then a counter sent during the sliced sweeps of a large table, and
# SIGTERM: every sample in the Graphite pushes once.
. "$(dirname "$0")/lib.sh"
need curl:curl prometheus:promtool iproute2:ss

PY=/usr/bin/python3
BIG=${BIG:-200000}
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 0.2 --expire-gauges 2 --expire 2 2>"$tmpdir/statsd.log"
kpid=$LAST_PID
if ! wait_for 20 grep -q ready "$tmpdir/statsd.log"; then
	not_ok "statsd starts" "$(cat "$tmpdir/statsd.log")"
	exit 1
fi
uport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/statsd.log")
hport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/statsd.log")

figure() { # NAME FILE: the value of an unlabelled sample
	awk -v n="$1" '$1 == n {print $2; exit}' "$2"
}

# The big table: BIG gauges, paced so the kernel drops none, sent again
# and again (so none is idle) until the slow scrape has begun.
cat >"$tmpdir/big.py" <<'PYEOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    for i in range(0, n, 20):
        s.sendto(b"\n".join(b"big.g%06d:%d|g" % (k, k) for k in range(i, min(n, i + 20))),
                 ("127.0.0.1", port))
        if i % 2000 == 0:
            time.sleep(0.002)
PYEOF
spawn "$PY" "$tmpdir/big.py" "$uport" "$BIG"
big=$LAST_PID
page_has_all() {
	curl -sf --max-time 20 "http://127.0.0.1:$hport/metrics" >"$tmpdir/before.txt" &&
		[ "$(figure kite_statsd_series "$tmpdir/before.txt")" = "$BIG" ] &&
		[ "$(grep -c '^big_g' "$tmpdir/before.txt")" = "$BIG" ]
}
check "the collector holds $BIG series" wait_for 60 page_has_all

# Readers of the whole page, slow on purpose (the big names are kept alive
# meanwhile, so the page stays this size):
#   steady RATE: takes the page at RATE bytes/s, more than 10 s in all;
#   stall: takes 64 KiB, stops reading for 22 s (a stop is seen 10 to 20 s
#          after it), then reads what is left;
#   hold N RATE SECS: N connections each read at RATE for SECS, then go.
# Each writes "ended=yes|no seconds=S bytes=B" (ended: the final chunk came).
cat >"$tmpdir/slowread.py" <<'PYEOF'
import select, socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
def conn():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: kite\r\n\r\n")
    return s
def report(raw, t0):
    ended = raw.endswith(b"\r\n0\r\n\r\n")
    print("ended=%s seconds=%.1f bytes=%d" % ("yes" if ended else "no", time.time() - t0, len(raw)))
t0 = time.time()
if mode == "steady":
    rate, s, raw = float(sys.argv[3]), conn(), bytearray()
    while True:
        b = s.recv(8192)
        if not b:
            break
        raw += b
        ahead = len(raw) / rate - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    report(bytes(raw), t0)
elif mode == "stall":
    s, raw = conn(), bytearray()
    while len(raw) < 65536:
        raw += s.recv(65536)
    time.sleep(22)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
    except ConnectionResetError:
        pass
    report(bytes(raw), t0)
else:
    n, rate, secs = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    socks = [conn() for _ in range(n)]
    got = dict((x, 0) for x in socks)
    while time.time() - t0 < secs and socks:
        r, _, _ = select.select(socks, [], [], 0.1)
        for x in r:
            if got[x] > rate * (time.time() - t0):
                continue
            b = x.recv(4096)
            got[x] += len(b)
            if not b:
                socks.remove(x)
        time.sleep(0.01)
    print("open=%d of %d after %.0f s" % (len(socks), n, secs))
PYEOF
size=$(wc -c <"$tmpdir/before.txt")
spawn "$PY" "$tmpdir/slowread.py" steady "$hport" "$((size / 14))" >"$tmpdir/steady.out"
steady=$LAST_PID
spawn "$PY" "$tmpdir/slowread.py" stall "$hport" >"$tmpdir/stall.out"
stall=$LAST_PID
# 62 more slow readers (20 KB/s each, well above the progress rule).
spawn "$PY" "$tmpdir/slowread.py" hold "$hport" 62 20000 60 >"$tmpdir/hold.out"
hold=$LAST_PID
wait "$steady" "$stall" 2>/dev/null
sed "s/^/# steady reader: /" "$tmpdir/steady.out"
sed "s/^/# stalled reader: /" "$tmpdir/stall.out"
check "a steady reader slower than 10 s a page gets it whole" \
	bash -c "grep -Eq '^ended=yes seconds=(1[1-9]|[2-9][0-9])' '$tmpdir/steady.out'"
check "a reader that stalls is cut off, its page unended" grep -q '^ended=no' "$tmpdir/stall.out"
# More fill every slot with slow answers; a scrape still gets in, in the
# place of the oldest of them (past 10 s), which is counted refused.
curl -sf --max-time 10 "http://127.0.0.1:$hport/metrics" >"$tmpdir/pre.txt"
refused=$(figure kite_statsd_http_refused_total "$tmpdir/pre.txt")
conns() { ss -Htn state established "( sport = :$hport )" | wc -l; }
spawn "$PY" "$tmpdir/slowread.py" hold "$hport" "$((64 - $(conns)))" 20000 60 >"$tmpdir/hold2.out"
hold2=$LAST_PID
wait_for 5 test "$(conns)" -ge 64
echo "# connections: $(conns)"
curl -sf --max-time 10 "http://127.0.0.1:$hport/metrics" >"$tmpdir/during.txt"
check "a scrape gets in while 64 slow readers hold every slot" \
	test "$(grep -c '^big_g' "$tmpdir/during.txt")" = "$BIG"
kill "$hold" "$hold2"; wait "$hold" "$hold2" 2>/dev/null
check "... in the place of the oldest slow reader" \
	test "$(figure kite_statsd_http_refused_total "$tmpdir/during.txt")" = "$((refused + 1))"

# The slow scrape (a 32 KiB receive buffer read every 10 ms) and, while
# it runs, a second of datagrams: a marker counter and new names.
cat >"$tmpdir/reader.py" <<'PYEOF'
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: kite\r\n\r\n")
parts = []
while True:
    b = s.recv(65536)
    if not b:
        break
    parts.append(b)
    time.sleep(0.01)
raw = b"".join(parts)
head, _, body = raw.partition(b"\r\n\r\n")
page, ended = b"", False
while body:
    line, _, rest = body.partition(b"\r\n")
    size = int(line, 16)
    if size == 0:
        ended = True
        break
    page += rest[:size]
    body = rest[size + 2:]
open(sys.argv[2], "wb").write(page)
open(sys.argv[2] + ".ended", "w").write("yes\n" if ended and b"chunked" in head.lower() else "no\n")
PYEOF
spawn "$PY" "$tmpdir/reader.py" "$hport" "$tmpdir/page.txt"
reader=$LAST_PID
sleep 0.3 # the walk has begun: from now on the big names go idle
kill "$big"; wait "$big" 2>/dev/null
flushes_at_start=$(curl -sf --max-time 20 "http://127.0.0.1:$hport/metrics" | tail -n 60 |
	awk '$1 == "kite_statsd_flushes_total" {print $2}')
echo "mark.n:0|c" >/dev/udp/127.0.0.1/"$uport"
sent=$("$PY" - "$uport" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lines = 0
for i in range(50):
    s.sendto(b"mark.n:1|c\nnew.n%02d:1|c" % i, ("127.0.0.1", int(sys.argv[1])))
    lines += 2
    time.sleep(0.02)
print(lines)
PYEOF
)
# While the slow scrape is still open: the markers are all counted, and
# the big names (idle past 2 s) expire.
marks_seen() {
	curl -sf --max-time 20 "http://127.0.0.1:$hport/metrics" >"$tmpdir/quick.txt" &&
		[ "$(figure mark_n_total "$tmpdir/quick.txt")" = "$((sent / 2))" ]
}
check "ingest went on during the scrape ($((sent / 2)) markers)" wait_for 5 marks_seen
expired_early() {
	kill -0 "$reader" 2>/dev/null &&
		curl -sf --max-time 20 "http://127.0.0.1:$hport/metrics" >"$tmpdir/early.txt" &&
		[ "$(figure kite_statsd_series_expired_total "$tmpdir/early.txt")" -ge "$BIG" ]
}
check "the idle names expire while the slow scrape is still open" wait_for 10 expired_early
wait "$reader" 2>/dev/null
check "the slow scrape got a whole chunked page" grep -qx yes "$tmpdir/page.txt.ended"
promtool check metrics <"$tmpdir/page.txt" >"$tmpdir/promtool.out" 2>&1; rc=$?
check "promtool accepts the page" bash -c "[ $rc -eq 0 -o $rc -eq 3 ] && ! grep -qi error '$tmpdir/promtool.out'"
check "each family's HELP and TYPE once" \
	bash -c "[ -z \"\$(grep -E '^# (HELP|TYPE) ' '$tmpdir/page.txt' | awk '{print \$2, \$3}' | sort | uniq -d)\" ]"
check "no series twice" \
	bash -c "[ -z \"\$(grep -v '^#' '$tmpdir/page.txt' | sed 's/ [^ ]*\$//' | sort | uniq -d)\" ]"
on_page=$(grep -c '^big_g' "$tmpdir/page.txt")
check "the big names that expired first are not on the rest of the page ($on_page of $BIG)" \
	test "$on_page" -gt 0 -a "$on_page" -lt "$BIG"
flushes=$(figure kite_statsd_flushes_total "$tmpdir/page.txt")
check "the scrape spanned flushes ($flushes_at_start -> $flushes)" \
	test "$((flushes - ${flushes_at_start:-0}))" -ge 3
check "the collector survived" kill -0 "$kpid"

# The channel gets a large flush in parts of whole lines (about 1 MiB
# each, every line of one flush, each series once). 30,000 counters make
# some 2.5 MB of lines a flush.
chan="stats.streamtest.$$"
spawn "$KITE" sub --json --timeout 60 "$chan" >"$tmpdir/chan.json" 2>"$tmpdir/chan.err"
subpid=$LAST_PID
spawn "$KITE" statsd --udp 127.0.0.1:0 --http off --unix off --channel "$chan" \
	--flush-interval 1 2>"$tmpdir/chan.log"
wait_for 20 grep -q ready "$tmpdir/chan.log"
cport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/chan.log")
"$PY" - "$cport" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for r in range(6): # six intervals in a row, all names each time
    for i in range(0, 30000, 20):
        s.sendto(b"\n".join(b"ch.n%05d:1|c" % k for k in range(i, i + 20)), ("127.0.0.1", int(sys.argv[1])))
        if i % 2000 == 0:
            time.sleep(0.002)
    time.sleep(1)
PYEOF
sleep 3
kill "$subpid" 2>/dev/null; wait "$subpid" 2>/dev/null
"$PY" - "$tmpdir/chan.json" >"$tmpdir/chan.check" <<'PYEOF'
import collections, json, sys
flushes = collections.OrderedDict()
bad = 0
for line in open(sys.argv[1]):
    m = json.loads(line)
    p = m["payload"]
    lines = p.rstrip("\n").split("\n")
    if not lines or any(len(l.split(" ")) != 3 for l in lines):
        bad += 1
        continue
    flushes.setdefault(lines[0].split(" ")[2], []).append((len(p), lines))
full = 0
for ts, msgs in flushes.items():
    names = collections.Counter(l.split(" ")[0] for _, ls in msgs for l in ls)
    counts = [n for n in names if n.startswith("stats.counters.ch.n") and n.endswith(".count")]
    if len(counts) == 30000 and all(names[n] == 1 for n in names) and len(msgs) > 1 \
            and max(size for size, _ in msgs) < (1 << 20) + 4096 \
            and all(l.split(" ")[2] == ts for _, ls in msgs for l in ls):
        full += 1
print("messages=%d flushes=%d whole_split_flushes=%d bad=%d" %
      (sum(len(v) for v in flushes.values()), len(flushes), full, bad))
PYEOF
sed "s/^/# /" "$tmpdir/chan.check"
sed "s/^/# kite sub: /" "$tmpdir/chan.err" | head -5 # losses, if the machine is that busy
check "a large flush arrives in parts of whole lines, each series once" \
	grep -Eq 'whole_split_flushes=[1-9].* bad=0$' "$tmpdir/chan.check"

# Samples during sliced sweeps, then SIGTERM: 60,000 names make each flush
# (every 0.2 s) a sweep of several loop turns; a counter sent 1000 times
# over some ten flushes, the last just before SIGTERM, must total 1000 in
# the Graphite pushes (each sample in one interval, the cut-short last one
# pushed at exit), and its timer's sample count as well.
glog=$tmpdir/sweep.graphite
spawn "$PY" "$(dirname "$0")/graphite_sink.py" "$glog"
if wait_for 20 test -s "$glog.port"; then
	spawn "$KITE" statsd --udp 127.0.0.1:0 --http off --unix off --channel off \
		--flush-interval 0.2 --graphite "127.0.0.1:$(cat "$glog.port")" \
		2>"$tmpdir/sweep.log"
	spid=$LAST_PID
	wait_for 20 grep -q ready "$tmpdir/sweep.log"
	sport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/sweep.log")
	"$PY" - "$sport" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = ("127.0.0.1", int(sys.argv[1]))
for i in range(0, 60000, 30):
    s.sendto(b"\n".join(b"fill.c%05d:1|c" % k for k in range(i, i + 30)), to)
    if i % 3000 == 0:
        time.sleep(0.005)
time.sleep(0.5)
for i in range(1000):
    s.sendto(b"sweep.hot:1|c\nsweep.hot:3|ms", to)
    time.sleep(0.002)
PYEOF
	kill -TERM "$spid"
	wait_for 30 bash -c "! kill -0 $spid 2>/dev/null"
	counted=$(awk '$1 == "stats.counters.sweep.hot.count" {s += $2} END {print s + 0}' "$glog")
	timed=$(awk '$1 == "stats.timers.sweep.hot.count" {s += $2} END {print s + 0}' "$glog")
	pushes=$(grep -c '^stats.counters.fill.c00000.count ' "$glog")
	echo "# sweep.hot: counted $counted, timer samples $timed, in $pushes pushes"
	check "a counter sent 1000 times during sliced sweeps, then SIGTERM, totals 1000" \
		test "$counted" = 1000 -a "$timed" = 1000
	check "... over several flushes" test "$pushes" -ge 5
else
	not_ok "graphite listener for the sweep attack started"
fi
