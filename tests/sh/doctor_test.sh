#!/bin/bash
# kite doctor: its verdicts match the machine's values, and inside a network
# namespace of its own (so the host is never changed) every fix it prints
# for a per-namespace setting really fixes it.
. "$(dirname "$0")/lib.sh"
need python3:python3

"$KITE" doctor --json >"$tmpdir/host.json"; rc=$?
check "--json parses" bash -c "python3 -m json.tool '$tmpdir/host.json' >/dev/null"
check "exit 1 iff a problem is reported" python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); rc = int(sys.argv[2])
bad = [c for c in d["checks"] if not c["ok"]]
assert d["problems"] == len(bad) and rc == (1 if bad else 0), (rc, bad)
assert all(c["fix"] for c in bad), bad
' "$tmpdir/host.json" $rc
check "sysctl verdicts match /proc/sys" python3 -c '
import json, sys
d = {c["check"]: c for c in json.load(open(sys.argv[1]))["checks"]}
for name, want in (("net.core.rmem_max", 4194304), ("net.core.wmem_max", 4194304),
                   ("net.unix.max_dgram_qlen", 512)):
    try:
        v = open("/proc/sys/" + name.replace(".", "/")).read().strip()
    except OSError:
        continue
    c = d[name]
    assert c["value"] == v and c["ok"] == (int(v) >= want), (name, v, c)
    if not c["ok"]:
        assert c["fix"] == "sysctl -w %s=%d" % (name, want), c
' "$tmpdir/host.json"
"$KITE" doctor >"$tmpdir/host.txt"
check "text: one line per check" [ "$(grep -cE '^(ok|PROBLEM) ' "$tmpdir/host.txt")" -eq 8 ]
check "text: closing verdict" grep -qE '^(all good|[0-9]+ problems? found)$' "$tmpdir/host.txt"

if ! unshare -n true 2>/dev/null; then
	for n in "netns: exit 1 with problems" "netns: spoilt settings and missing multicast reported" \
		"netns: every printed fix fixes its check"; do
		skip "$n" "cannot unshare -n here"
	done
else
	# In a fresh namespace lo is down and nothing routes multicast; spoil
	# two per-namespace sysctls as well. Then apply each printed fix that
	# concerns this namespace only, and ask again.
	unshare -n bash -c '
		sysctl -qw net.unix.max_dgram_qlen=5
		sysctl -qw net.ipv4.ping_group_range="1 0"
		"$0" doctor --json > "$1/before.json"; echo $? > "$1/before.rc"
		python3 -c "
import json, sys
for c in json.load(open(sys.argv[1]))[\"checks\"]:
    f = c[\"fix\"] or \"\"
    if f.startswith((\"sysctl -w net.unix.\", \"sysctl -w net.ipv4.ping_group_range\", \"ip \")):
        print(f)
" "$1/before.json" > "$1/fixes"
		while IFS= read -r fix; do eval "$fix" >/dev/null; done < "$1/fixes"
		"$0" doctor --json > "$1/after.json"
	' "$KITE" "$tmpdir"
	check "netns: exit 1 with problems" [ "$(cat "$tmpdir/before.rc")" = 1 ]
	check "netns: spoilt settings and missing multicast reported" python3 -c '
import json, sys
d = {c["check"]: c for c in json.load(open(sys.argv[1]))["checks"]}
for n in ("net.unix.max_dgram_qlen", "net.ipv4.ping_group_range", "multicast-interface", "multicast-route"):
    assert not d[n]["ok"] and d[n]["fix"], d[n]
assert d["net.unix.max_dgram_qlen"]["value"] == "5"
' "$tmpdir/before.json"
	check "netns: every printed fix fixes its check" python3 -c '
import json, sys
d = {c["check"]: c for c in json.load(open(sys.argv[1]))["checks"]}
for n in ("net.unix.max_dgram_qlen", "net.ipv4.ping_group_range", "multicast-interface", "multicast-route"):
    assert d[n]["ok"], d[n]
' "$tmpdir/after.json"
fi

# Every fix needs root: a user who is not root is told so; root is not.
if unshare -n true 2>/dev/null && id nobody >/dev/null 2>&1; then
	chmod 0711 "$tmpdir"; cp "$KITE" "$tmpdir/kite"; chmod 0755 "$tmpdir/kite"
	unshare -n sh -c 'sysctl -qw net.ipv4.ping_group_range="1 0"
		"$0" doctor > "$1/root.txt"; "$0" doctor --json > "$1/root.json"
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$0" doctor > "$1/user.txt"
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$0" doctor --json > "$1/user.json"' \
		"$tmpdir/kite" "$tmpdir"
	check "not root: the fix says it needs root" grep -q '^ *fix (as root): sysctl -w net.ipv4.ping_group_range=' "$tmpdir/user.txt"
	check "root: the fix as it is" bash -c "grep -q '^ *fix: sysctl -w net.ipv4.ping_group_range=' '$tmpdir/root.txt' && ! grep -q 'as root' '$tmpdir/root.txt'"
	check "JSON: fix_as_root for a user, not for root" python3 -c '
import json, sys
u = {c["check"]: c for c in json.load(open(sys.argv[1]))["checks"]}
r = {c["check"]: c for c in json.load(open(sys.argv[2]))["checks"]}
n = "net.ipv4.ping_group_range"
assert u[n]["fix_as_root"] is True and r[n]["fix_as_root"] is False, (u[n], r[n])
' "$tmpdir/user.json" "$tmpdir/root.json"
else
	skip "fixes say they need root" "cannot unshare -n here, or no user nobody"
fi

"$KITE" doctor --bogus >/dev/null 2>&1; check "bad option: exit 100" [ $? -eq 100 ]
"$KITE" doctor extra >/dev/null 2>&1; check "stray argument: exit 100" [ $? -eq 100 ]
"$KITE" doctor --help | grep -q '^Usage: kite doctor'; check "--help on stdout" [ $? -eq 0 ]
