#!/bin/bash
# kite statsd's /metrics against promtool, for any input: thousands of
# random statsd names and DogStatsD tag sets, built to collide (a timer
# beside a gauge NAME.count, NAME beside NAME.total, names that differ only
# in '.', '_', '-' or bytes that are not ASCII, reserved label names,
# UTF-8 and broken UTF-8 in values, quotes and backslashes), sent in rounds;
# after every round's flush the whole page goes through
# `promtool check metrics`, from a collector with timers as summaries and
# one with timers as histograms (--timer-histogram on). A parse error fails (exit 1); lint advice about
# the users' own names (camelCase, a gauge named *_count) is not the
# collector's to fix and is allowed (exit 3).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
command -v promtool >/dev/null || { skip "promtool pages" "promtool not installed (Debian package prometheus)"; exit 0; }

spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 0.2 --percentiles "50,99.9" 2>"$tmpdir/statsd.log"
spawn "$KITE" statsd --udp 127.0.0.1:0 --http 127.0.0.1:0 --unix off --channel off \
	--flush-interval 0.2 --timer-histogram on 2>"$tmpdir/hist.log"
for log in statsd hist; do
	if ! wait_for 20 grep -q ready "$tmpdir/$log.log"; then
		not_ok "statsd starts" "$(cat "$tmpdir/$log.log")"
		exit 1
	fi
done
uport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/statsd.log")
hport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/statsd.log")
huport=$(sed -n 's/^kite statsd: udp 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/hist.log")
hhport=$(sed -n 's/^kite statsd: http 127.0.0.1:\([0-9]*\)$/\1/p' "$tmpdir/hist.log")

ROUNDS=${ROUNDS:-12}
LINES=${LINES:-400}
fails=0 pages=0 families=0
for round in $(seq "$ROUNDS"); do
	"$PY" - "$uport,$huport" "$round" "$LINES" <<'EOF'
import random, socket, sys
ports, seed, n = [int(p) for p in sys.argv[1].split(",")], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
bases = ["db.query", "db_query", "db-query", "api.req", "Api.Req", "web", "x",
         "caf\u00e9", "caf\u00e8", "9lives", "a b", "a/b", "_", "kite_statsd_lines_received",
         "m:n", "\u00fc.\u00f6", "q.total", "q"]
suffixes = ["", ".count", ".sum", "_count", "_sum", ".total", "_total", ".bucket",
            "-count", ".quantile", " count"]
kinds = ["c", "g", "s", "ms", "h", "d"]
keys = ["env", "quantile", "tag_quantile", "tag_tag_quantile", "le", "__name__",
        "tag__name__", "9k", "k.v", "k-v", "caf\u00e9", "route", "a"]
vals = ["prod", "caf\u00e9", "caf\u00e8", "a\"b", "c\\d", "\u00ff", "x y", "1",
        "\U0001F600", "", "=", ","]
def randname():
    if rnd.random() < 0.6:
        return rnd.choice(bases) + rnd.choice(suffixes)
    alphabet = "abcXYZ019._-/ \u00e9\u00fc:"
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12)))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    kind = rnd.choice(kinds)
    value = rnd.choice(["1", "2.5", "-1", "+3", "0"]) if kind != "s" else rnd.choice(["u1", "u2"])
    line = ("%s:%s|%s" % (randname(), value, kind)).encode()
    if rnd.random() < 0.5:
        tags = ",".join("%s:%s" % (rnd.choice(keys), rnd.choice(vals))
                        for _ in range(rnd.randint(1, 4)))
        raw = tags.encode()
        if rnd.random() < 0.2:
            raw += rnd.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"])
        line += b"|#" + raw
    for port in ports:
        s.sendto(line, ("127.0.0.1", port))
EOF
	sleep 0.6 # a flush (0.2 s) or more
	for port in $hhport $hport; do # the summaries' page last: checked below
		curl -sf --max-time 10 "http://127.0.0.1:$port/metrics" >"$tmpdir/page.txt"
		promtool check metrics <"$tmpdir/page.txt" >"$tmpdir/promtool.out" 2>&1; rc=$?
		pages=$((pages + 1))
		if [ $rc -ne 0 ] && [ $rc -ne 3 ] || grep -qi "error" "$tmpdir/promtool.out"; then
			fails=$((fails + 1))
			cp "$tmpdir/page.txt" "$tmpdir/failed.txt"
			echo "# round $round, port $port: promtool exit $rc: $(grep -i error "$tmpdir/promtool.out" | head -c 300)"
		fi
	done
	[ "$round" = 1 ] && curl -sf --max-time 10 "http://127.0.0.1:$hhport/metrics" >"$tmpdir/hist.txt"
done
check "the histogram collector's pages hold histograms" grep -q '^# TYPE .* histogram$' "$tmpdir/hist.txt"
families=$(grep -c '^# TYPE' "$tmpdir/page.txt")
check "promtool accepts all $pages pages ($families families in the last)" test $fails -eq 0
check "name collisions were there and counted" \
	bash -c "awk '\$1 == \"kite_statsd_prometheus_name_conflicts_total\" && \$2 > 10 {f = 1} END {exit !f}' '$tmpdir/page.txt'"
utf8_values_apart() {
	grep -qF "=\"caf"$'\xc3\xa9'"\"" "$tmpdir/page.txt" &&
		grep -qF "=\"caf"$'\xc3\xa8'"\"" "$tmpdir/page.txt"
}
check "UTF-8 label values kept (café and cafè apart)" utf8_values_apart
