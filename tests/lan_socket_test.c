/* LAN segmentation offload (src/lan_socket.c): ki_lan_gro_split against a
 * table of hostile coalesced buffers (segment size 0, larger than the
 * buffer, odd remainders, an empty buffer), ki_lan_gro_size against
 * malformed control messages, and a real UDP_SEGMENT send on loopback read
 * back by a UDP_GRO receiver and by a plain one. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "lan_socket.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define MAX_PIECES 70000

/* What a split handed to its callback. */
struct pieces {
	size_t n;
	const uint8_t *at[MAX_PIECES];
	size_t len[MAX_PIECES];
};

static void collect(void *ctx, const uint8_t *d, size_t len)
{
	struct pieces *p = ctx;
	assert_true(p->n < MAX_PIECES);
	p->at[p->n] = d;
	p->len[p->n++] = len;
}

static struct pieces got;

static void test_split_table(void **state)
{
	(void)state;
	static uint8_t buf[65536];
	const struct {
		size_t len, seg;
		size_t n, first, last; /* datagrams, first's and last's bytes */
	} cases[] = {
		{1000, 0, 1, 1000, 1000},          /* not coalesced */
		{1000, 1000, 1, 1000, 1000},       /* one exact segment */
		{1000, 5000, 1, 1000, 1000},       /* a segment larger than the buffer */
		{1000, 65535, 1, 1000, 1000},
		{0, 0, 1, 0, 0},                   /* an empty datagram */
		{0, 7, 1, 0, 0},
		{1000, 100, 10, 100, 100},         /* exact multiple */
		{1001, 100, 11, 100, 1},           /* remainder of one byte */
		{1099, 100, 11, 100, 99},          /* remainder one short of a segment */
		{65536, 1, 65536, 1, 1},           /* a segment of one byte */
		{65507, 1472, 45, 1472, 65507 - 44 * 1472},
		{62208, 972, 64, 972, 972},        /* 64 exact segments */
		{62207, 972, 64, 972, 971},        /* 64, the last short */
		{3, 2, 2, 2, 1},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&got, 0, sizeof got);
		size_t n = ki_lan_gro_split(buf, cases[i].len, cases[i].seg, collect, &got);
		assert_int_equal(n, cases[i].n);
		assert_int_equal(got.n, cases[i].n);
		assert_int_equal(got.len[0], cases[i].first);
		assert_int_equal(got.len[n - 1], cases[i].last);
		/* The datagrams tile the buffer exactly, in order, inside it. */
		size_t at = 0;
		for (size_t j = 0; j < n; j++) {
			assert_ptr_equal(got.at[j], buf + at);
			assert_true(got.len[j] > 0 || cases[i].len == 0);
			at += got.len[j];
			assert_true(at <= cases[i].len);
		}
		assert_int_equal(at, cases[i].len);
	}
}

/* A received header with one control message (level, type, cmsg_len
 * adjustment, value). */
static size_t gro_size_of(int level, int type, size_t len, int value)
{
	union {
		char buf[CMSG_SPACE(sizeof(int)) + 64];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr h = {.msg_control = ctl.buf, .msg_controllen = CMSG_SPACE(sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&h);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = len;
	memcpy(CMSG_DATA(c), &value, sizeof value);
	return ki_lan_gro_size(&h);
}

static void test_gro_size(void **state)
{
	(void)state;
	assert_int_equal(gro_size_of(IPPROTO_UDP, UDP_GRO, CMSG_LEN(sizeof(int)), 1472), 1472);
	/* Not a segment size: none. */
	assert_int_equal(gro_size_of(IPPROTO_UDP, UDP_GRO, CMSG_LEN(sizeof(int)), 0), 0);
	assert_int_equal(gro_size_of(IPPROTO_UDP, UDP_GRO, CMSG_LEN(sizeof(int)), -5), 0);
	/* Too short to hold an int, another level or type: ignored. */
	assert_int_equal(gro_size_of(IPPROTO_UDP, UDP_GRO, CMSG_LEN(2), 1472), 0);
	assert_int_equal(gro_size_of(SOL_SOCKET, UDP_GRO, CMSG_LEN(sizeof(int)), 1472), 0);
	assert_int_equal(gro_size_of(IPPROTO_UDP, UDP_GRO + 1, CMSG_LEN(sizeof(int)), 1472), 0);
	struct msghdr none = {0};
	assert_int_equal(ki_lan_gro_size(&none), 0);
}

static int udp_on_loopback(int gro, struct sockaddr_in *addr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t al = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &al);
	if (addr)
		*addr = a;
	int one = 1;
	if (gro)
		assert_int_equal(setsockopt(s, IPPROTO_UDP, UDP_GRO, &one, sizeof one), 0);
	return s;
}

/* Read every datagram that came to s within a moment, cut as the LAN
 * receiver cuts them, into out (bytes) and got (datagrams). */
static size_t read_all(int s, uint8_t *out, size_t *reads)
{
	static uint8_t rx[65536];
	size_t fill = 0;
	*reads = 0;
	memset(&got, 0, sizeof got);
	struct pollfd p = {.fd = s, .events = POLLIN};
	while (poll(&p, 1, 500) > 0) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {rx, sizeof rx};
		struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				   .msg_controllen = sizeof ctl.buf};
		ssize_t n = recvmsg(s, &h, MSG_DONTWAIT);
		if (n < 0)
			break;
		size_t before = got.n;
		ki_lan_gro_split(rx, (size_t)n, ki_lan_gro_size(&h), collect, &got);
		for (size_t j = before; j < got.n; j++) {
			memcpy(out + fill, got.at[j], got.len[j]);
			fill += got.len[j];
		}
		(*reads)++;
	}
	return fill;
}

static void test_gso_to_gro_on_loopback(void **state)
{
	(void)state;
	struct sockaddr_in to_gro, to_plain;
	int rg = udp_on_loopback(1, &to_gro), rp = udp_on_loopback(0, &to_plain);
	int tx = udp_on_loopback(0, NULL);
	if (!ki_lan_gso_offered(tx)) {
		close(rg), close(rp), close(tx);
		skip(); /* a kernel before 4.18 */
	}
	/* 63 segments of 972 bytes and a short last one: 64 a send. */
	static uint8_t msg[63 * 972 + 500], back[sizeof msg];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 7 + i / 972);
	const struct sockaddr_in *dest[] = {&to_gro, &to_plain};
	for (int d = 0; d < 2; d++) {
		ssize_t n = ki_lan_gso_send(tx, dest[d], msg, sizeof msg, 972, 0);
		assert_int_equal(n, (ssize_t)sizeof msg);
		size_t reads;
		int rx = d == 0 ? rg : rp;
		memset(back, 0, sizeof back);
		assert_int_equal(read_all(rx, back, &reads), sizeof msg);
		assert_memory_equal(back, msg, sizeof msg);
		assert_int_equal(got.n, 64);
		for (size_t j = 0; j < 63; j++)
			assert_int_equal(got.len[j], 972);
		assert_int_equal(got.len[63], 500);
		/* With UDP_GRO they came up coalesced (loopback keeps the send
		 * whole); without, one read a datagram. */
		if (d == 0)
			assert_true(reads < 64);
		else
			assert_int_equal(reads, 64);
	}
	/* More segments than any kernel cuts from one send (64, or 128
	 * since Linux 6.9): refused, not sent as one datagram. */
	static uint8_t huge[200 * 300];
	assert_int_equal(ki_lan_gso_send(tx, &to_plain, huge, sizeof huge, 300, 0), -EINVAL);
	close(rg), close(rp), close(tx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_table),
		cmocka_unit_test(test_gro_size),
		cmocka_unit_test(test_gso_to_gro_on_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
