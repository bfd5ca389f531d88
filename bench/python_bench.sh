#!/bin/bash
# python_bench.sh — kite's Python binding against pyzmq PUB/SUB over ipc://:
# 64-byte messages, one Python publisher and one Python subscriber
# (bench/python_peer.py), publisher on CPU 0 and subscriber on CPU 1. Each
# case runs BENCH_REPS times, the transports interleaved. See bench/README.md.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
: "${KITE:?KITE must name the kite binary}"
PY=${PYTHON:-/usr/bin/python3}
export KITE_LIBRARY=$(dirname "$KITE")/libkite.so.0
export PYTHONPATH=$here/../python PYTHONDONTWRITEBYTECODE=1
[ -e "$KITE_LIBRARY" ] || { echo "python: $KITE_LIBRARY missing (make)" >&2; exit 1; }
$PY -c 'import zmq' 2>/dev/null || { echo "python: pyzmq missing for $PY (apt-get install python3-zmq)" >&2; exit 1; }
$PY -c 'import kite' || exit 1

# case = name:rate:count (rate 0: as fast as the publisher can)
if [ -n "${QUICK:-}" ]; then
	cases=("max:0:100000" "100k/s:100000:100000" "20k/s:20000:20000")
else
	cases=("max:0:300000" "100k/s:100000:200000" "20k/s:20000:40000")
fi
transports=(kite kite-async zmq zmq-async)
timeout_s=120

declare -A R          # "case|transport|figure" -> values of every run
failures=() loss_mismatch=()
run_no=0

one_run() { # case transport
	local name rate count t=$2
	IFS=: read -r name rate count <<<"$1"
	run_no=$((run_no + 1))
	bench_tmpdir || return 1
	local dir=$BENCH_TMP where=$BENCH_TMP
	[ "${t%-async}" = kite ] && where="pyb$$r$run_no" # a private bus per run
	bench_spawn timeout "$timeout_s" $(pin 1) $PY "$here/python_peer.py" sub --transport "$t" \
		--where "$where" --ready "$dir/ready" >"$dir/out.sub" 2>"$dir/err.sub"
	local i
	for ((i = 0; i < 600; i++)); do [ -e "$dir/ready" ] && break; sleep 0.05; done
	bench_spawn timeout "$timeout_s" $(pin 0) $PY "$here/python_peer.py" pub --transport "${t%-async}" \
		--where "$where" --count "$count" --rate "$rate" >"$dir/out.pub" 2>"$dir/err.pub"
	if ! bench_wait_all; then
		failures+=("$name $t: $(cat "$dir"/err.* | tail -n 3 | tr '\n' ' ')")
		rm -rf "$dir"; return 0
	fi
	local rate_d lost cpu_us pub_rate missing reported
	read -r rate_d lost cpu_us pub_rate missing reported < <(cat "$dir"/out.* | awk "$BENCH_AWK_KV"'
		{ if (v["role"] == "pub") { t0 = v["t_start"]; te = v["t_end"]; sent = v["sent"] }
		  else { got = v["recv"]; tl = v["t_last"]; cpu = v["cpu"]; miss = v["seq_missing"]
			 rep = v["lost_reported"] } }
		END { printf "%.6g %.6g %.6g %.6g %d %d\n", got / ((tl - t0) / 1e9),
			     (sent - got) * 100 / sent, got ? cpu * 1e6 / got : 0,
			     sent / ((te - t0) / 1e9), miss, rep }')
	rm -rf "$dir"
	local key="$name|$t"
	R["$key|rate"]+="$rate_d " R["$key|lost"]+="$lost " R["$key|cpu"]+="$cpu_us "
	R["$key|pub"]+="$pub_rate "
	[ "${t%-async}" = kite ] && [ "$missing" != "$reported" ] &&
		loss_mismatch+=("$key: $missing sequence numbers never arrived, Loss events said $reported")
	return 0
}

for ((rep = 1; rep <= BENCH_REPS; rep++)); do
	for c in "${cases[@]}"; do
		progress "run $rep/$BENCH_REPS: ${c%%:*}"
		for t in "${transports[@]}"; do one_run "$c" "$t"; done
	done
done

echo "kite Python binding vs pyzmq $($PY -c 'import zmq; print(zmq.__version__)') (libzmq" \
	"$($PY -c 'import zmq; print(zmq.zmq_version())')), Python $($PY -c 'import sys; print(sys.version.split()[0])')," \
	"64 B messages, 1 publisher -> 1 subscriber, $BENCH_REPS run(s) per case:"
echo "median [min..max]. Publisher on CPU 0, subscriber on CPU 1 (taskset)."
echo "kite        for m in h.messages()         (kite_recv(0), then kite_arm + poll(kite_fd))"
echo "kite-async  async for m in h.amessages()  (the same, the fd in asyncio's add_reader)"
echo "zmq         sock.recv() on a SUB socket   (default HWM 1000: drops silently when behind)"
echo "zmq-async   await sock.recv(), zmq.asyncio"
echo "The publisher is the same Python loop for all (kite: h.publish; zmq: XPUB send)."
echo "published = the publisher's rate; delivered = messages the subscriber got per"
echo "second, from the publisher's first send to its last delivery; lost % = share"
echo "of published messages the subscriber never got; sub CPU = the subscriber"
echo "process's CPU time (all threads) per delivered message, in microseconds."
table_cols 9 11 25 25 21 20
table_row "rate" "subscriber" "published" "delivered msg/s" "lost %" "sub CPU us/msg"
table_rule
for c in "${cases[@]}"; do
	name=${c%%:*}
	for t in "${transports[@]}"; do
		k="$name|$t"
		# shellcheck disable=SC2086
		table_row "$name" "$t" "$(cell fmt_si ${R[$k|pub]:-})" "$(cell fmt_si ${R[$k|rate]:-})" \
			"$(cell fmt_pct ${R[$k|lost]:-})" "$(cell fmt_us ${R[$k|cpu]:-})"
	done
done
echo
med() { [ -n "${1// /}" ] && stats $1 | cut -d' ' -f1; }
echo "Ratios of medians (kite / zmq; above 1: kite delivers more, or costs more CPU):"
for c in "${cases[@]}"; do
	name=${c%%:*}
	echo "  $name: delivered sync $(ratio "$(med "${R[$name|kite|rate]:-}")" "$(med "${R[$name|zmq|rate]:-}")")," \
		"async $(ratio "$(med "${R[$name|kite-async|rate]:-}")" "$(med "${R[$name|zmq-async|rate]:-}")");" \
		"sub CPU per message sync $(ratio "$(med "${R[$name|kite|cpu]:-}")" "$(med "${R[$name|zmq|cpu]:-}")")," \
		"async $(ratio "$(med "${R[$name|kite-async|cpu]:-}")" "$(med "${R[$name|zmq-async|cpu]:-}")")"
done
if [ ${#loss_mismatch[@]} -gt 0 ]; then
	echo "kite Loss reports that did not match the sequence gaps:"
	printf '  %s\n' "${loss_mismatch[@]}"
else
	echo "kite Loss reports matched the sequence gaps in every run."
fi
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed runs:"
	printf '  %s\n' "${failures[@]}"
	exit 1
fi
