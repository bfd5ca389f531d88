#!/bin/bash
# Every SYNOPSIS line of every man page, run as written: each form with no
# optional part, then with each optional part (each alternative of a
# choice) in the place the synopsis gives it. None may be a usage error
# (exit 100, "Try 'kite ... --help'") or run an option as the command
# (126/127). Placeholders take the values below;
# a placeholder missing here fails the test, so a new synopsis is never
# skipped silently. Everything runs in a network namespace of its own
# (loopback only, ICMP sockets allowed), at most 2 s a form: one that
# would run on (a server, a subscriber) is stopped then, which is fine.
. "$(dirname "$0")/lib.sh"
man=$(cd "$(dirname "$0")/../.." && pwd)/docs/man
if ! command -v groff >/dev/null || [ ! -x /usr/bin/python3 ]; then
	skip "SYNOPSIS forms run" "needs groff and /usr/bin/python3"; exit 0
fi
if ! unshare -n true 2>/dev/null; then
	skip "SYNOPSIS forms run" "cannot unshare -n"; exit 0
fi
echo "a,b" >"$tmpdir/in.txt"
: >"$tmpdir/statsd.conf"
N="t$$"
# placeholder values: "command placeholder" -> words
cat >"$tmpdir/values" <<V
* bus $KITE_BUS
* seconds 0.5
* S 0.5
* count 1
bridge nats://host:port nats://127.0.0.1:9
bridge pattern $N.>
bridge p site1
* TARGET udp:9
* iface[,options] lo
* --kill[=SIGNAL] --kill=TERM
fifo mode 0600
fifo user[:group] root:root
fifo file $tmpdir/in.txt
fifo command cat
fifo arg {}
hoststats rounds 1
hoststats prefix $N
lock NAME $N-lock
ls NAME $KITE_BUS
ls SECS 0.5
ls PATTERN $N.>
lock CODE 75
lock COMMAND true
lock ARG x
ping interval 0.2
ping timeout 1
ping host 127.0.0.1
ports PORT 9
pub channel $N.x
pub message hi
pub bytes 64K
serve name $N-serve
serve spec tcp:127.0.0.1:0
serve command sleep
serve arg 2
serve user root
statsd file $tmpdir/statsd.conf
statsd host:port|off 127.0.0.1:0
statsd name|off off
statsd path $tmpdir/statsd.sock
statsd name stats.$N
statsd host:port 127.0.0.1:9
statsd on|off on
statsd on|off|bounds 0.1,1
sub pattern $N.>
sub ms 1000
top NAME $KITE_BUS
top SECS 0.5
top N 1
top rate lag
top PATTERN $N.>
top HOST:PORT 127.0.0.1:0
V
# One form a line: "LABEL<TAB>ARGV words separated by US (0x1f)".
for page in "$man"/kite*.[1-8]; do
	LC_ALL=C.UTF-8 groff -man -Tutf8 -rLL=2000n -rHY=0 -P-cbou "$page" 2>/dev/null |
		awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' | sed 's/^ *//' | grep .
done | /usr/bin/python3 -c '
import sys
values = {}
for line in open(sys.argv[1]):
    cmd, ph, val = line.rstrip("\n").split(" ", 2)
    values[(cmd, ph)] = val

def parse(s, i=0, depth=0):
    """Items until "]" (depth > 0) or the end: ("w", word) or
    ("opt", [alternative items...]). Returns (items, i)."""
    items, alts = [], []
    while i < len(s):
        c = s[i]
        if c == " ":
            i += 1
        elif c == "[" :
            group, i = parse(s, i + 1, depth + 1)
            items.append(("opt", group))
        elif c == "]" and depth:
            alts.append(items)
            return alts, i + 1
        elif c == "|" and depth:
            alts.append(items); items = []; i += 1
        else:
            j, b = i, 0
            # "|" in a word splits options ("-q|-p"), not values ("host:port|off")
            while j < len(s) and s[j] != " " and not (b == 0 and depth and
                    (s[j] == "]" or (s[j] == "|" and s[i] == "-" and s[j + 1:j + 2] == "-"))):
                b += s[j] == "["; b -= s[j] == "]" and b > 0
                j += 1
            items.append(("w", s[i:j])); i = j
    if depth:
        alts.append(items)
        return alts, i
    return items, i

def words(items, cmd, chosen):
    out = []
    for k, (kind, x) in enumerate(items):
        if kind == "opt":
            if k in chosen:
                out += words(x[chosen[k]], cmd, {})
            continue
        w = x.rstrip(".")
        if not w or w in ("options", "OPTIONS", "option"):
            continue
        if "|" in w and (w.startswith("-") or w[0].islower()) and (cmd, w) not in values and ("*", w) not in values:
            w = w.split("|")[0]
        if w.startswith("-") and (cmd, w) not in values and ("*", w) not in values or w in ("kite", cmd, "status", "reload", "stop"):
            out.append(w)
        elif (cmd, w) in values:
            out += values[(cmd, w)].split(" ")
        elif ("*", w) in values:
            out += values[("*", w)].split(" ")
        else:
            out.append("UNKNOWN-PLACEHOLDER:" + w)
    return out

for line in sys.stdin:
    line = line.strip()
    if not line.startswith("kite ") or line.startswith("kite COMMAND"):
        continue
    items, _ = parse(line)
    cmd = items[1][1] if len(items) > 1 and items[1][0] == "w" else ""
    if cmd.startswith("-"):
        cmd = ""
    top = [k for k, (kind, _) in enumerate(items) if kind == "opt"]
    forms = [{}] + [{k: a} for k in top for a in range(len(items[k][1]))]
    # a choice of verbs ("reload|stop") runs each of them
    verbs = [w for kind, w in items if kind == "w" and "|" in w and w[0].islower() and (cmd, w) not in values]
    seen = set()
    for f in forms:
        argv = words(items, cmd, f)
        if tuple(argv) in seen:
            continue
        seen.add(tuple(argv))
        if verbs and verbs[0].split("|")[0] in argv:
            for v in verbs[0].split("|"):
                a = [v if x == verbs[0].split("|")[0] else x for x in argv]
                print(line + "\t" + "\x1f".join(a[1:]))
        elif line.startswith("kite --help"):
            for v in ("--help", "--version"):
                print(line + "\t" + v)
            break
        else:
            print(line + "\t" + "\x1f".join(argv[1:]))
' "$tmpdir/values" >"$tmpdir/forms"
check "SYNOPSIS lines found in every page" [ "$(cut -f1 "$tmpdir/forms" | sort -u | wc -l)" -ge 15 ]
while IFS=$'\t' read -r label form; do
	IFS=$'\x1f' read -r -a argv <<<"$form"
	shown="kite ${argv[*]}"
	if [[ "$form" == *UNKNOWN-PLACEHOLDER* ]]; then
		not_ok "[$label] $shown" "a placeholder without a value in this test"; continue
	fi
	unshare -n env KITE="$KITE" sh -c 'ip link set lo up
		sysctl -q -w net.ipv4.ping_group_range="0 2147483647"
		cd "$0" && exec timeout -k 1 2 "$KITE" "$@"' "$tmpdir" "${argv[@]}" \
		</dev/null >"$tmpdir/out" 2>"$tmpdir/err"
	rc=$?
	# 126/127: an option taken for the command to run (every command
	# named here exists), as "kite lock NAME --wait -- true" once did.
	if [ $rc -ne 100 ] && [ $rc -ne 126 ] && [ $rc -ne 127 ] && ! grep -q "Try 'kite" "$tmpdir/err"; then
		ok "[$label] $shown (exit $rc)"
	else
		not_ok "[$label] $shown" "exit $rc: $(head -1 "$tmpdir/err")"
	fi
done <"$tmpdir/forms"
