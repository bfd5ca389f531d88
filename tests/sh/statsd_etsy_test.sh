#!/bin/bash
# kite statsd beside Etsy statsd 0.9 (npm package `statsd`, run with node)
# on one corpus: both push Graphite to listeners this test runs, every path
# and value of the flush that holds the corpus is compared, and every
# difference must be one kite-statsd(1) documents (the percentile rank:
# ceil where statsd rounds; counter decrements refused). Run twice: statsd's
# default layout is legacyNamespace, kite's is not; each is compared in
# both. The statsd package is the benchmark's (`make bench BENCH=statsd`
# installs it into $KITE_BENCH_CACHE, /var/cache/kite-bench); without it or
# node this test skips. Everything on 127.0.0.1.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
CACHE=${KITE_BENCH_CACHE:-/var/cache/kite-bench}
STATSD_JS=$CACHE/node_modules/statsd/stats.js
if [ ! -f "$STATSD_JS" ] || ! command -v node >/dev/null; then
	skip "kite statsd and Etsy statsd agree" "no $STATSD_JS or no node (make bench BENCH=statsd installs it)"
	exit 0
fi

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Graphite listener: every connection's bytes appended to $1; its port in $1.port.
cat >"$tmpdir/graphite.py" <<'EOF'
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
out = open(sys.argv[1], "ab", buffering=0); lock = threading.Lock()
open(sys.argv[1] + ".port", "w").write(str(srv.getsockname()[1]))
def serve(c):
    while True:
        b = c.recv(1 << 16)
        if not b: return
        with lock: out.write(b)
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# The corpus: what a statsd user sends (no DogStatsD tags: statsd 0.9 has
# none), with the lines that show the documented differences.
cat >"$tmpdir/corpus.py" <<'EOF'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(b): s.sendto(b, ("127.0.0.1", port))
for _ in range(3): send(b"c.simple:1|c")
send(b"c.sampled:1|c|@0.1")
send(b"c.float:2.5|c")
send(b"c.neg:5|c"); send(b"c.neg:-2|c")            # kite refuses the decrement
send(b"ab.x:1|c"); send(b"ab_x:2|c"); send(b"ab-x:3|c")
send(b"clean me/now!:4|c")
send(b"m.a:1|c\r\nm.b:2|c\nm.c:3|g\n")              # several lines, CRLF
send(b"g.set:42|g")
send(b"g.delta:10|g"); send(b"g.delta:+5|g"); send(b"g.delta:-3|g")
send(b"g.fresh:+7|g")
for u in (b"alice", b"bob", b"alice"): send(b"s.users:" + u + b"|s")
for v in range(10, 101, 10): send(b"t.ten:%d|ms" % v)
for v in (3, 1, 7, 5, 2, 6, 4): send(b"t.seven:%d|ms" % v)   # p90: rank 7 (ceil) vs 6 (round)
send(b"t.sampled:5|ms|@0.5"); send(b"t.sampled:15|ms|@0.5")
send(b"t.one:42|ms")
send(b"t.frac:0.5|ms\nt.frac:1.25|ms\nt.frac:2|ms\nt.frac:1000.125|ms")
EOF

cat >"$tmpdir/compare.py" <<'EOF'
import math, re, sys
def flush_of(path, marker):
    """The lines of the flush after the first one (that flush holds the
    corpus): the group of lines with the second marker's timestamp."""
    lines = [l.split() for l in open(path, errors="replace").read().splitlines()]
    lines = [l for l in lines if len(l) == 3]
    marks = [l[2] for l in lines if l[0] == marker]
    ts = marks[1]
    return {l[0]: float(l[1]) for l in lines if l[2] == ts}
kite = flush_of(sys.argv[1], sys.argv[3])
etsy = flush_of(sys.argv[2], sys.argv[4])
own = re.compile(r"(^|\.)(statsd|kite_statsd)\.")
kite = {p: v for p, v in kite.items() if not own.search(p)}
etsy = {p: v for p, v in etsy.items() if not own.search(p)}
samples = {"t.ten": 10, "t.seven": 7, "t.sampled": 2, "t.one": 1, "t.frac": 4}
def documented(p):
    # the percentile rank: kite ceil(p/100*n), statsd round(p/100*n)
    m = re.search(r"\.timers\.([^;]+)\.(count|mean|upper|sum|sum_squares)_(\d+)$", p)
    if m and m.group(1) in samples:
        n, pct = samples[m.group(1)], int(m.group(3))
        x = pct / 100 * n
        if math.ceil(x - 1e-9) != math.floor(x + 0.5):
            return "percentile rank (ceil vs round)"
    if re.search(r"(^|\.)c\.neg(\.|$)", p):
        return "counter decrement refused"
    return None
bad, doc = [], []
for p in sorted(set(kite) | set(etsy)):
    k, e = kite.get(p), etsy.get(p)
    same = k is not None and e is not None and (k == e or abs(k - e) <= 1e-12 * max(abs(k), abs(e)))
    if same:
        continue
    why = documented(p)
    (doc if why else bad).append("%s kite=%s statsd=%s%s" % (p, k, e, " (" + why + ")" if why else ""))
print("# %d paths compared (kite %d, statsd %d)" % (len(set(kite) | set(etsy)), len(kite), len(etsy)))
for d in doc: print("# documented difference: " + d)
for b in bad: print("# UNDOCUMENTED difference: " + b)
print("ok" if not bad and len(etsy) > 50 else "not ok")
EOF

# run_pair LAYOUT: kite and statsd side by side, each sent the corpus just
# after one of its flushes; compares the next flush.
run_pair() {
	local legacy=$1 g1=$tmpdir/kite.$1 g2=$tmpdir/etsy.$1
	spawn "$PY" "$tmpdir/graphite.py" "$g1"; spawn "$PY" "$tmpdir/graphite.py" "$g2"
	wait_for 20 test -s "$g1.port" && wait_for 20 test -s "$g2.port" || return 1
	local ku eu kmark emark prefix=stats
	ku=$(free_port); eu=$(free_port)
	local kopt=(--graphite-legacy-namespace off) ejs=false
	if [ "$legacy" = legacy ]; then kopt=(--graphite-legacy-namespace on); ejs=true; fi
	spawn "$KITE" statsd --udp "127.0.0.1:$ku" --http off --unix off --channel off \
		--graphite "127.0.0.1:$(cat "$g1.port")" --flush-interval 2 --percentiles 50,90,99 \
		"${kopt[@]}" 2>"$tmpdir/kite.log"
	cat >"$tmpdir/etsy.js" <<EOF
{ port: $eu, address: "127.0.0.1", mgmt_port: $(free_port), mgmt_address: "127.0.0.1",
  flushInterval: 2000, percentThreshold: [50, 90, 99],
  graphiteHost: "127.0.0.1", graphitePort: $(cat "$g2.port"),
  graphite: { legacyNamespace: $ejs }, backends: ["./backends/graphite"] }
EOF
	(cd "$(dirname "$STATSD_JS")" && exec node stats.js "$tmpdir/etsy.js") >"$tmpdir/etsy.log" 2>&1 &
	__pids+=("$!")
	kmark="$prefix.kite_statsd.series" emark="$prefix.statsd.numStats"
	[ "$legacy" = legacy ] && emark="statsd.numStats" # legacy: no prefix
	flushes() { grep -c "^$1 " "$2" 2>/dev/null; }
	at_least() { [ "$(flushes "$1" "$2")" -ge "$3" ]; }
	wait_for 30 at_least "$kmark" "$g1" 1 || { echo "# kite did not flush"; return 1; }
	"$PY" "$tmpdir/corpus.py" "$ku"
	wait_for 30 at_least "$emark" "$g2" 1 || { echo "# statsd did not flush: $(tail -3 "$tmpdir/etsy.log")"; return 1; }
	"$PY" "$tmpdir/corpus.py" "$eu"
	wait_for 30 at_least "$kmark" "$g1" 2 && wait_for 30 at_least "$emark" "$g2" 2 || return 1
	"$PY" "$tmpdir/compare.py" "$g1" "$g2" "$kmark" "$emark" >"$tmpdir/compare.$legacy"
	grep '^#' "$tmpdir/compare.$legacy"
	[ "$(tail -1 "$tmpdir/compare.$legacy")" = ok ]
}
check "kite and statsd agree on every Graphite path and value (statsd's non-legacy layout)" run_pair plain
check "kite and statsd agree on every Graphite path and value (legacyNamespace)" run_pair legacy
