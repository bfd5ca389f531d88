# shellcheck shell=bash
# Sourced (after lib.sh) by tests that have a real Prometheus server scrape
# a /metrics page: statsd_test.sh, top_test.sh. Needs $PY (a python3).
#
# prom_start TARGET...: a Prometheus scraping each TARGET (HOST:PORT, one
# job each: kite, kite2, ...) every second,
# on a free port ($pport; its pid $ppid), killed at exit. Its port is picked
# free by a bind test; if another process takes it first, Prometheus exits
# and another port is tried. Then `check "..." kill -0 "$ppid"`.
prom_start() {
	{
		printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n'
		local n=1 target job
		for target in "$@"; do
			job=kite
			[ "$n" -gt 1 ] && job=kite$n
			printf "  - job_name: %s\n    static_configs:\n      - targets: ['%s']\n" \
				"$job" "$target"
			n=$((n + 1))
		done
	} >"$tmpdir/prometheus.yml"
	local attempt
	for attempt in 1 2 3; do
		pport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		spawn prometheus --config.file="$tmpdir/prometheus.yml" \
			--storage.tsdb.path="$tmpdir/prom$attempt" --web.listen-address="127.0.0.1:$pport" \
			2>"$tmpdir/prometheus.log"
		ppid=$LAST_PID
		wait_for 40 __prom_ready_or_gone && kill -0 "$ppid" 2>/dev/null && break
		kill "$ppid" 2>/dev/null
	done
}
__prom_ready_or_gone() {
	curl -sf --max-time 2 "http://127.0.0.1:$pport/-/ready" >/dev/null ||
		! kill -0 "$ppid" 2>/dev/null
}

# query PROMQL: prints the first value or nothing; query_is PROMQL VALUE.
query() {
	"$PY" - "$pport" "$1" <<'PYEOF' 2>/dev/null
import json, sys, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": sys.argv[2]})
with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query?%s" % (sys.argv[1], q), timeout=5) as r:
    res = json.load(r)["data"]["result"]
if res:
    print(res[0]["value"][1])
PYEOF
}
query_is() { [ "$(query "$1")" = "$2" ]; }
