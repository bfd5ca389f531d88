/* kite serve's parsers and the hand-off API, with hostile inputs:
 * notify datagrams (a table of edge cases), and kite_handoff_accept() fed
 * malformed messages over a real socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "handoff_send.h"
#include "kite.h"
#include "notify_msg.h"
#include "rawpeer.h"
#include "serve/serve.h"

static void test_notify_table(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len; /* 0: strlen */
		int rc, ready, stopping;
		const char *status; /* NULL: no STATUS= */
		unsigned malformed;
	} cases[] = {
		{"READY=1", 0, 0, 1, 0, NULL, 0},
		{"READY=1\n", 0, 0, 1, 0, NULL, 0},
		{"READY=0", 0, 0, 0, 0, NULL, 0},
		{"READY=11", 0, 0, 0, 0, NULL, 0},
		{"READY=1 ", 0, 0, 0, 0, NULL, 0},
		{"ready=1", 0, 0, 0, 0, NULL, 1},
		{"READY", 0, 0, 0, 0, NULL, 1},
		{"=1", 0, 0, 0, 0, NULL, 1},
		{"STATUS=up\nSTOPPING=1", 0, 0, 0, 1, "up", 0},
		{"STATUS=", 0, 0, 0, 0, "", 0},
		{"STATUS=a\nSTATUS=b", 0, 0, 0, 0, "b", 0},
		{"STATUS=\x01x\x7f\xc3\xa9", 0, 0, 0, 0, "?x???", 0},
		{"\n\n\nREADY=1\n\n", 0, 0, 1, 0, NULL, 0},
		{"MAINPID=1\nWATCHDOG=1\nREADY=1", 0, 0, 1, 0, NULL, 0},
		{"READY=1\0STOPPING=1", 18, -1, 0, 0, NULL, 0},
		{"", 0, -1, 0, 0, NULL, 0},
		{"RE\nADY=1", 0, 0, 0, 0, NULL, 1},
		{"READY=1", 5, 0, 0, 0, NULL, 1}, /* length bounds the read */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct notify_msg m;
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		int rc = notify_msg_parse(cases[i].in, len, &m);
		assert_int_equal(rc, cases[i].rc);
		if (rc < 0)
			continue;
		assert_int_equal(m.ready, cases[i].ready);
		assert_int_equal(m.stopping, cases[i].stopping);
		assert_int_equal(m.malformed, cases[i].malformed);
		assert_int_equal(m.has_status, cases[i].status != NULL);
		if (cases[i].status)
			assert_string_equal(m.status, cases[i].status);
	}
	/* Too long: refused whole. A long STATUS is cut, never overflowed. */
	char *big = malloc(NOTIFY_MSG_MAX + 2);
	assert_non_null(big);
	memcpy(big, "STATUS=", 7);
	memset(big + 7, 'x', NOTIFY_MSG_MAX + 1 - 7);
	struct notify_msg m;
	assert_int_equal(notify_msg_parse(big, NOTIFY_MSG_MAX + 1, &m), -1);
	assert_int_equal(notify_msg_parse(big, NOTIFY_MSG_MAX, &m), 0);
	assert_int_equal(strlen(m.status), NOTIFY_STATUS_MAX);
	free(big);
}

/* Send raw bytes with nfds copies of fd attached (rawpeer.c's raw_send). */
static void send_raw(int sock, const void *buf, size_t len, int fd, int nfds)
{
	int fds[2] = {fd, fd};
	assert_int_equal(raw_send(sock, buf, len, fds, nfds), 0);
}

/* Open descriptors of this process (child.c's fd_count). */
static int open_fds(void)
{
	return fd_count(getpid());
}

static void test_handoff_roundtrip_and_hostile(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	int payload[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, payload), 0);

	/* Nothing queued. */
	struct kite_peer peer;
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 0), -EAGAIN);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 10), -ETIMEDOUT);

	/* A good hand-off: an IPv4 peer. */
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(4242)};
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	struct kite_peer out;
	handoff_peer_fill(payload[0], (struct sockaddr *)&in, sizeof in, &out);
	assert_int_equal(handoff_send(sv[0], payload[0], &out), 0);
	int fd = kite_handoff_accept(sv[1], &peer, 1000);
	assert_true(fd >= 0);
	assert_int_equal(peer.family, AF_INET);
	assert_string_equal(peer.host, "127.0.0.1");
	assert_int_equal(peer.port, 4242);
	assert_int_equal(peer.pid, -1);
	assert_true(write(fd, "x", 1) == 1); /* it is the same socket */
	char c;
	assert_true(read(payload[1], &c, 1) == 1 && c == 'x');
	close(fd);

	/* A Unix peer: the kernel-verified credentials travel along. */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	handoff_peer_fill(payload[0], (struct sockaddr *)&un, sizeof(sa_family_t), &out);
	assert_int_equal(out.pid, getpid());
	assert_int_equal(out.uid, getuid());
	assert_int_equal(handoff_send(sv[0], payload[0], &out), 0);
	fd = kite_handoff_accept(sv[1], &peer, 1000);
	assert_true(fd >= 0);
	assert_int_equal(peer.pid, getpid());
	assert_int_equal(peer.gid, getgid());
	close(fd);

	int before = open_fds();
	/* Hostile: no descriptor, two descriptors, short record, bad magic,
	 * oversized address length. Each is refused and nothing leaks. */
	unsigned char rec[4 * 7 + KITE_PEER_ADDR_MAX];
	memset(rec, 0, sizeof rec);
	send_raw(sv[0], rec, sizeof rec, -1, 0);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	send_raw(sv[0], rec, sizeof rec, payload[0], 2);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	send_raw(sv[0], rec, 10, payload[0], 1);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	send_raw(sv[0], rec, sizeof rec, payload[0], 1); /* magic 0 */
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	uint32_t hdr[7] = {0x4b484f31u, 1, AF_INET, 0, 0, 0, 100000};
	memcpy(rec, hdr, sizeof hdr);
	send_raw(sv[0], rec, sizeof rec, payload[0], 1);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	unsigned char huge[1024] = {0};
	memcpy(huge, hdr, sizeof hdr);
	send_raw(sv[0], huge, sizeof huge, payload[0], 1);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPROTO);
	assert_int_equal(open_fds(), before);

	/* kite closed its end: -EPIPE once the queue is empty. */
	assert_int_equal(handoff_send(sv[0], payload[0], &out), 0);
	close(sv[0]);
	fd = kite_handoff_accept(sv[1], NULL, 1000);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(kite_handoff_accept(sv[1], &peer, 1000), -EPIPE);
	close(sv[1]);
	close(payload[0]);
	close(payload[1]);
}

static void test_handoff_fd_env(void **state)
{
	(void)state;
	unsetenv(KITE_HANDOFF_ENV);
	assert_int_equal(kite_handoff_fd(), -ENOENT);
	setenv(KITE_HANDOFF_ENV, "x3", 1);
	assert_int_equal(kite_handoff_fd(), -EBADF);
	setenv(KITE_HANDOFF_ENV, "999", 1);
	assert_int_equal(kite_handoff_fd(), -EBADF);
	int p[2];
	assert_int_equal(pipe(p), 0);
	char v[16];
	snprintf(v, sizeof v, "%d", p[0]);
	setenv(KITE_HANDOFF_ENV, v, 1);
	assert_int_equal(kite_handoff_fd(), -EBADF); /* not a socket */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	snprintf(v, sizeof v, "%d", sv[1]);
	setenv(KITE_HANDOFF_ENV, v, 1);
	assert_int_equal(kite_handoff_fd(), sv[1]);
	unsetenv(KITE_HANDOFF_ENV);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_listen_specs(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok, family, type;
		const char *fdname;
	} cases[] = {
		{"tcp:8080", 1, AF_INET, SOCK_STREAM, "tcp-8080"},
		{"tcp:0", 1, AF_INET, SOCK_STREAM, "tcp-0"},
		{"tcp:65535", 1, AF_INET, SOCK_STREAM, NULL},
		{"tcp:0.0.0.0:80", 1, AF_INET, SOCK_STREAM, "tcp-0.0.0.0-80"},
		{"udp:127.0.0.1:53", 1, AF_INET, SOCK_DGRAM, NULL},
		{"tcp:[::1]:80", 1, AF_INET6, SOCK_STREAM, "tcp-[--1]-80"},
		{"udp:[::]:0", 1, AF_INET6, SOCK_DGRAM, NULL},
		{"unix:@kite/x", 1, AF_UNIX, SOCK_STREAM, "unix-@kite/x"},
		{"unix:/run/x.sock", 1, AF_UNIX, SOCK_STREAM, NULL},
		{"tcp:65536", 0, 0, 0, NULL},
		{"tcp:-1", 0, 0, 0, NULL},
		{"tcp: 80", 0, 0, 0, NULL},
		{"tcp:", 0, 0, 0, NULL},
		{"tcp:1.2.3.4:", 0, 0, 0, NULL},
		{"tcp:1.2.3:80", 0, 0, 0, NULL},
		{"tcp:256.0.0.1:80", 0, 0, 0, NULL},
		{"tcp:localhost:80", 0, 0, 0, NULL},
		{"tcp:[::1]", 0, 0, 0, NULL},
		{"tcp:[::1]80", 0, 0, 0, NULL},
		{"tcp:[zz]:80", 0, 0, 0, NULL},
		{"tcp:[::1:80", 0, 0, 0, NULL},
		{"tcp:80x", 0, 0, 0, NULL},
		{"unix:", 0, 0, 0, NULL},
		{"unix:@", 0, 0, 0, NULL},
		{"unix:relative", 0, 0, 0, NULL},
		{"sctp:80", 0, 0, 0, NULL},
		{"", 0, 0, 0, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct listen_spec sp;
		char err[200] = "";
		int rc = serve_spec_parse(cases[i].in, &sp, err, sizeof err);
		if (!cases[i].ok) {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err, cases[i].in)); /* says which */
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(sp.family, cases[i].family);
		assert_int_equal(sp.type, cases[i].type);
		if (cases[i].fdname)
			assert_string_equal(sp.fdname, cases[i].fdname);
	}
	/* The default address is loopback, never all interfaces. */
	struct listen_spec sp;
	char err[200];
	assert_int_equal(serve_spec_parse("tcp:8080", &sp, err, sizeof err), 0);
	const struct sockaddr_in *in = (const struct sockaddr_in *)&sp.addr;
	assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(in->sin_port), 8080);
	/* Unix paths: 107 bytes fit sun_path with its NUL, 108 do not. */
	char path[5 + 110] = "unix:/";
	memset(path + 6, 'p', 106);
	path[112] = 0;
	assert_int_equal(serve_spec_parse(path, &sp, err, sizeof err), 0);
	path[112] = 'p';
	path[113] = 0;
	assert_int_equal(serve_spec_parse(path, &sp, err, sizeof err), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_table),
		cmocka_unit_test(test_listen_specs),
		cmocka_unit_test(test_handoff_roundtrip_and_hostile),
		cmocka_unit_test(test_handoff_fd_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
