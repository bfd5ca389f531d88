#!/bin/bash
# kite fifo: real files, real decompressors, a real PostgreSQL server.
. "$(dirname "$0")/lib.sh"
need xz-utils:xz zstd:zstd

d=$tmpdir
chmod 0711 "$d" # other users (nobody, postgres) reach the pipes' folders
# kite's pipes go into a folder of their own, to see that nothing is left.
export TMPDIR=$d/run
mkdir -p "$TMPDIR"
leftovers() { [ -z "$(ls -A "$TMPDIR")" ]; }
# rc_says CODE PATTERN: the last command exited CODE ($rc) and said PATTERN.
rc_says() { [ "$rc" -eq "$1" ] && grep -q -- "$2" "$d/err"; }

# Inputs: plain binary, gzip, xz, zstd; the expected bytes in $d/all.
head -c 300000 /dev/urandom >"$d/f1"
seq 1 100000 >"$d/f2"; gzip -k "$d/f2"
seq 7 200000 >"$d/f3"; xz -k "$d/f3"
seq 3 50000 >"$d/f4"; zstd -q -k "$d/f4"
cat "$d/f1" "$d/f2" "$d/f3" "$d/f4" >"$d/all"
want=$(stat -c %s "$d/all")

# --help and usage errors
out=$("$KITE" fifo --help); rc=$?
check "--help prints usage, exit 0" [ $rc -eq 0 -a "${out#Usage: kite fifo}" != "$out" ]
"$KITE" fifo "$d/f1" 2>"$d/err"; rc=$?
check "missing -- is a usage error (100)" rc_says 100 "Try 'kite fifo --help'"
"$KITE" fifo -- cat '{}' 2>/dev/null
check "no FILE is a usage error" [ $? -eq 100 ]
"$KITE" fifo "$d/f1" -- 2>/dev/null
check "no COMMAND is a usage error" [ $? -eq 100 ]
"$KITE" fifo --mode 999 "$d/f1" -- cat '{}' 2>/dev/null
check "bad --mode is a usage error" [ $? -eq 100 ]
"$KITE" fifo --owner no-such-user-kite "$d/f1" -- cat '{}' 2>/dev/null
check "unknown --owner is a usage error" [ $? -eq 100 ]

# (a) byte count through wc -c, every codec, in order
out=$("$KITE" fifo "$d/f1" "$d/f2.gz" "$d/f3.xz" "$d/f4.zst" -- sh -c 'wc -c < {}' 2>"$d/err"); rc=$?
check "wc -c counts exactly the decompressed bytes ($want)" [ $rc -eq 0 -a "$out" = "$want" ]
check "no progress line when stderr is not a terminal" [ ! -s "$d/err" ]
"$KITE" fifo "$d/f1" "$d/f2.gz" "$d/f3.xz" "$d/f4.zst" -- sh -c 'cat {}' >"$d/got"
check "bytes arrive unchanged and in order" cmp -s "$d/got" "$d/all"

# compression is told by magic bytes, never by name
cp "$d/f2.gz" "$d/looks-plain.txt"; cp "$d/f4" "$d/looks-compressed.xz"
"$KITE" fifo "$d/looks-plain.txt" "$d/looks-compressed.xz" -- cat '{}' >"$d/got"
check "magic bytes decide, not the file name" cmp -s "$d/got" <(cat "$d/f2" "$d/f4")

# standard input: a pipe (cannot seek back over the sniffed bytes), plain and compressed
cat "$d/f3.xz" | "$KITE" fifo "$d/f1" - "$d/f2.gz" -- cat '{}' >"$d/got"
check "compressed stdin from a pipe" cmp -s "$d/got" <(cat "$d/f1" "$d/f3" "$d/f2")
cat "$d/f1" | "$KITE" fifo - -- cat '{}' >"$d/got"
check "plain stdin from a pipe" cmp -s "$d/got" "$d/f1"
seq 1 1000 | "$KITE" fifo - -- sh -c 'cat; cat {}' >"$d/got"
check "with '-' among the FILEs, COMMAND's own stdin is empty" cmp -s "$d/got" <(seq 1 1000)
"$KITE" fifo - -- cat '{}' <"$d/f4.zst" >"$d/got"
check "compressed stdin from a file" cmp -s "$d/got" "$d/f4"
printf ab | "$KITE" fifo - -- cat '{}' >"$d/got"
check "stdin shorter than the magic numbers" [ "$(cat "$d/got")" = ab ]
: >"$d/empty"
out=$("$KITE" fifo "$d/empty" -- sh -c 'wc -c < {}'); rc=$?
check "an empty file gives COMMAND an empty stream" [ $rc -eq 0 -a "$out" = 0 ]
"$KITE" fifo - - -- cat '{}' </dev/null 2>/dev/null
check "stdin twice is a usage error" [ $? -eq 100 ]

# {} everywhere in the arguments, and $KITE_FIFO
out=$("$KITE" fifo "$d/empty" -- sh -c 'test "{}" = "$KITE_FIFO" && test -p {} && echo "x{}x{}"; cat {}')
substituted() { [[ $out == x$TMPDIR/kite-fifo.*/fifox$TMPDIR/kite-fifo.*/fifo ]]; }
check "every {} is replaced and KITE_FIFO names the pipe" substituted

# (b) corrupt and truncated input: an error, never a silent short load
head -c 20000 "$d/f2.gz" >"$d/trunc.gz"
out=$("$KITE" fifo "$d/trunc.gz" -- sh -c 'wc -c < {}' 2>"$d/err"); rc=$?
check "truncated gzip: exit 125" [ $rc -eq 125 ]
check "truncated gzip: says the input is corrupt" grep -q "trunc.gz: 'gzip -dc' failed.*corrupt or truncated" "$d/err"
cp "$d/f3.xz" "$d/bad.xz"
printf 'XXXX' | dd of="$d/bad.xz" bs=1 seek=$(($(stat -c %s "$d/f3.xz") / 2)) conv=notrunc 2>/dev/null
"$KITE" fifo "$d/f1" "$d/bad.xz" "$d/f2" -- sh -c 'cat {} >/dev/null' 2>"$d/err"; rc=$?
check "corrupt xz in the middle: exit 125" rc_says 125 "bad.xz: 'xz -dc' failed"
head -c 5000 "$d/f4.zst" >"$d/trunc.zst"
"$KITE" fifo "$d/trunc.zst" -- cat '{}' >/dev/null 2>"$d/err"; rc=$?
check "truncated zstd: exit 125" rc_says 125 "'zstd -dc' failed"
# COMMAND is stopped before it could take the cut for a clean end of input
"$KITE" fifo "$d/trunc.gz" -- sh -c 'cat {} >/dev/null; echo finished >'"$d/flag" 2>/dev/null
check "COMMAND never sees a clean end after a failed input" [ ! -e "$d/flag" ]

# (c) COMMAND's status is kite's
"$KITE" fifo "$d/f1" -- sh -c 'cat {} >/dev/null; exit 7'
check "COMMAND's exit status is propagated" [ $? -eq 7 ]
"$KITE" fifo "$d/f1" -- sh -c 'cat {} >/dev/null; kill -KILL $$'
check "COMMAND killed by a signal: 128+9" [ $? -eq 137 ]
"$KITE" fifo "$d/f1" -- no-such-command-kite '{}' 2>/dev/null
check "COMMAND not found: 127" [ $? -eq 127 ]

# COMMAND that never opens the pipe, or stops reading early
"$KITE" fifo "$d/f1" -- sh -c 'exit 0' 2>"$d/err"; rc=$?
check "COMMAND exits 0 without opening the pipe: 125" rc_says 125 "without opening the pipe"
"$KITE" fifo "$d/f1" -- sh -c 'exit 3' 2>/dev/null
check "COMMAND fails without opening the pipe: its status" [ $? -eq 3 ]
"$KITE" fifo "$d/f1" "$d/f2.gz" -- head -c 10 '{}' >/dev/null 2>"$d/err"; rc=$?
check "COMMAND stops reading early: 125 and a message" rc_says 125 "stopped reading"
"$KITE" fifo "$d/f1" -- sh -c 'head -c 10 {} >/dev/null; exit 4' 2>"$d/err"; rc=$?
check "COMMAND stops reading and fails: its status" rc_says 4 "stopped reading"

# (d) the pipe and its folder are gone afterwards, whatever happened
check "nothing left after success and failures" leftovers
# COMMANDs of the background cases write their pids into $d/pidN; a file
# is removed once its process is seen gone, so only a process that is still
# ours (the test failed half-way) is killed at exit.
at_exit 'for f in "$d"/pid?; do kill -KILL "$(cat "$f")"; done'
gone() { wait_for 30 sh -c "! kill -0 $(cat "$1") 2>/dev/null" && rm -f "$1"; }
# sigterm_kite LABEL PIDFILE: send SIGTERM to kite ($kpid), whose COMMAND
# wrote its pid to PIDFILE: exit 143, COMMAND got the signal, nothing left.
sigterm_kite() {
	local rc
	kill -TERM "$kpid"; wait "$kpid"; rc=$?
	check "SIGTERM $1: exit 143" [ $rc -eq 143 ]
	check "SIGTERM $1: COMMAND got it" gone "$2"
	check "SIGTERM $1: nothing left" leftovers
}
# SIGTERM before COMMAND opens the pipe: forwarded, cleaned up
spawn "$KITE" fifo "$d/f1" -- sh -c 'echo $$ >'"$d/pid1"'; exec sleep 120'
kpid=$LAST_PID
wait_for 60 test -s "$d/pid1"
wait_for 60 sh -c "ls $TMPDIR/kite-fifo.*/fifo" >/dev/null 2>&1
check "the pipe exists while COMMAND runs" sh -c "test -p $TMPDIR/kite-fifo.*/fifo"
sigterm_kite "before the open" "$d/pid1"
# SIGTERM during the load (COMMAND holds the pipe open and reads slowly)
spawn "$KITE" fifo /dev/zero -- sh -c 'echo $$ >'"$d/pid2"'; exec 3<{}; head -c 1000 <&3 >/dev/null; exec sleep 120'
kpid=$LAST_PID
wait_for 60 test -s "$d/pid2"
wait_for 60 sh -c "grep -q '^State:.*S' /proc/$(cat "$d/pid2")/status && readlink /proc/$(cat "$d/pid2")/exe | grep -q sleep"
sigterm_kite "during the load" "$d/pid2"
# even SIGKILL leaves nothing once COMMAND has opened the pipe
spawn "$KITE" fifo /dev/zero -- sh -c 'echo $$ >'"$d/pid3"'; exec 3<{}; exec sleep 120'
kpid=$LAST_PID
wait_for 60 sh -c "test -s $d/pid3 && readlink /proc/\$(cat $d/pid3)/exe | grep -q sleep"
wait_for 60 leftovers
kill -KILL $kpid; wait $kpid 2>/dev/null
kill -TERM "$(cat "$d/pid3")" 2>/dev/null
gone "$d/pid3"
check "SIGKILL during the load: nothing left" leftovers

# a missing decompressor: one clear sentence, nothing run
mkdir "$d/bin"
for t in sh cat; do ln -s "$(command -v $t)" "$d/bin/$t"; done
PATH=$d/bin "$KITE" fifo "$d/f3.xz" -- cat '{}' >/dev/null 2>"$d/err"; rc=$?
check "missing xz program: exit 111 and why" rc_says 111 "the 'xz' program is not installed"
"$KITE" fifo "$d/no-such-file" -- sh -c 'echo ran >'"$d/flag2"'; cat {}' 2>"$d/err"; rc=$?
check "missing FILE: exit 111" rc_says 111 "no-such-file: No such file"
check "missing FILE: COMMAND not run" [ ! -e "$d/flag2" ]

# permissions: private by default, widened only when asked
out=$("$KITE" fifo "$d/empty" -- sh -c 'stat -c "%a %U" {} "$(dirname {})"; cat {}' | tr '\n' ' ')
check "default: pipe 0600 in a 0700 folder ($out)" [ "$out" = "600 $me 700 $me " ]
out=$("$KITE" fifo --mode 0644 "$d/empty" -- sh -c 'stat -c "%a" {} "$(dirname {})"; cat {}' | tr '\n' ' ')
check "--mode 0644: pipe 0644, folder search-only 0711 ($out)" [ "$out" = "644 711 " ]
if is_root && id nobody >/dev/null 2>&1; then
	out=$("$KITE" fifo --owner nobody "$d/empty" -- sh -c 'stat -c "%a %U" {} "$(dirname {})"; cat {}' | tr '\n' ' ')
	check "--owner nobody: pipe and folder given to nobody ($out)" [ "$out" = "600 nobody 700 nobody " ]
	out=$("$KITE" fifo --owner nobody "$d/f2.gz" -- setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c 'wc -c < {}' 2>&1)
	check "--owner nobody: nobody reads the pipe" [ "$out" = "$(stat -c %s "$d/f2")" ]
else
	skip "--owner nobody: pipe and folder given to nobody" "needs root and a user nobody"
	skip "--owner nobody: nobody reads the pipe" "needs root and a user nobody"
fi

# --progress forces the progress line off a terminal
"$KITE" fifo --progress "$d/f1" "$d/f2.gz" -- sh -c 'cat {} >/dev/null' 2>"$d/err"
check "--progress prints the final state with 100%" grep -q "kite fifo: .*100%" "$d/err"
check "nothing left at the end" leftovers

# (e) PostgreSQL: COPY ... FROM '{}' read by the server itself
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] || ! command -v psql >/dev/null; then
	skip "PostgreSQL COPY through the pipe" "no PostgreSQL server (tests/deps.txt: postgresql)"
	exit 0
fi
if ! is_root; then # runuser to the server's user, and --owner
	skip "PostgreSQL COPY through the pipe" "needs root to run the server as its own user"
	exit 0
fi
pguser=postgres
id "$pguser" >/dev/null 2>&1 || pguser=nobody
as_pg() { runuser -u "$pguser" -- "$@"; }
pg=$d/pg
mkdir -p "$pg/sock"
chown -R "$pguser" "$pg"
at_exit "runuser -u $pguser -- $pgbin/pg_ctl -D $pg/data -m immediate -w -t 60 stop"
if ! as_pg "$pgbin/initdb" -N -D "$pg/data" -U postgres -A trust >"$pg/initdb.log" 2>&1; then
	not_ok "PostgreSQL: initdb" "$(tail -n 3 "$pg/initdb.log" | tr '\n' ' ')"
	exit 1
fi
if ! as_pg "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/server.log" -w -t 120 \
	-o "-c listen_addresses='' -k $pg/sock -c fsync=off" start >/dev/null; then
	not_ok "PostgreSQL: server start" "$(tail -n 3 "$pg/server.log" | tr '\n' ' ')"
	exit 1
fi
ok "PostgreSQL: a private server on a Unix socket in the test folder"
sql() { psql -X -q -t -A -h "$pg/sock" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
sql -c "CREATE TABLE t (id int, name text)"
seq 1 50000 | awk '{print $1 ",row " $1}' | gzip >"$d/rows.csv.gz"

"$KITE" fifo "$d/rows.csv.gz" -- psql -X -q -h "$pg/sock" -U postgres -d postgres \
	-v ON_ERROR_STOP=1 -c "COPY t FROM '{}' CSV" >/dev/null 2>"$d/err"; rc=$?
check "PostgreSQL: the server cannot open a private pipe (psql's status 1)" \
	rc_says 1 "without opening the pipe"
check "PostgreSQL: so no rows" [ "$(sql -c 'SELECT count(*) FROM t')" = 0 ]

"$KITE" fifo --owner "$pguser" "$d/rows.csv.gz" -- psql -X -q -h "$pg/sock" -U postgres \
	-d postgres -v ON_ERROR_STOP=1 -c "COPY t FROM '{}' CSV"; rc=$?
check "PostgreSQL: COPY FROM the pipe with --owner $pguser" [ $rc -eq 0 ]
check "PostgreSQL: 50000 rows" [ "$(sql -c 'SELECT count(*), sum(id) FROM t')" = "50000|1250025000" ]

"$KITE" fifo --mode 0644 "$d/rows.csv.gz" -- psql -X -q -h "$pg/sock" -U postgres \
	-d postgres -v ON_ERROR_STOP=1 -c "COPY t FROM '{}' CSV"; rc=$?
check "PostgreSQL: COPY FROM the pipe with --mode 0644" [ $rc -eq 0 ]
check "PostgreSQL: 100000 rows" [ "$(sql -c 'SELECT count(*) FROM t')" = 100000 ]

# psql's own \copy reads the pipe in psql: a corrupt file kills psql
# mid-COPY, so the server rolls the whole COPY back.
head -c 100000 "$d/rows.csv.gz" >"$d/rows-trunc.csv.gz"
"$KITE" fifo "$d/rows-trunc.csv.gz" -- psql -X -q -h "$pg/sock" -U postgres \
	-d postgres -v ON_ERROR_STOP=1 -c "\\copy t FROM '{}' CSV" 2>"$d/err"; rc=$?
check "PostgreSQL: truncated dump through \\copy: exit 125" [ $rc -eq 125 ]
check "PostgreSQL: truncated dump: not one row committed" [ "$(sql -c 'SELECT count(*) FROM t')" = 100000 ]
check "PostgreSQL: nothing left" leftovers
as_pg "$pgbin/pg_ctl" -D "$pg/data" -m fast -w -t 60 stop >/dev/null
check "PostgreSQL: server stopped" [ $? -eq 0 ]
