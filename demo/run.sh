#!/bin/bash
# make demo: kite on this machine, no setup. One process publishes this
# host's live CPU, memory, load and network figures; another, started
# first, subscribes with a pattern and prints them. Both print their counts.
set -eu
KITE=${1:-build/kite}
export KITE_BUS="demo-$$"   # a private bus: nothing else on the machine hears it
rounds=8
echo "kite demo: a subscriber to 'host.*.>' starts first, then a publisher of"
echo "this host's figures from /proc joins and publishes $rounds rounds, 0.5 s apart."
echo "Each line: channel, the publisher's pid and uid as the kernel vouches"
echo "for them (SO_PEERCRED), its sequence number, and the payload."
echo
"$KITE" sub --stats --exit-when-gone --timeout 30 'host.*.>' &
sub=$!
trap 'kill $sub 2>/dev/null || true' EXIT
sleep 0.3
"$KITE" hoststats --interval 0.5 --count $rounds --stats
wait $sub
trap - EXIT
echo
echo "kite demo: done. Published = received + lost (kite never hides a loss)."
