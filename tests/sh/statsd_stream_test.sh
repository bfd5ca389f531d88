#!/bin/bash
# kite statsd streams /metrics from the table: a scrape of a large table
# read slowly spans several flushes while datagrams keep coming (new names
# among them) and the big names go idle past --expire-gauges. The page must
# still be whole (chunked, ended), promtool-clean, every family's HELP and
# TYPE once, no series twice, every big name on it (expiry waits for the
# scrape), and ingest must go on meanwhile: a counter born during the
# scrape is on the page with every marker sent. After the scrape the idle
# names expire; and the kite channel gets a large flush in parts. Timing
# margins are wide: the page is read for several seconds, the idle limit
# is two.
. "$(dirname "$0")/lib.sh"
need curl:curl prometheus:promtool

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
wait "$reader" 2>/dev/null
check "the slow scrape got a whole chunked page" grep -qx yes "$tmpdir/page.txt.ended"
promtool check metrics <"$tmpdir/page.txt" >"$tmpdir/promtool.out" 2>&1; rc=$?
check "promtool accepts the page" bash -c "[ $rc -eq 0 -o $rc -eq 3 ] && ! grep -qi error '$tmpdir/promtool.out'"
check "each family's HELP and TYPE once" \
	bash -c "[ -z \"\$(grep -E '^# (HELP|TYPE) ' '$tmpdir/page.txt' | awk '{print \$2, \$3}' | sort | uniq -d)\" ]"
check "no series twice" \
	bash -c "[ -z \"\$(grep -v '^#' '$tmpdir/page.txt' | sed 's/ [^ ]*\$//' | sort | uniq -d)\" ]"
check "every big series on the page (expiry waited for the scrape)" \
	test "$(grep -c '^big_g' "$tmpdir/page.txt")" = "$BIG"
flushes=$(figure kite_statsd_flushes_total "$tmpdir/page.txt")
check "the scrape spanned flushes ($flushes_at_start -> $flushes)" \
	test "$((flushes - ${flushes_at_start:-0}))" -ge 3
# mark.n is a family born during the scrape, so last on the page: its total
# there is what was read and flushed while the page was being written.
marks=$(figure mark_n_total "$tmpdir/page.txt")
check "ingest went on during the scrape (${marks:-no} of $((sent / 2)) markers on the page)" \
	test "${marks:-0}" = "$((sent / 2))"
expired() {
	curl -sf --max-time 20 "http://127.0.0.1:$hport/metrics" >"$tmpdir/after.txt" &&
		[ "$(figure kite_statsd_series_expired_total "$tmpdir/after.txt")" -ge "$BIG" ]
}
check "after the scrape the idle series expire" wait_for 20 expired
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
