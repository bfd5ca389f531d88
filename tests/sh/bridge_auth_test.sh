#!/bin/bash
# kite bridge's credentials and TLS, passed through to libnats, against real
# nats-servers this test starts on 127.0.0.1 and stops by pid: user and
# password (from a file, never on the command line), token (from a file),
# and TLS with a CA the test makes (and a wrong CA refused). Each accepted
# setup carries one message from `kite pub` to a NATS subscriber.
. "$(dirname "$0")/lib.sh"
need nats-server:nats-server openssl:openssl
build=$(dirname "$KITE")
TOOL=$build/tests/programs/nats_tool
if [ ! -x "$build/kite-bridge" ] || [ ! -x "$TOOL" ]; then
	skip "$(basename "$0")" "kite-bridge not built (needs libnats-dev, see tests/deps.txt)"
	exit 0
fi

start_server() { # ARGS...: nats-server on a port it picks; sets ns_pid, port
	local log=$tmpdir/nats.$RANDOM.log
	spawn nats-server -a 127.0.0.1 -p -1 -l "$log" "$@"
	ns_pid=$LAST_PID
	wait_for 30 grep -qs 'Listening for client connections on' "$log" || return 1
	port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$log" | head -1)
}
# carry NAME SUB_URL BRIDGE_ARGS...: a bridge exporting a.>, one kite pub,
# the NATS subscriber (SUB_URL, its credentials in the URL) must get it.
carry() {
	local name=$1 sub_url=$2; shift 2
	: >"$tmpdir/$name.out"
	spawn "$TOOL" sub "$sub_url" 'a.>' 1 60000 >"$tmpdir/$name.out" 2>"$tmpdir/$name.sub"
	local sub=$LAST_PID
	wait_for 30 grep -q ready "$tmpdir/$name.sub" || return 1
	spawn "$KITE" bridge --bus "$KITE_BUS-$name" --stats-interval 0 "$@" --export 'a.>' \
		2>"$tmpdir/$name.err"
	local br=$LAST_PID
	wait_for 30 grep -q 'kite bridge: ready' "$tmpdir/$name.err" || return 1
	"$KITE" pub --bus "$KITE_BUS-$name" a.b "via-$name"
	wait "$sub"
	kill -TERM "$br"; wait "$br"
	grep -q "	via-$name\$" "$tmpdir/$name.out"
}

printf 's3cret\n' >"$tmpdir/pass"; chmod 600 "$tmpdir/pass"
start_server --user kiteuser --pass s3cret
check "user + --password-file: the server accepts the bridge" \
	carry user "nats://kiteuser:s3cret@127.0.0.1:$port" "nats://127.0.0.1:$port" --user kiteuser --password-file "$tmpdir/pass"
printf 'wrong\n' >"$tmpdir/bad"
timeout 20 "$KITE" bridge --bus "$KITE_BUS-w" --stats-interval 0 "nats://127.0.0.1:$port" \
	--user kiteuser --password-file "$tmpdir/bad" --export 'a.>' 2>"$tmpdir/w.err"
check "a wrong password: exit 111 at once, saying why (not retried for ever)" \
	bash -c "[ $? = 111 ] && grep -qi 'cannot connect.*authoriz' '$tmpdir/w.err'"
"$KITE" bridge "nats://127.0.0.1:$port" --user kiteuser --password-file "$tmpdir/none" -e a >/dev/null 2>"$tmpdir/nf.err"
check "a missing password file: exit 111, naming it" \
	bash -c "[ $? = 111 ] && grep -q '$tmpdir/none' '$tmpdir/nf.err'"
kill -TERM "$ns_pid"; wait "$ns_pid" 2>/dev/null

printf 'tok-123\n' >"$tmpdir/token"
start_server --auth tok-123
check "--token-file: the server accepts the bridge" \
	carry token "nats://tok-123@127.0.0.1:$port" "nats://127.0.0.1:$port" --token-file "$tmpdir/token"
kill -TERM "$ns_pid"; wait "$ns_pid" 2>/dev/null

# TLS: a CA, a server certificate for 127.0.0.1 signed by it, and another CA.
(cd "$tmpdir" &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=kite-test-ca &&
	openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 &&
	printf 'subjectAltName=IP:127.0.0.1\n' >ext &&
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 1 -extfile ext &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 1 -subj /CN=other-ca
) >/dev/null 2>&1
check "test certificates made" test -s "$tmpdir/srv.pem"
start_server --tls --tlscert "$tmpdir/srv.pem" --tlskey "$tmpdir/srv.key"
# nats_tool speaks plain NATS: the subscriber side here is a second bridge
# importing a.> over TLS onto another bus, read with kite sub.
spawn "$KITE" bridge --bus "$KITE_BUS-tlsin" --stats-interval 0 "tls://127.0.0.1:$port" \
	--tls-ca "$tmpdir/ca.pem" --import 'a.>' 2>"$tmpdir/tlsin.err"; tin=$LAST_PID
wait_for 30 grep -q 'kite bridge: ready' "$tmpdir/tlsin.err"
spawn "$KITE" sub -v --bus "$KITE_BUS-tlsin" --count 1 --timeout 60 'a.>' >"$tmpdir/tls.out" 2>"$tmpdir/tls.sub"; ts=$LAST_PID
wait_for 30 grep -q 'kite sub: subscribed' "$tmpdir/tls.sub"
spawn "$KITE" bridge --bus "$KITE_BUS-tlsout" --stats-interval 0 "nats://127.0.0.1:$port" \
	--tls-ca "$tmpdir/ca.pem" --export 'a.>' 2>"$tmpdir/tlsout.err"; tout=$LAST_PID
wait_for 30 grep -q 'kite bridge: ready' "$tmpdir/tlsout.err"
sleep 0.5
"$KITE" pub --bus "$KITE_BUS-tlsout" a.b via-tls
wait $ts
check "TLS both ways (--tls-ca, tls:// and implied by --tls-ca): the message arrives" \
	grep -q 'origin=nats:a.b .*via-tls$' "$tmpdir/tls.out"
kill -TERM $tin $tout; wait $tin $tout 2>/dev/null
timeout 20 "$KITE" bridge --bus "$KITE_BUS-bad" --stats-interval 0 "tls://127.0.0.1:$port" \
	--tls-ca "$tmpdir/other.pem" --export 'a.>' 2>"$tmpdir/badca.err"
check "a server certificate from another CA is refused: exit 111, saying why" \
	bash -c "[ $? = 111 ] && grep -q 'cannot connect' '$tmpdir/badca.err' && ! grep -q ready '$tmpdir/badca.err'"
"$KITE" bridge "tls://127.0.0.1:$port" --tls-ca "$tmpdir/none.pem" -e a >/dev/null 2>"$tmpdir/nca.err"
check "a missing CA file: exit 111" [ $? = 111 ]
