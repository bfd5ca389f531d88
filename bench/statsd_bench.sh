#!/bin/bash
# kite statsd against the reference statsd (npm package `statsd`, run with
# node) and statsite, side by side in one run, everything on 127.0.0.1:
#   1. counter lines ("bench.cN:1|c", 1000 names, 20 lines per datagram)
#      sent by bench/statsd_load.c with sendmmsg; a line counts as ingested
#      when the counters the daemon flushed (to its Graphite output, or
#      statsite's stream command) add up to it. Capacity: lines ingested per
#      CPU-second of the daemon, from a burst sent unthrottled. Zero-drop
#      rate and drop point: rising rates for 2 s each. Each daemon is pinned
#      to CPU 0 (node's helper threads too), the load generator to CPU 1;
#      every daemon gets the same receive buffer (net.core.rmem_default).
#   2. memory: peak RSS (VmHWM) after 1 million distinct gauge names, all in
#      one flush interval (sent at 50k/s; the kernel drops during that run
#      are shown beside it).
#   3. normal operation with 1 million distinct names (sent at 50k/s):
#      flushes every 5 s,
#      each to a local Graphite sink (statsite: its stream command), kite
#      also publishing each flush on its kite channel and scraped three
#      times (its whole /metrics page) while 25k lines/s keep coming: peak
#      RSS over the run, and for kite the longest event-loop turn
#      (kite_statsd_loop_turn_max_seconds: flush slices, page slices,
#      pushes, datagram batches), the longest time datagrams waited to be
#      read while the loop did other work (kite_statsd_datagram_wait_max_
#      seconds: the gap between two batches read while datagrams were
#      pending, from their kernel arrival time), the page's size and
#      scrape time.
# kite runs twice: with the peers' receive buffer, and as "kite8" with its
# own default (8 MiB through SO_RCVBUFFORCE, which root may set).
# Prints medians with min-max over $RUNS runs (default 3), and ratios;
# NORMAL_ONLY=1 runs part 3 alone.
#   KITE=build/kite bench/statsd_bench.sh
# statsd is installed with npm into $KITE_BENCH_CACHE (/var/cache/kite-bench);
# statsite is used if $STATSITE (default /tmp/statsite-src/statsite) is an
# executable built outside the repository (or can be built from a source
# tree in $STATSITE_SRC), and reported missing otherwise.
set -u
here=$(cd "$(dirname "$0")" && pwd)
KITE=${KITE:-$here/../build/kite}
CACHE=${KITE_BENCH_CACHE:-/var/cache/kite-bench}
STATSITE=${STATSITE:-/tmp/statsite-src/statsite}
# bench/run.sh conventions: BENCH_REPS runs, QUICK=1 for a short pass,
# BENCH_BIN holds the programs bench/Makefile built.
RUNS=${RUNS:-${BENCH_REPS:-3}}
[ -n "${QUICK:-}" ] && RUNS=1
RATES=${RATES:-"100000 200000 400000 800000 1600000 3200000 6400000"}
CAP_LINES=${CAP_LINES:-2000000}
STEP_S=2
PY=/usr/bin/python3
tmp=$(mktemp -d /tmp/kite-statsd-bench.XXXXXX)
dpid="" gpid=""
cleanup() {
	stop_daemon 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "# $*" >&2; }

# The load generator: bench/Makefile's build if there is one, else cc.
LOAD=${STATSD_LOAD:-${BENCH_BIN:+$BENCH_BIN/statsd_load}}
if [ -z "$LOAD" ] || [ ! -x "$LOAD" ]; then
	LOAD=$tmp/statsd_load
	cc -std=c11 -D_GNU_SOURCE -O2 -o "$LOAD" "$here/statsd_load.c" || exit 1
fi

free_port() { # a UDP+TCP port free now (the kernel picks it)
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
udp_bound() { grep -qi ":$(printf '%04X' "$1") " /proc/net/udp; }
wait_until() { # SECONDS COMMAND...
	local end=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}
kernel_drops() { # PORT: the socket's drop count in /proc/net/udp
	awk -v p=":$(printf '%04X' "$1")" 'toupper($2) ~ p"$" {print $NF; exit}' /proc/net/udp
}

# Graphite listener: appends everything it receives to $1.
cat >"$tmp/graphite.py" <<'EOF'
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", int(sys.argv[2]))); srv.listen(16)
out = open(sys.argv[1], "ab", buffering=0); lock = threading.Lock()
def serve(c):
    while True:
        b = c.recv(1 << 20)
        if not b: return
        with lock: out.write(b)
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

rmem=$(cat /proc/sys/net/core/rmem_default)

# npm statsd, once, into the cache.
STATSD_JS=$CACHE/node_modules/statsd/stats.js
if [ ! -f "$STATSD_JS" ] && command -v npm >/dev/null; then
	log "installing statsd with npm into $CACHE"
	mkdir -p "$CACHE"
	npm install --no-audit --no-fund --prefix "$CACHE" statsd >/dev/null 2>&1
fi
have_statsd=0; [ -f "$STATSD_JS" ] && command -v node >/dev/null && have_statsd=1
# statsite is not packaged for Debian or npm: it is built from a source tree
# placed outside the repository ($STATSITE_SRC, e.g. a clone in /tmp) with
# its autotools build (needs autoconf automake libtool check).
STATSITE_SRC=${STATSITE_SRC:-$(dirname "$STATSITE")}
if [ ! -x "$STATSITE" ] && [ -f "$STATSITE_SRC/configure.ac" ]; then
	log "building statsite in $STATSITE_SRC"
	(cd "$STATSITE_SRC" && ./autogen.sh && ./configure && make -j2) >"$tmp/statsite-build.log" 2>&1 ||
		{ log "statsite build failed:"; tail -n 5 "$tmp/statsite-build.log" >&2; }
fi
have_statsite=0; [ -x "$STATSITE" ] && have_statsite=1

# start_daemon NAME UDP_PORT OUTFILE [rss]: starts it pinned to CPU 0; sets $dpid.
start_daemon() {
	local name=$1 port=$2 out=$3 mode=${4:-}
	local gport=""
	: >"$out"
	gpid=""
	if [ "$mode" != rss ]; then
		gport=$(free_port)
		"$PY" "$tmp/graphite.py" "$out" "$gport" & gpid=$!
		wait_until 10 "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $gport)).close()" 2>/dev/null
	fi
	local every=1; [ "$mode" = rss ] && every=600 # RSS: all names in one interval
	[ "$mode" = normal ] && every=5
	case $name in
	kite|kite8)
		local g="127.0.0.1:$gport"; [ "$mode" = rss ] && g=off
		local buf=(--rcvbuf "$rmem"); [ $name = kite8 ] && buf=() # its own default
		local http=off; [ "$mode" = normal ] && http=127.0.0.1:$HTTP_PORT
		local chan=(--channel off); [ "$mode" = normal ] && chan=(--channel stats.bench)
		taskset -c 0 "$KITE" statsd --udp "127.0.0.1:$port" --http "$http" --unix off \
			--graphite "$g" --flush-interval $every "${buf[@]}" "${chan[@]}" \
			--max-metrics 2000000 2>"$tmp/$name.log" &
		;;
	statsd)
		local backends='["./backends/graphite"]'; [ "$mode" = rss ] && backends='[]'
		cat >"$tmp/statsd.js" <<EOF
{ port: $port, address: "127.0.0.1", mgmt_port: $(free_port), mgmt_address: "127.0.0.1",
  flushInterval: $((every * 1000)),
  graphiteHost: "127.0.0.1", graphitePort: ${gport:-2003},
  graphite: { legacyNamespace: false }, backends: $backends }
EOF
		(cd "$(dirname "$STATSD_JS")" && exec taskset -c 0 node stats.js "$tmp/statsd.js") \
			>"$tmp/$name.log" 2>&1 &
		;;
	statsite)
		local sink="cat >> $out"; [ "$mode" = rss ] && sink="cat > /dev/null"
		cat >"$tmp/statsite.ini" <<EOF
[statsite]
port = $(free_port)
udp_port = $port
bind_address = 127.0.0.1
flush_interval = $every
log_level = WARN
stream_cmd = $sink
EOF
		taskset -c 0 "$STATSITE" -f "$tmp/statsite.ini" >"$tmp/$name.log" 2>&1 &
		;;
	esac
	dpid=$!
	wait_until 30 udp_bound "$port" || {
		log "$name did not start"; cat "$tmp/$name.log" >&2; stop_daemon; return 1; }
}

# ladder and rss_of run in subshells (command substitution), so each stops
# what it started itself: the daemon and its Graphite listener.
stop_daemon() {
	local p
	for p in $dpid $gpid; do kill "$p" 2>/dev/null; done
	for p in $dpid $gpid; do wait "$p" 2>/dev/null; done
	dpid="" gpid=""
}

received() { # NAME OUTFILE: sum of the bench counters flushed so far
	case $1 in
	statsite) awk -F'|' '$1 ~ /^counts\.bench\./ {s += $2} END {printf "%d\n", s}' "$2" ;;
	*) awk '$1 ~ /^stats\.counters\.bench\..*\.count$/ {s += $2} END {printf "%d\n", s}' "$2" ;;
	esac
}

# Wait until the flushed sum reaches want or stops moving for 3 s.
settle() { # NAME OUTFILE WANT
	local last=-1 same=0 now end=$((SECONDS + 60))
	while [ $SECONDS -lt $end ]; do
		now=$(received "$1" "$2")
		[ "$now" -ge "$3" ] && break
		if [ "$now" = "$last" ]; then same=$((same + 1)); [ $same -ge 30 ] && break
		else same=0; fi
		last=$now
		sleep 0.1
	done
	received "$1" "$2"
}

cpu_ticks() { # PID: user + system clock ticks of the process (all threads)
	awk '{print $14 + $15}' "/proc/$1/stat"
}
TICK=$(getconf CLK_TCK)

# ladder NAME: prints "CAPACITY ZERO_DROP_RATE DROP_POINT LOSS_AT_DROP_POINT%"
# Capacity: CAP_LINES lines sent as fast as the generator can; the lines
# the daemon flushed divided by the CPU time it used meanwhile (robust on a
# busy machine, where a small receive buffer drops whenever the daemon is
# preempted). Then the rate ladder, rising until a step loses lines.
ladder() {
	local name=$1 port out total=0 zero=0 dp="-" dloss="-" cap c0 c1 got
	port=$(free_port); out=$tmp/$name.out
	start_daemon "$name" "$port" "$out" || { echo "- - - -"; return; }
	c0=$(cpu_ticks "$dpid")
	taskset -c 1 "$LOAD" "$port" "$CAP_LINES" 0 1000 20 c >/dev/null
	total=$CAP_LINES
	got=$(settle "$name" "$out" "$total")
	c1=$(cpu_ticks "$dpid")
	cap=$(awk -v g="$got" -v t=$((c1 - c0)) -v hz="$TICK" 'BEGIN {if (t > 0) printf "%.0f", g / (t / hz); else print "-"}')
	total=$got # what was lost there does not count against the ladder
	for r in $RATES; do
		local n=$((r * STEP_S)) lost sent secs achieved
		read -r _ sent secs < <(taskset -c 1 "$LOAD" "$port" "$n" "$r" 1000 20 c)
		# the rate the generator reached (below r when it cannot keep up)
		achieved=$(awk -v n="$sent" -v s="$secs" -v r="$r" 'BEGIN {a = n / s; printf "%.0f", a < r ? a : r}')
		total=$((total + n))
		got=$(settle "$name" "$out" "$total")
		lost=$((total - got))
		if [ "$lost" -le 0 ]; then
			zero=$achieved
		else
			dp=$achieved
			dloss=$(awk -v l="$lost" -v n="$n" 'BEGIN {printf "%.1f%%", 100 * l / n}')
			break
		fi
	done
	stop_daemon
	echo "$cap $zero $dp $dloss"
}

rss_of() { # NAME: RSS in MiB after 1M distinct gauges
	local name=$1 port out rss drops
	port=$(free_port); out=$tmp/$name.rss
	start_daemon "$name" "$port" "$out" rss || { echo "- -"; return; }
	local base; base=$(kernel_drops "$port")
	taskset -c 1 "$LOAD" "$port" 1000000 50000 1000000 20 g >/dev/null
	sleep 3 # let the daemon drain its socket; no flush happens (600 s)
	rss=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$dpid/status") # peak RSS
	drops=$(( $(kernel_drops "$port") - base ))
	stop_daemon
	echo "$rss $drops"
}

# normal_of NAME: "RSS_MiB TURN_MS WAIT_MS PAGE_MB SCRAPE_S DROPS" for a
# million names in normal operation (see 3. above); "-" where it does not
# apply.
normal_of() {
	local name=$1 port rss turn=- wait=- page=- secs=- drops base lpid t0 t1 all=""
	port=$(free_port); HTTP_PORT=$(free_port)
	start_daemon "$name" "$port" /dev/null normal || { echo "- - - - - -"; return; }
	base=$(kernel_drops "$port")
	# at 50k lines/s, as the RSS run above: the shared receive buffer drops
	# little, so a million names arrive
	taskset -c 1 "$LOAD" "$port" 1000000 50000 1000000 20 g >/dev/null
	sleep 7 # a flush of all of them, to Graphite (and the channel)
	taskset -c 1 "$LOAD" "$port" 250000 25000 1000 20 c >/dev/null & lpid=$!
	if [ "${name#kite}" != "$name" ]; then
		for i in 1 2 3; do
			t0=$(date +%s%N)
			curl -s --max-time 30 -o "$tmp/page" "http://127.0.0.1:$HTTP_PORT/metrics"
			t1=$(date +%s%N)
			all+="$(( (t1 - t0) / 1000000 )) "
		done
		page=$(awk -v b="$(stat -c %s "$tmp/page")" 'BEGIN {printf "%.0f", b / 1e6}')
		secs=$(tr ' ' '\n' <<<"$all" | grep . | sort -n | awk '{a[NR] = $1} END {printf "%.2f", a[int((NR + 1) / 2)] / 1000}')
	fi
	wait "$lpid"
	sleep 6 # one more flush of a million series
	rss=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$dpid/status")
	if [ "${name#kite}" != "$name" ]; then
		curl -s --max-time 30 -o "$tmp/last" "http://127.0.0.1:$HTTP_PORT/metrics"
		turn=$(awk '$1 == "kite_statsd_loop_turn_max_seconds" {printf "%.0f", $2 * 1000}' "$tmp/last")
		wait=$(awk '$1 == "kite_statsd_datagram_wait_max_seconds" {printf "%.0f", $2 * 1000}' "$tmp/last")
	fi
	drops=$(( $(kernel_drops "$port") - base ))
	stop_daemon
	echo "$rss ${turn:--} ${wait:--} $page $secs $drops"
}

median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print "-"}'; }
minmax() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }
fmt() { awk -v v="$1" 'BEGIN {if (v == "-") print "-"; else if (v >= 1e6) printf "%.1fM", v / 1e6; else printf "%.0fk", v / 1e3}'; }

peers=(kite kite8)
[ $have_statsd = 1 ] && peers+=(statsd) || log "statsd (npm) not available: skipped"
[ $have_statsite = 1 ] && peers+=(statsite) ||
	log "statsite not found at $STATSITE (build it outside the repository and set STATSITE): skipped"

declare -A capa zero drop loss rss rdrops nrss nturn nwait npage nsecs ndrops
for p in "${peers[@]}"; do
	[ "$p" = kite8 ] && continue
	for run in $(seq "$RUNS"); do
		log "$p: normal operation with 1 million names, run $run of $RUNS"
		read -r a b w c d e < <(normal_of "$p")
		nrss[$p]+="$a "; nturn[$p]+="$b "; nwait[$p]+="$w "; npage[$p]=$c
		nsecs[$p]+="$d "; ndrops[$p]+="$e "
	done
done
[ -n "${NORMAL_ONLY:-}" ] && peers=()
for p in "${peers[@]}"; do
	for run in $(seq "$RUNS"); do
		log "$p: capacity and rate ladder, run $run of $RUNS"
		read -r c z d l < <(ladder "$p")
		capa[$p]+="$c "; zero[$p]+="$z "; drop[$p]+="$d "; loss[$p]+="$l "
	done
	log "$p: 1 million distinct names"
	read -r m dr < <(rss_of "$p")
	rss[$p]=$m; rdrops[$p]=$dr
done

col() { tr ' ' '\n' <<<"$1" | grep -v '^[-]*$'; }
cell() { # VALUES: "median (min-max)" formatted
	local m r
	[ -z "$(col "$1")" ] && { echo "-"; return; }
	m=$(col "$1" | median); r=$(col "$1" | minmax)
	echo "$(fmt "$m") ($(fmt "${r%-*}")-$(fmt "${r#*-}"))"
}
echo
echo "kite statsd benchmark: counter lines (20 per datagram, 1000 names) to 127.0.0.1;"
echo "each daemon pinned to CPU 0, the load generator to CPU 1, receive buffer"
echo "$rmem bytes for all; median (min-max) over $RUNS runs."
echo "  lines/CPU-s: lines flushed per second of the daemon's CPU time, from"
echo "               $CAP_LINES lines sent unthrottled (ingest capacity of one core)"
echo "  zero-drop:   highest rate step ($STEP_S s each) with every line flushed"
echo "  drop point:  first rate step that lost lines (loss at that step, first run)"
echo "  peak RSS:    VmHWM after 1,000,000 distinct gauge names sent at 50k lines/s,"
echo "               all within one flush interval"
echo "  kite8:       kite with its own default receive buffer (8 MiB, SO_RCVBUFFORCE)"
echo
printf "%-9s %-22s %-22s %-24s %-10s %s\n" daemon "lines/CPU-s" "zero-drop lines/s" \
	"drop point (loss)" "peak RSS" "kernel drops in RSS run"
for p in "${peers[@]}"; do
	dm=$(col "${drop[$p]}" | median)
	lm=$(col "${loss[$p]}" | head -1)
	printf "%-9s %-22s %-22s %-24s %-10s %s\n" "$p" "$(cell "${capa[$p]}")" \
		"$(cell "${zero[$p]}")" "$(fmt "${dm:--}") (${lm:-none})" "${rss[$p]:--} MiB" \
		"${rdrops[$p]:--}"
done
echo
echo "Normal operation, 1,000,000 distinct gauge names (sent at 50k lines/s; kernel"
echo "drops leave fewer): flush every 5 s to a local"
echo "Graphite sink (statsite: stream command), kite also on its kite channel and"
echo "scraped 3 times while 25k lines/s come in; median (min-max) over $RUNS runs."
echo "  longest turn: kite_statsd_loop_turn_max_seconds over the run (flush"
echo "                slices, page slices, pushes, datagram batches)"
echo "  longest wait: kite_statsd_datagram_wait_max_seconds over the run (the"
echo "                longest gap between two datagram batches read while"
echo "                datagrams were pending; target <= 100 ms)"
printf "%-9s %-18s %-18s %-18s %-22s %s\n" daemon "peak RSS MiB" "longest turn ms" \
	"longest wait ms" "scrape s (page MB)" "kernel drops"
ncell() { # VALUES: "median (min-max)" unformatted
	[ -z "$(col "$1")" ] && { echo "-"; return; }
	local r; r=$(col "$1" | minmax)
	echo "$(col "$1" | median) ($r)"
}
for p in "${peers[@]}" ${NORMAL_ONLY:+kite statsd statsite}; do
	[ "$p" = kite8 ] || [ -z "${nrss[$p]:-}" ] && continue
	printf "%-9s %-18s %-18s %-18s %-22s %s\n" "$p" "$(ncell "${nrss[$p]}")" \
		"$(ncell "${nturn[$p]}")" "$(ncell "${nwait[$p]}")" \
		"$(ncell "${nsecs[$p]}") (${npage[$p]:--})" \
		"$(col "${ndrops[$p]}" | tr '\n' ' ')"
done
echo
kc=$(col "${capa[kite]:-}" | median)
for p in "${peers[@]}"; do
	[ "${p#kite}" != "$p" ] && continue
	pc=$(col "${capa[$p]}" | median)
	awk -v k="$kc" -v o="$pc" -v n="$p" 'BEGIN {if (o > 0 && k > 0) printf "kite / %s, lines per CPU-second: %.1fx\n", n, k / o}'
done
