/* Relayed messages (kite_publish_origin): the origin block's encoding, a
 * table of hostile blocks the decoder must refuse, and the whole path
 * through a real ring, inline and large, honest and lying publishers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kite.h"
#include "origin.h"
#include "rawpeer.h"

static const struct kite_origin sample = {
	.system = "nats", .subject = "orders.eu", .host = "far-away",
	.pid = 4242, .uid = 1000, .publisher = 0x1122334455667788ull, .seq = 9,
	.headers = "NATS/1.0\r\nKite-Pid: 4242\r\n\r\n", .headers_len = 28,
};

static size_t encode(const struct kite_origin *o, uint8_t *buf)
{
	int64_t n = ki_origin_size(o);
	assert_true(n > 0);
	ki_origin_encode(o, buf);
	return (size_t)n;
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t buf[512];
	size_t n = encode(&sample, buf);
	struct kite_origin o;
	/* Trailing payload bytes do not belong to the block. */
	memcpy(buf + n, "payload", 7);
	assert_int_equal(ki_origin_decode(buf, n + 7, &o), (int64_t)n);
	assert_string_equal(o.system, "nats");
	assert_string_equal(o.subject, "orders.eu");
	assert_string_equal(o.host, "far-away");
	assert_int_equal(o.pid, 4242);
	assert_int_equal(o.uid, 1000);
	assert_int_equal(o.publisher, 0x1122334455667788ull);
	assert_int_equal(o.seq, 9);
	assert_int_equal(o.headers_len, 28);
	assert_memory_equal(o.headers, sample.headers, 28);
	/* NULL host and headers read as "". */
	struct kite_origin bare = {.system = "nats", .subject = "a", .pid = -1, .uid = -1};
	n = encode(&bare, buf);
	assert_int_equal(ki_origin_decode(buf, n, &o), (int64_t)n);
	assert_string_equal(o.host, "");
	assert_string_equal(o.headers, "");
	assert_int_equal(o.pid, -1);
}

static void test_encoder_refuses(void **state)
{
	(void)state;
	struct kite_origin o = sample;
	o.system = "";
	assert_int_equal(ki_origin_size(&o), -EINVAL);
	o = sample;
	o.subject = NULL;
	assert_int_equal(ki_origin_size(&o), -EINVAL);
	o = sample;
	o.pid = -2;
	assert_int_equal(ki_origin_size(&o), -EINVAL);
	o = sample;
	o.headers = "a\0b";
	o.headers_len = 3;
	assert_int_equal(ki_origin_size(&o), -EINVAL);
	o = sample;
	char *big = malloc(KITE_ORIGIN_MAX + 1);
	assert_non_null(big);
	memset(big, 'h', KITE_ORIGIN_MAX);
	big[KITE_ORIGIN_MAX] = 0;
	o.headers = big;
	o.headers_len = KITE_ORIGIN_MAX - 60; /* with the rest: just over */
	assert_int_equal(ki_origin_size(&o), KITE_ETOOBIG);
	o = sample;
	big[UINT16_MAX + 1] = 0;
	o.host = big; /* longer than a u16 field */
	assert_int_equal(ki_origin_size(&o), -EINVAL);
	free(big);
	assert_int_equal(ki_origin_size(NULL), -EINVAL);
}

/* A hostile change to a valid block; each must be refused. */
struct hostile {
	const char *what;
	size_t at;       /* byte to overwrite (SIZE_MAX: none) */
	uint8_t value;
	size_t cut;      /* bytes removed from the end of the input */
	uint32_t block_len; /* nonzero: overwrite block_len with this */
};

static void test_hostile_blocks(void **state)
{
	(void)state;
	uint8_t good[512];
	size_t n = encode(&sample, good);
	/* String offsets in the sample block. */
	size_t sys_nul = ORIGIN_FIXED + 4, subj_nul = sys_nul + 10, host_nul = subj_nul + 9;
	const struct hostile table[] = {
		{"empty input", SIZE_MAX, 0, n, 0},
		{"shorter than the fixed part", SIZE_MAX, 0, n - ORIGIN_FIXED + 1, 0},
		{"block_len beyond the message", SIZE_MAX, 0, 1, 0},
		{"block_len below the fixed part", SIZE_MAX, 0, 0, 51},
		{"block_len one more than the strings", SIZE_MAX, 0, 0, (uint32_t)n + 1},
		{"block_len one less than the strings", SIZE_MAX, 0, 0, (uint32_t)n - 1},
		{"block_len huge", SIZE_MAX, 0, 0, 0xffffffffu},
		{"version 0", 4, 0, 0, 0},
		{"version 2", 4, 2, 0, 0},
		{"reserved word set", 6, 1, 0, 0},
		{"reserved length set", 46, 1, 0, 0},
		{"system length 0", 40, 0, 0, 0},
		{"subject length 0", 42, 0, 0, 0},
		{"system length lies (+1)", 40, 5, 0, 0},
		{"subject length lies (-1)", 42, 8, 0, 0},
		{"headers length wraps the sum", 51, 0xff, 0, 0},
		{"pid below -1", 15, 0x80, 0, 0},
		{"uid below -1", 23, 0x80, 0, 0},
		{"system not NUL-terminated", sys_nul, 'x', 0, 0},
		{"subject not NUL-terminated", subj_nul, 'x', 0, 0},
		{"host not NUL-terminated", host_nul, 'x', 0, 0},
		{"last NUL missing", n - 1, 'x', 0, 0},
		{"NUL inside the subject", sys_nul + 3, 0, 0, 0},
		{"NUL inside the headers", host_nul + 5, 0, 0, 0},
	};
	uint8_t buf[512];
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		const struct hostile *h = &table[i];
		memcpy(buf, good, n);
		if (h->at != SIZE_MAX)
			buf[h->at] = h->value;
		if (h->block_len)
			memcpy(buf, &h->block_len, 4);
		struct kite_origin o = {0};
		int64_t rc = ki_origin_decode(buf, n - h->cut, &o);
		if (rc != -EBADMSG)
			fail_msg("%s: decoded as %lld, want -EBADMSG", h->what, (long long)rc);
	}
	/* The table's offsets are right: the unchanged block decodes. */
	struct kite_origin o;
	assert_int_equal(ki_origin_decode(good, n, &o), (int64_t)n);
	assert_int_equal(good[sys_nul], 0);
	assert_int_equal(good[subj_nul], 0);
	assert_int_equal(good[host_nul], 0);
	assert_null(memchr(good + sys_nul + 1, 0, 9));
}

static int open_pair(const char *name, kite **pub, kite **sub, const char *pattern)
{
	kite_options o = {.bus = test_bus(name), .handshake_ms = 5000};
	if (kite_open(sub, &o) || kite_subscribe(*sub, pattern) || kite_open(pub, &o))
		return -1;
	return 0;
}

/* The next message, skipping announcements. */
static int next_message(kite *k, kite_event *ev)
{
	for (;;) {
		int rc = kite_recv(k, ev, 10000);
		if (rc || ev->type != KITE_PUBLISHER_NEW)
			return rc;
	}
}

static void test_through_ring(void **state)
{
	(void)state;
	kite *pub, *sub;
	assert_int_equal(open_pair("origin_ring", &pub, &sub, "o.>"), 0);
	kite_event ev;
	/* Plain first: no origin. */
	assert_int_equal(kite_publish(pub, "o.plain", "abc", 3), 1);
	assert_int_equal(next_message(sub, &ev), 0);
	assert_int_equal(ev.type, KITE_MESSAGE);
	assert_null(ev.msg.origin);
	/* Relayed, inline. */
	assert_int_equal(kite_publish_origin(pub, "o.relayed", "{\"id\":42}", 9, &sample), 1);
	assert_int_equal(next_message(sub, &ev), 0);
	assert_int_equal(ev.type, KITE_MESSAGE);
	assert_string_equal(ev.msg.channel, "o.relayed");
	assert_int_equal(ev.msg.len, 9);
	assert_memory_equal(ev.msg.data, "{\"id\":42}", 9);
	assert_int_equal(ev.msg.pid, getpid()); /* the relayer, kernel-verified */
	assert_non_null(ev.msg.origin);
	assert_string_equal(ev.msg.origin->subject, "orders.eu");
	assert_string_equal(ev.msg.origin->host, "far-away");
	assert_int_equal(ev.msg.origin->pid, 4242);
	/* Relayed, too big for a slot: the block travels in the memfd. */
	size_t big = 10000;
	char *data = malloc(big);
	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7);
	assert_int_equal(kite_publish_origin(pub, "o.relayed", data, big, &sample), 2);
	assert_int_equal(next_message(sub, &ev), 0);
	assert_int_equal(ev.type, KITE_MESSAGE);
	assert_int_equal(ev.msg.len, big);
	assert_memory_equal(ev.msg.data, data, big);
	assert_non_null(ev.msg.origin);
	assert_int_equal(ev.msg.origin->seq, 9);
	free(data);
	/* Empty payload, relayed; then plain again on the same ring. */
	assert_int_equal(kite_publish_origin(pub, "o.relayed", NULL, 0, &sample), 3);
	assert_int_equal(kite_publish(pub, "o.relayed", "x", 1), 4);
	assert_int_equal(next_message(sub, &ev), 0);
	assert_int_equal(ev.msg.len, 0);
	assert_non_null(ev.msg.origin);
	assert_int_equal(next_message(sub, &ev), 0);
	assert_int_equal(ev.msg.len, 1);
	assert_null(ev.msg.origin);
	/* Bad origins are the caller's error, published nothing. */
	struct kite_origin bad = sample;
	bad.system = NULL;
	assert_int_equal(kite_publish_origin(pub, "o.relayed", "x", 1, &bad), -EINVAL);
	assert_int_equal(kite_publish_origin(pub, "o.relayed", "x", 1, NULL), -EINVAL);
	assert_int_equal(kite_publish_origin(pub, "o..bad", "x", 1, &sample), KITE_EBADNAME);
	assert_int_equal(kite_recv(sub, &ev, 200), -ETIMEDOUT);
	kite_close(pub);
	kite_close(sub);
}

/* A raw publisher writes lying origin blocks into its own ring: each
 * costs exactly its own message (reported lost); the honest ones around
 * them arrive intact. */
static void test_lying_publisher(void **state)
{
	(void)state;
	const char *bus = test_bus("origin_liar");
	kite_options ko = {.bus = bus, .handshake_ms = 5000};
	kite *sub;
	assert_int_equal(kite_open(&sub, &ko), 0);
	assert_int_equal(kite_subscribe(sub, "l.>"), 0);
	uint64_t ids[4];
	assert_int_equal(raw_find_peers(bus, ids, 4), 1);
	int sock = raw_connect(bus, ids[0]);
	assert_true(sock >= 0);
	struct wire_msg m;
	assert_int_equal(raw_hello(sock, 0x0be1ed0be1edull), 0);
	assert_int_equal(raw_expect(sock, &m, W_HELLO, 10000), 1);
	for (int i = 0; i < m.nfds; i++)
		close(m.fds[i]);
	struct ring_writer w;
	size_t bytes;
	int fd = raw_ring("l.x", 8, 512, 0x0be1ed0be1edull, &w, &bytes);
	assert_true(fd >= 0);
	uint8_t good[400], bad[400];
	size_t n = encode(&sample, good);
	memcpy(good + n, "ok", 2);
	memcpy(bad, good, n + 2);
	bad[42] = 200; /* the subject's length lies */
	uint32_t lie = 0xfffffff0u; /* block_len beyond the record */
	ki_ring_write(&w, bad, (uint32_t)n + 2, SLOT_INLINE | SLOT_ORIGIN, 0, 1);
	ki_ring_write(&w, good, (uint32_t)n + 2, SLOT_INLINE | SLOT_ORIGIN, 0, 2);
	memcpy(bad, good, n + 2);
	memcpy(bad, &lie, 4);
	ki_ring_write(&w, bad, (uint32_t)n + 2, SLOT_INLINE | SLOT_ORIGIN, 0, 3);
	ki_ring_write(&w, good, 10, SLOT_INLINE | SLOT_ORIGIN, 0, 4); /* cut short */
	ki_ring_write(&w, "plain", 5, SLOT_INLINE, 0, 5);
	ki_ring_write(&w, "no", 2, 0x80 | SLOT_INLINE, 0, 6); /* unknown flag */
	ki_ring_write(&w, "end", 3, SLOT_INLINE, 0, 7);
	ki_wire_init(&m, W_RING);
	m.id = 1;
	m.a = 1;
	m.slot_count = 8;
	m.slot_size = 512;
	snprintf(m.text, sizeof m.text, "l.x");
	m.fds[0] = fd;
	m.nfds = 1;
	assert_int_equal(ki_wire_send(sock, &m, 0), 0);
	close(fd);
	/* Expected, in order: loss, relayed "ok", loss, loss, "plain", loss,
	 * "end". */
	const char *want[] = {NULL, "ok", NULL, NULL, "plain", NULL, "end"};
	kite_event ev;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_int_equal(next_message(sub, &ev), 0);
		if (!want[i]) {
			if (ev.type != KITE_LOSS || ev.lost != 1)
				fail_msg("record %zu: event %d lost %llu, want a loss of 1", i,
					 ev.type, (unsigned long long)ev.lost);
			continue;
		}
		assert_int_equal(ev.type, KITE_MESSAGE);
		assert_int_equal(ev.msg.len, strlen(want[i]));
		assert_memory_equal(ev.msg.data, want[i], strlen(want[i]));
		if (i == 1) {
			assert_non_null(ev.msg.origin);
			assert_string_equal(ev.msg.origin->subject, "orders.eu");
		} else {
			assert_null(ev.msg.origin);
		}
	}
	close(sock);
	kite_close(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encoder_refuses),
		cmocka_unit_test(test_hostile_blocks),
		cmocka_unit_test(test_through_ring),
		cmocka_unit_test(test_lying_publisher),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
