#!/bin/bash
# kite ls and kite top (issue 16) on a real bus: three publishers and four
# subscribers (one slow, one running as nobody allowed on one pattern).
# kite ls lists exactly them; the slow one's lag and losses in kite top
# --json match what it was told; nobody sees only its allowed channel; a
# stopped handle costs one bounded wait and shows as silent; kite top
# draws a screen under a pseudo-terminal (tmux) and plain lines elsewhere;
# --metrics passes promtool and is scraped by a real Prometheus.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ops_lib.sh"
need jq:jq python3:/usr/bin/python3
PY=/usr/bin/python3
root=$(cd "$(dirname "$0")/../.." && pwd)
lib=$(dirname "$KITE")/libkite.so.0
[ -f "$lib" ] || { skip "top_test.sh" "no $lib (make builds it)"; exit 0; }

# The helper, the binding and the library where nobody can read them.
if can_nobody; then nb=$(nobody_dir); else nb=$tmpdir/nb; mkdir -p "$nb"; fi
cp -r "$root/python/kite" "$(dirname "$0")/bus_peer.py" "$lib" "$nb/"
chmod -R a+rX "$nb"
export PYTHONPATH=$nb KITE_LIBRARY=$nb/libkite.so.0
peer() { spawn "$PY" "$nb/bus_peer.py" "$@"; }
nobody_uid=$(id -u nobody 2>/dev/null || echo 65534)

# Three publishers: ls.a from a 2-slot ring (4 KiB of packed records: the
# slow subscriber is overrun),
# ls.b, and ls.public.c which nobody is allowed on.
peer pub ls.a 2 0.002; p1=$LAST_PID
peer pub ls.b 1024 0.05; p2=$LAST_PID
peer pub ls.public.c 1024 0.05 'ls.public.>' "$nobody_uid"; p3=$LAST_PID
# Four subscribers: two kite sub, the slow one, and nobody's.
spawn "$KITE" sub 'ls.>' >/dev/null 2>&1; s1=$LAST_PID
spawn "$KITE" sub ls.b >/dev/null 2>&1; s2=$LAST_PID
peer sub ls.a 40 0.02 "$tmpdir/slow.report"; s3=$LAST_PID
if can_nobody; then
	spawn "${as_nobody[@]}" "$PY" "$nb/bus_peer.py" sub 'ls.public.>' 1000000 0 /dev/null; s4=$LAST_PID
else
	peer sub 'ls.public.>' 1000000 0 /dev/null; s4=$LAST_PID
fi
all_pids=$(printf "%s\n" $p1 $p2 $p3 $s1 $s2 $s3 $s4 | sort -n)

listed() { "$KITE" ls --json | jq -r '.handles[].pid' | sort -n; }
seven_listed() { [ "$(listed)" = "$all_pids" ]; }
check "kite ls lists exactly the 3 publishers and 4 subscribers" wait_for 20 seven_listed
"$KITE" ls >"$tmpdir/ls.txt"; rc=$?
check "kite ls exits 0 when every handle answered" [ $rc = 0 ]
check "kite ls: a header and one line per handle" [ "$(wc -l <"$tmpdir/ls.txt")" = 8 ]
check "kite ls shows the publisher of ls.a with its command" \
	grep -qE "^ *$p1 +0 +[0-9a-f]{16} answered +ls\.a - .*bus_peer\.py pub ls\.a" "$tmpdir/ls.txt"
check "kite ls shows kite sub's pattern" grep -qE "^ *$s1 .* - ls\.> .*kite sub ls\.>" "$tmpdir/ls.txt"
"$KITE" ls 'ls.public.>' >"$tmpdir/ls-pattern.txt"
check "kite ls PATTERN keeps only handles on matching channels" \
	bash -c "[ \$(tail -n +2 '$tmpdir/ls-pattern.txt' | wc -l) = 3 ] && ! grep -q 'ls\.b' '$tmpdir/ls-pattern.txt'"

# The slow subscriber reads 40 messages 20 ms apart while ls.a runs at
# ~500/s through 2 slots, then stops reading: its losses are final.
check "the slow subscriber was overrun and stopped reading" wait_for 30 test -s "$tmpdir/slow.report"
told=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' "$tmpdir/slow.report")
check "the slow subscriber was told of losses ($told)" [ "${told:-0}" -gt 0 ]
"$KITE" top --json --count 2 --interval 0.5 >"$tmpdir/top.json"
check "kite top --json: one object per interval" [ "$(wc -l <"$tmpdir/top.json")" = 2 ]
slow=$(tail -1 "$tmpdir/top.json" | jq -c --argjson pid "$s3" '.subscribers[] | select(.pid == $pid)')
check "kite top --json: the slow subscriber's losses match KITE_LOSS ($told)" \
	[ "$(jq -r .lost <<<"$slow")" = "$told" ]
check "kite top --json: the slow subscriber lags (lag $(jq -r .lag <<<"$slow"))" \
	[ "$(jq -r .lag <<<"$slow")" -gt 16 ]
check "kite top --json: it is marked lagging" [ "$(jq -r .lagging <<<"$slow")" = true ]
check "kite top --json: its publisher is p1" [ "$(jq -r .publisher_pid <<<"$slow")" = "$p1" ]
check "kite top --json: ls.a's slowest subscriber is it" \
	[ "$(tail -1 "$tmpdir/top.json" | jq -r '.channels[] | select(.channel == "ls.a") | .slowest_pid')" = "$s3" ]
rate=$(tail -1 "$tmpdir/top.json" | jq -r '.channels[] | select(.channel == "ls.a") | .rate')
check "kite top --json: ls.a's rate is measured ($rate/s)" awk -v r="$rate" 'BEGIN { exit !(r > 20) }'
check "kite top --json: ls.b has 2 subscribers" \
	[ "$(tail -1 "$tmpdir/top.json" | jq -r '.channels[] | select(.channel == "ls.b") | .subscribers')" = 2 ]

# Nobody, allowed on ls.public.> by its publisher, sees that channel only.
if can_nobody; then
	"${as_nobody[@]}" "$KITE" ls --json >"$tmpdir/nobody.json"
	seen=$(jq -r '[.handles[].publishes[].channel, .handles[].reads[].channel] | unique | join(",")' "$tmpdir/nobody.json")
	check "nobody sees only ls.public.c ($seen)" [ "$seen" = "ls.public.c" ]
	check "nobody still sees all seven handles" [ "$(jq '.handles | length' "$tmpdir/nobody.json")" = 7 ]
	check "nobody sees no counters of root's handles" \
		[ "$(jq '[.handles[] | select(.uid == 0 and has("stats"))] | length' "$tmpdir/nobody.json")" = 0 ]
	check "nobody sees kite sub's pattern ls.> nowhere" bash -c "! jq -r '.handles[].subscribes[]' '$tmpdir/nobody.json' | grep -qx 'ls\.>'"
	# A command line names channels (kite sub ls.>): where /proc hides
	# root's processes from others (hidepid=2, on a /proc of a private
	# mount namespace), kite ls must not tell nobody either.
	if unshare -m true 2>/dev/null; then
		unshare -m bash -c 'mount -t proc -o hidepid=2 proc /proc && exec "$@"' - \
			"${as_nobody[@]}" "$KITE" ls --json >"$tmpdir/hidepid.json"
		cmds=$(jq -r '[.handles[] | select(.uid == 0) | .command] | unique | join(",")' "$tmpdir/hidepid.json")
		check "under hidepid=2 nobody learns no command line of root's handles ($cmds)" \
			[ "$(jq '.handles | length' "$tmpdir/hidepid.json")" = 7 -a "$cmds" = "" ]
	else
		skip "under hidepid=2 nobody learns no command line" "unshare -m is not allowed here"
	fi
else
	skip "nobody sees only its allowed channel" "$(nobody_missing)"
fi

# A stopped handle: kite ls waits --timeout once, and says so.
kill -STOP "$s2"
t0=$(date +%s%N)
"$KITE" ls --timeout 0.5 >"$tmpdir/ls-stopped.txt"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$s2"
echo "# kite ls with one stopped handle (--timeout 0.5) took $ms ms"
check "kite ls exits 1 when a handle did not answer" [ $rc = 1 ]
check "kite ls shows the stopped handle as silent" grep -qE "^ *$s2 +0 +[0-9a-f]{16} silent " "$tmpdir/ls-stopped.txt"
check "kite ls waited 0.5 s, not more ($ms ms)" bash -c "[ $ms -ge 480 ] && [ $ms -lt 3000 ]"
check "kite ls still lists all seven" [ "$(tail -n +2 "$tmpdir/ls-stopped.txt" | wc -l)" = 7 ]

# Not a terminal: plain tables, no escape sequences.
"$KITE" top --count 2 --interval 0.3 >"$tmpdir/plain.txt"
check "kite top without a terminal: one block per interval" [ "$(grep -c '^kite top ' "$tmpdir/plain.txt")" = 2 ]
check "kite top without a terminal: no escape sequences" bash -c "! grep -q $'\033' '$tmpdir/plain.txt'"
check "kite top without a terminal: the channels" grep -qE "^ls\.a +1 +2 " "$tmpdir/plain.txt"

# Usage errors.
"$KITE" top --sort speed >/dev/null 2>&1; check "kite top --sort speed is a usage error" [ $? = 100 ]
"$KITE" ls 'a..b' >/dev/null 2>&1; check "kite ls with a bad pattern is a usage error" [ $? = 100 ]
"$KITE" ls --timeout 0 >/dev/null 2>&1; check "kite ls --timeout 0 is a usage error" [ $? = 100 ]
"$KITE" ls --bus 'no/slash' >/dev/null 2>&1; check "kite ls with a bad bus is a usage error" [ $? = 100 ]
"$KITE" top --metrics nonsense >/dev/null 2>&1; check "kite top --metrics without a port is a usage error" [ $? = 100 ]
"$KITE" top --metrics 127.0.0.1:99999 >/dev/null 2>&1; check "kite top --metrics with port 99999 is a usage error (not port 34463)" [ $? = 100 ]
"$KITE" top --metrics 127.0.0.1:http >/dev/null 2>&1; check "kite top --metrics with a service name is a usage error" [ $? = 100 ]
"$KITE" top --metrics 127.0.0.1:0 --count 1 >/dev/null 2>&1; check "kite top --metrics with --count is a usage error" [ $? = 100 ]
timeout 5 "$KITE" top --metrics 127.0.0.1:0 --bus 'no/slash' >/dev/null 2>&1
check "kite top --metrics with a bad bus is a usage error at once (not a 503 per scrape)" [ $? = 100 ]

# A command line with terminal escapes (OSC 52 sets the clipboard), a
# quote, a newline, a C1 control (CSI) and bytes that are not UTF-8, on a
# bus of its own: no escape reaches the terminal, --json stays valid JSON.
evil_bus=$KITE_BUS-evil
spawn "$PY" -c 'import os, sys; os.execv(sys.argv[1], [b"evil\xff\x1b]52;c;aGk=\x07\"\\\n\xc2\x9b[2J", b"sub", b"--bus", sys.argv[2].encode(), b"evil.x"])' "$KITE" "$evil_bus" >/dev/null 2>&1
evil_listed() { "$KITE" ls --bus "$evil_bus" >"$tmpdir/evil.txt" 2>&1 && grep -q " evil" "$tmpdir/evil.txt"; }
check "a handle with a hostile command line answers" wait_for 10 evil_listed
check "kite ls: no escape, BEL or CSI byte of its command reaches the terminal" \
	bash -c "! LC_ALL=C grep -q $'[\033\a\x9b]' '$tmpdir/evil.txt' && grep -q 'evil.xff.x1b]52' '$tmpdir/evil.txt'"
"$KITE" top --bus "$evil_bus" --count 1 >"$tmpdir/evil-top.txt" 2>&1
check "kite top (plain): none either" bash -c "! LC_ALL=C grep -q $'[\033\a\x9b]' '$tmpdir/evil-top.txt'"
"$KITE" ls --bus "$evil_bus" --json >"$tmpdir/evil.json"
check "kite ls --json: valid UTF-8 JSON, bad bytes as U+FFFD, controls escaped" "$PY" -c '
import json, sys
c = json.loads(open(sys.argv[1], "rb").read())["handles"][0]["command"]
assert c == "evil\ufffd\x1b]52;c;aGk=\x07\"\\\n\x9b[2J sub --bus %s evil.x" % sys.argv[2], repr(c)
' "$tmpdir/evil.json" "$evil_bus"

# A terminal: tmux runs kite top in a 150x40 pseudo-terminal; its screen
# is captured (with colours) and read back.
if command -v tmux >/dev/null; then
	sock="kite-top-$$"
	at_exit "tmux -L $sock kill-server"
	tmux -L "$sock" -f /dev/null new-session -d -x 150 -y 40 \
		"KITE_BUS=$KITE_BUS TERM=xterm $KITE top --interval 0.5 --timeout 0.3; echo exited \$? >$tmpdir/top.rc; sleep 5"
	screen() { tmux -L "$sock" capture-pane -p -e -t 0 >"$tmpdir/screen.txt" 2>/dev/null; }
	shows() { screen && grep -q "$1" "$tmpdir/screen.txt"; }
	check "kite top under a terminal draws the channels" wait_for 10 shows 'ls\.public\.c'
	sleep 1.2 # a second snapshot: rates
	screen
	sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/^/# /' "$tmpdir/screen.txt" | grep -v '^# *$'
	check "kite top screen: header with the bus" grep -q "kite top .* bus $KITE_BUS  7 handles (0 not answering)" "$tmpdir/screen.txt"
	check "kite top screen: the lagging subscriber in yellow" \
		grep -qE $'\033\\[33m(\033\\[[0-9;]*m)* *ls\\.a +'"$s3 " "$tmpdir/screen.txt"
	kill -STOP "$s2"
	check "kite top screen: a stopped handle turns up silent" wait_for 10 shows "silent"
	check "kite top screen: ... in red" grep -qE $'\033\\[(1;)?31m(\033\\[[0-9;]*m)*'" *$s2 +0 +silent" "$tmpdir/screen.txt"
	kill -CONT "$s2"
	tmux -L "$sock" send-keys -t 0 l
	check "kite top screen: key l sorts by lag" wait_for 5 shows "sort: lag"
	tmux -L "$sock" send-keys -t 0 q
	check "kite top screen: key q quits, exit 0" wait_for 5 grep -qsx "exited 0" "$tmpdir/top.rc"
	# Ctrl-Z in an interactive shell gives the shell its main screen (and
	# line wrap) back; fg takes the alternate screen again and redraws.
	zsock="kite-top-z-$$"
	at_exit "tmux -L $zsock kill-server"
	tmux -L "$zsock" -f /dev/null new-session -d -x 150 -y 40 \
		"env -i PATH=/usr/bin:/bin TERM=xterm HOME=$tmpdir KITE_BUS=$KITE_BUS bash --norc --noprofile -i"
	alt() { [ "$(tmux -L "$zsock" display -p -t 0 '#{alternate_on}')" = "$1" ]; }
	zshows() { tmux -L "$zsock" capture-pane -p -t 0 | grep -q "$1"; }
	tmux -L "$zsock" send-keys -t 0 "$KITE top --interval 0.3 --timeout 0.2" Enter
	check "kite top in an interactive shell draws on the alternate screen" \
		wait_for 10 bash -c "$(declare -f alt zshows); zsock=$zsock; alt 1 && zshows 'ls\.public\.c'"
	tmux -L "$zsock" send-keys -t 0 C-z
	check "Ctrl-Z: the shell gets its main screen back" wait_for 5 alt 0
	check "Ctrl-Z: the shell says kite top stopped" wait_for 5 zshows 'Stopped'
	tmux -L "$zsock" send-keys -t 0 fg Enter
	check "fg: kite top takes the alternate screen again and redraws" \
		wait_for 5 bash -c "$(declare -f alt zshows); zsock=$zsock; alt 1 && zshows 'ls\.public\.c'"
	tmux -L "$zsock" send-keys -t 0 q
	check "q after fg leaves the alternate screen" wait_for 5 alt 0
else
	skip "kite top under a terminal" "needs tmux (Debian package tmux), see tests/deps.txt"
fi

# Prometheus: kite top --metrics on a free port; promtool checks the page,
# a real Prometheus server scrapes it.
if command -v curl >/dev/null && command -v promtool >/dev/null && command -v prometheus >/dev/null; then
	spawn "$KITE" top --metrics 127.0.0.1:0 2>"$tmpdir/metrics.log"
	mpid=$LAST_PID
	serving() { grep -q '^kite top: serving http://127.0.0.1:[0-9]*/metrics$' "$tmpdir/metrics.log"; }
	check "kite top --metrics says where it serves" wait_for 10 serving
	mport=$(sed -n 's|^kite top: serving http://127.0.0.1:\([0-9]*\)/metrics$|\1|p' "$tmpdir/metrics.log")
	curl -sf --max-time 5 "http://127.0.0.1:$mport/metrics" >"$tmpdir/metrics.txt"
	if promtool check metrics <"$tmpdir/metrics.txt" >"$tmpdir/promtool.out" 2>&1; then
		ok "promtool check metrics passes"
	else
		not_ok "promtool check metrics passes" "$(head -c 300 "$tmpdir/promtool.out")"
	fi
	# value METRIC PID CHANNEL: the value of that handle's series
	value() { grep -E "^$1\{" "$tmpdir/metrics.txt" | grep "pid=\"$2\"" | grep "channel=\"$3\"" | awk '{ print $NF }'; }
	mlost=$(value kite_subscriber_lost_total "$s3" ls.a)
	check "metrics: kite_subscriber_lost_total of the slow subscriber ($mlost) is $told" [ "$mlost" = "$told" ]
	mpub=$(value kite_channel_published_total "$p1" ls.a)
	check "metrics: kite_channel_published_total of ls.a ($mpub)" [ "${mpub:-0}" -gt 100 ]
	check "metrics: kite_subscriber_lag_messages names the publisher's pid" \
		grep -qE "^kite_subscriber_lag_messages\{channel=\"ls\.a\",pid=\"$s3\",.*publisher_pid=\"$p1\"\} [0-9]+$" "$tmpdir/metrics.txt"
	check "metrics: a page per handle up" [ "$(grep -c '^kite_handle_up{.*} 1$' "$tmpdir/metrics.txt")" = 7 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mport/other")
	check "kite top --metrics: other paths are 404" [ "$code" = 404 ]
	# Clients that dribble, say nothing or never read hold nobody up: each
	# is dropped 2 s after it connected, and a scrape meanwhile is served.
	for how in dribble idle noread dribble idle; do
		spawn "$PY" "$(dirname "$0")/slow_http_client.py" "$mport" "$how" >>"$tmpdir/slow-http.log"
	done
	sleep 0.5
	t0=$(date +%s%N)
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$mport/metrics")
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	check "kite top --metrics serves a scrape beside slow clients ($code in $ms ms)" \
		bash -c "[ '$code' = 200 ] && [ $ms -lt 3000 ]"
	four_dropped() { [ "$(grep -o 'dropped after [0-4]\.' "$tmpdir/slow-http.log" | wc -l)" = 4 ]; }
	wait_for 10 four_dropped
	check "kite top --metrics drops slow clients after 2 s ($(tr '\n' ' ' <"$tmpdir/slow-http.log"))" \
		four_dropped
	. "$(dirname "$0")/prom_lib.sh"
	prom_start "127.0.0.1:$mport"
	check "prometheus server ready" kill -0 "$ppid"
	check "prometheus scraped the slow subscriber's losses" \
		wait_for 45 query_is "kite_subscriber_lost_total{pid=\"$s3\",channel=\"ls.a\"}" "$told"
	check "prometheus scraped every handle up" wait_for 20 query_is 'sum(kite_handle_up)' 7
	kill -TERM "$mpid"
	check "kite top --metrics stops on SIGTERM" wait_for 5 bash -c "! kill -0 $mpid 2>/dev/null"
else
	skip "kite top --metrics" "needs curl, promtool and prometheus (Debian packages curl, prometheus)"
fi
