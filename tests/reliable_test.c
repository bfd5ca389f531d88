/* Reliable subscriptions (KITE_SUB_RELIABLE): back-pressure instead of
 * loss, and the bounds on it. Subscribers run in forked children and
 * report through shared counters; the publisher is this process, so that
 * it can time each kite_publish. Rings are small (4 KiB, about 46 records
 * of 64 bytes) so that a subscriber falls a lap behind within a few
 * milliseconds unless the publisher waits for it.
 *
 * Checked: a slow reliable subscriber loses nothing, the publisher gets
 * -EAGAIN (wait 0) or waits (wait forever); four reliable subscribers lose
 * nothing; a radio subscriber beside them (stopped, or reading) is overrun
 * as ever and never holds the publisher; a reliable subscriber SIGKILLed
 * or SIGSTOPped releases the publisher within its deadline, and the stopped
 * one, continued, is told exactly what it missed; hostile subscribers that
 * write garbage positions (beyond the head, backwards, UINT64_MAX), name a
 * slot outside their page, or send a page that is not sealed hold the
 * publisher no longer than its deadline and cannot crash it (the ASan
 * build reads every byte). */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "internal.h"
#include "kite.h"
#include "rawpeer.h"
#include "shm.h"

#define MAX_SUBS 6
#define CHILD_MS 120000
#define MSG_LEN 64
#define CHANNEL "rel.data"

struct shared {
	_Atomic int ready[MAX_SUBS];
	_Atomic int finished[MAX_SUBS];
	_Atomic uint64_t received[MAX_SUBS], lost[MAX_SUBS];
	_Atomic uint64_t bad[MAX_SUBS]; /* out of order, or a torn payload */
	_Atomic int stop_hostile;
	uint64_t publisher_id;
};

static struct shared *sh;
CHILD_SHARED_FIXTURES(sh)
static char bus[96];

struct sub_args {
	int index;
	int reliable;
	unsigned nap_every; /* nap every this many messages (0: never) */
	unsigned nap_us;    /* for this long (0: 200 us) */
};

static void payload(uint8_t *buf, uint64_t seq)
{
	for (size_t i = 0; i < MSG_LEN; i += sizeof seq)
		memcpy(buf + i, &seq, sizeof seq);
}

static int payload_ok(const kite_msg *m)
{
	uint8_t want[MSG_LEN];
	payload(want, m->seq);
	return m->len == MSG_LEN && !memcmp(m->data, want, MSG_LEN);
}

/* Reads until its publisher has gone, counting what came and what it was
 * told it lost; every message must be the next in sequence, byte exact. */
static int subscriber(void *arg)
{
	const struct sub_args *a = arg;
	kite_options o = {.bus = bus};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	struct kite_sub_options so = {.flags = a->reliable ? KITE_SUB_RELIABLE : 0};
	CHILD_CHECK(kite_subscribe_opts(k, "rel.>", &so) == 0, "subscribe");
	sh->ready[a->index] = 1;
	uint64_t next = 1, deadline = mono_ms() + CHILD_MS;
	kite_event ev;
	while (mono_ms() < deadline) {
		int rc = kite_recv(k, &ev, 200);
		if (rc == -ETIMEDOUT)
			continue;
		CHILD_CHECK(rc == 0, "recv %d", rc);
		if (ev.type == KITE_MESSAGE) {
			if (ev.msg.seq != next || !payload_ok(&ev.msg))
				sh->bad[a->index]++;
			next = ev.msg.seq + 1;
			sh->received[a->index]++;
			if (a->nap_every && ev.msg.seq % a->nap_every == 0)
				nap_us(a->nap_us ? a->nap_us : 200);
		} else if (ev.type == KITE_LOSS) {
			sh->lost[a->index] += ev.lost;
			next += ev.lost;
		} else if (ev.type == KITE_PUBLISHER_GONE) {
			break;
		}
	}
	sh->finished[a->index] = 1;
	kite_close(k);
	return 0;
}

static void wait_flag(_Atomic int *flag)
{
	uint64_t deadline = mono_ms() + 30000;
	while (!*flag && mono_ms() < deadline)
		nap_us(1000);
	assert_true(*flag);
}

static pid_t start_sub(struct sub_args *a)
{
	pid_t pid = child_start(subscriber, a);
	assert_true(pid > 0);
	wait_flag(&sh->ready[a->index]);
	return pid;
}

static kite *open_publisher(uint32_t wait_ms, uint32_t deadline_ms)
{
	kite_options o = {.bus = bus, .ring_slots = 16, .slot_size = 256,
			  .reliable_wait_ms = wait_ms, .reliable_deadline_ms = deadline_ms};
	kite *k;
	assert_int_equal(kite_open(&k, &o), 0);
	return k;
}

struct pub_result {
	uint64_t eagain;
	uint64_t worst_ns;
	uint64_t cpu_ns, wall_ns;
};

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Publish seqs from..to on CHANNEL, retrying -EAGAIN; every publish must
 * return its seq within 60 s in all. */
static void publish_range(kite *k, uint64_t from, uint64_t to, struct pub_result *res)
{
	uint8_t buf[MSG_LEN];
	uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_ns(CLOCK_MONOTONIC);
	uint64_t give_up = mono_ms() + 60000;
	for (uint64_t seq = from; seq <= to;) {
		payload(buf, seq);
		uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
		int64_t rc = kite_publish(k, CHANNEL, buf, sizeof buf);
		uint64_t dt = clock_ns(CLOCK_MONOTONIC) - t0;
		if (dt > res->worst_ns)
			res->worst_ns = dt;
		if (rc == -EAGAIN) {
			res->eagain++;
			assert_true(mono_ms() < give_up);
			nap_us(20);
			continue;
		}
		assert_int_equal(rc, (int64_t)seq);
		seq++;
	}
	res->cpu_ns += clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	res->wall_ns += clock_ns(CLOCK_MONOTONIC) - wall0;
}

static void wait_finished(int index)
{
	uint64_t deadline = mono_ms() + 60000;
	while (!sh->finished[index] && mono_ms() < deadline)
		nap_us(1000);
	assert_true(sh->finished[index]);
}

static void expect_all(int index, uint64_t n)
{
	wait_finished(index);
	printf("# subscriber %d: received %llu, lost %llu, bad %llu\n", index,
	       (unsigned long long)sh->received[index], (unsigned long long)sh->lost[index],
	       (unsigned long long)sh->bad[index]);
	assert_int_equal(sh->lost[index], 0);
	assert_int_equal(sh->bad[index], 0);
	assert_int_equal(sh->received[index], n);
}

static void expect_accounted(int index, uint64_t n)
{
	wait_finished(index);
	printf("# subscriber %d: received %llu, lost %llu, bad %llu\n", index,
	       (unsigned long long)sh->received[index], (unsigned long long)sh->lost[index],
	       (unsigned long long)sh->bad[index]);
	assert_int_equal(sh->bad[index], 0);
	assert_int_equal(sh->received[index] + sh->lost[index], n);
}

/* wait 0: -EAGAIN whenever the slow subscriber is a ring behind; it loses
 * nothing. A radio subscriber stopped meanwhile never holds the publisher,
 * and is told exactly what it lost. */
static void test_slow_subscriber_eagain(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_eagain"));
	struct sub_args slow = {0, 1, 50, 0}, radio = {1, 0, 0, 0};
	start_sub(&slow);
	pid_t radio_pid = start_sub(&radio);
	kite *k = open_publisher(0, 0);
	assert_int_equal(kill(radio_pid, SIGSTOP), 0);
	assert_true(wait_stopped(radio_pid, 5000));
	const uint64_t n = 20000;
	struct pub_result res = {0};
	publish_range(k, 1, n, &res);
	printf("# %llu messages, -EAGAIN %llu times, worst publish %.3f ms\n",
	       (unsigned long long)n, (unsigned long long)res.eagain, res.worst_ns / 1e6);
	assert_true(res.eagain > 0);
	kill(radio_pid, SIGCONT);
	kite_close(k);
	expect_all(0, n);
	expect_accounted(1, n);
	assert_true(sh->lost[1] > 0); /* radio: overrun as ever */
}

/* wait forever: kite_publish waits instead, never -EAGAIN. */
static void test_slow_subscriber_waits(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_wait"));
	struct sub_args slow = {0, 1, 50, 0};
	start_sub(&slow);
	kite *k = open_publisher(UINT32_MAX, 0);
	const uint64_t n = 20000;
	struct pub_result res = {0};
	publish_range(k, 1, n, &res);
	printf("# %llu messages in %.1f ms, worst publish %.3f ms, publisher CPU %.0f %%\n",
	       (unsigned long long)n, res.wall_ns / 1e6, res.worst_ns / 1e6,
	       100.0 * (double)res.cpu_ns / (double)res.wall_ns);
	assert_int_equal(res.eagain, 0);
	kite_close(k);
	expect_all(0, n);
}

/* 1 -> 4 reliable, one radio reader beside them. */
static void test_four_reliable_subscribers(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_four"));
	struct sub_args a[5];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct sub_args){i, 1, i == 3 ? 100 : 0, 0};
		start_sub(&a[i]);
	}
	a[4] = (struct sub_args){4, 0, 0, 0};
	start_sub(&a[4]);
	kite *k = open_publisher(UINT32_MAX, 0);
	const uint64_t n = 50000;
	struct pub_result res = {0};
	publish_range(k, 1, n, &res);
	kite_close(k);
	for (int i = 0; i < 4; i++)
		expect_all(i, n);
	expect_accounted(4, n);
}

/* Sends SIGKILL to *arg after 300 ms. */
static int killer(void *arg)
{
	nap_us(300000);
	kill(*(pid_t *)arg, SIGKILL);
	return 0;
}

/* A reliable subscriber that stops, holding the publisher, and is then
 * SIGKILLed releases it as soon as its link is seen to end, well before
 * the deadline; one that stays SIGSTOPped, at the deadline. The stopped
 * one, continued, is told exactly what it missed. */
static void test_killed_and_stopped_release_publisher(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_kill_stop"));
	const uint32_t deadline_ms = 2000;
	struct sub_args killed = {0, 1, 0, 0}, stopped = {1, 1, 0, 0};
	pid_t kpid = start_sub(&killed);
	pid_t spid = start_sub(&stopped);
	kite *k = open_publisher(UINT32_MAX, deadline_ms);
	struct pub_result warm = {0}, after_kill = {0}, after_stop = {0};
	publish_range(k, 1, 2000, &warm);
	assert_int_equal(kill(kpid, SIGSTOP), 0);
	assert_true(wait_stopped(kpid, 5000));
	pid_t kill_later = child_start(killer, &kpid);
	publish_range(k, 2001, 4000, &after_kill);
	assert_int_equal(child_wait(kill_later, 10000), 0);
	child_wait(kpid, 10000);
	assert_int_equal(kill(spid, SIGSTOP), 0);
	assert_true(wait_stopped(spid, 5000));
	publish_range(k, 4001, 6000, &after_stop);
	printf("# worst publish: stopped then SIGKILLed after 300 ms %.1f ms, "
	       "SIGSTOPped %.1f ms (deadline %u ms); publisher CPU while held "
	       "%.1f %% of %.0f ms\n",
	       after_kill.worst_ns / 1e6, after_stop.worst_ns / 1e6, deadline_ms,
	       100.0 * (double)after_stop.cpu_ns / (double)after_stop.wall_ns,
	       after_stop.wall_ns / 1e6);
	/* Held until the kill, released by it, not by the deadline. */
	assert_true(after_kill.worst_ns >= 250000000u);
	assert_true(after_kill.worst_ns < (uint64_t)deadline_ms * 1000000u * 9 / 10);
	/* Held for the deadline, once. */
	assert_true(after_stop.worst_ns >= (uint64_t)deadline_ms * 1000000u * 9 / 10);
	assert_true(after_stop.worst_ns < (uint64_t)(deadline_ms + 1500) * 1000000u);
	assert_true(after_stop.wall_ns < (uint64_t)(deadline_ms + 3000) * 1000000u);
	/* Waiting naps: it does not burn a CPU. */
	assert_true(after_stop.cpu_ns < after_stop.wall_ns / 5);
	assert_int_equal(kill(spid, SIGCONT), 0);
	kite_close(k);
	expect_accounted(1, 6000);
	assert_true(sh->lost[1] > 0);
}

/* The deadline counts time without progress, not time waited: a
 * subscriber that reads in bursts with pauses shorter than the deadline
 * holds the publisher far longer than it in all, and loses nothing. */
static void test_slow_but_moving_is_never_dropped(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_moving"));
	const uint32_t deadline_ms = 500;
	struct sub_args slow = {0, 1, 20, 40000}; /* 40 ms every 20 messages */
	start_sub(&slow);
	kite *k = open_publisher(UINT32_MAX, deadline_ms);
	struct pub_result res = {0};
	publish_range(k, 1, 600, &res);
	printf("# 600 messages in %.0f ms (deadline %u ms), worst publish %.1f ms\n",
	       res.wall_ns / 1e6, deadline_ms, res.worst_ns / 1e6);
	assert_true(res.wall_ns > (uint64_t)deadline_ms * 2 * 1000000u);
	kite_close(k);
	expect_all(0, 600);
}

/* Unsubscribes without reading, from a publisher it holds up. */
static int unsubscriber(void *arg)
{
	const struct sub_args *a = arg;
	kite_options o = {.bus = bus};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	struct kite_sub_options so = {.flags = KITE_SUB_RELIABLE};
	CHILD_CHECK(kite_subscribe_opts(k, "rel.>", &so) == 0, "subscribe");
	sh->ready[a->index] = 1;
	while (!sh->stop_hostile)
		nap_us(1000);
	nap_us(300000);
	CHILD_CHECK(kite_unsubscribe(k, "rel.>") == 0, "unsubscribe");
	nap_us(5000000); /* still there, linked, reading nothing */
	kite_close(k);
	return 0;
}

/* A reliable subscriber that unsubscribes releases the publisher at once. */
static void test_unsubscribe_releases_publisher(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_unsub"));
	struct sub_args a = {0, 1, 0, 0};
	pid_t pid = child_start(unsubscriber, &a);
	wait_flag(&sh->ready[0]);
	kite *k = open_publisher(UINT32_MAX, 10000);
	struct pub_result res = {0};
	sh->stop_hostile = 1; /* it unsubscribes 300 ms from now */
	publish_range(k, 1, 2000, &res);
	printf("# held until the unsubscribe 300 ms in: worst publish %.1f ms "
	       "(deadline 10000 ms)\n", res.worst_ns / 1e6);
	assert_true(res.worst_ns >= 250000000u);
	assert_true(res.worst_ns < 5000000000u);
	kite_close(k);
	child_kill(pid);
}

/* A raw subscriber that asks for CHANNEL reliably, then hands the
 * publisher a positions page (or a bad one) and scribbles in it. */
enum hostile_kind { H_GARBAGE, H_BAD_SLOT, H_UNSEALED, H_SHORT };

struct hostile_args {
	enum hostile_kind kind;
	int index;
};

static int hostile(void *arg)
{
	const struct hostile_args *a = arg;
	int sock = raw_connect(bus, sh->publisher_id);
	CHILD_CHECK(sock >= 0, "connect");
	uint64_t me = 0x5eed0000u + (uint64_t)getpid();
	CHILD_CHECK(raw_hello(sock, me) == 0, "hello");
	struct wire_msg m;
	ki_wire_init(&m, W_SUB);
	m.id = 77;
	m.a = 1; /* reliable */
	snprintf(m.text, sizeof m.text, "rel.>");
	CHILD_CHECK(ki_wire_send(sock, &m, 0) == 0, "sub");
	CHILD_CHECK(raw_expect(sock, &m, W_SUB_ACK, 10000) == 1, "ack");
	sh->ready[a->index] = 1;
	CHILD_CHECK(raw_expect(sock, &m, W_RING, 30000) == 1, "ring");
	uint64_t ring_id = m.id;
	for (int i = 0; i < m.nfds; i++)
		close(m.fds[i]);
	size_t size = a->kind == H_SHORT ? 4096 : POS_BYTES;
	int fd = ki_shm_create("hostile-positions", size);
	CHILD_CHECK(fd >= 0, "memfd");
	if (a->kind != H_UNSEALED)
		CHILD_CHECK(ki_shm_seal(fd, SEALS_WAITER) == 0, "seal");
	_Atomic uint64_t *page = ki_shm_map(fd, size, 1);
	CHILD_CHECK(page, "map");
	ki_wire_init(&m, W_RELIABLE);
	m.id = ring_id;
	m.a = a->kind == H_BAD_SLOT ? UINT64_MAX : 3;
	snprintf(m.text, sizeof m.text, CHANNEL);
	m.fds[0] = fd;
	m.nfds = 1;
	CHILD_CHECK(ki_wire_send(sock, &m, 0) == 0, "reliable");
	/* Lies: beyond any head, the top of u64, backwards, and a few
	 * plausible small values going back and forth. */
	static const uint64_t lies[] = {UINT64_MAX, 1ull << 62, 0, 4096, 64, 1ull << 40,
					88, 0, UINT64_MAX - 7};
	uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (unsigned i = 0; !sh->stop_hostile; i++) {
		uint64_t v = i % 3 ? lies[i % (sizeof lies / sizeof lies[0])] : test_rand(&rnd);
		page[3] = v;
		/* Our socket is read now and then, so the link lives on. */
		while (ki_wire_recv(sock, &m) == 1)
			for (int j = 0; j < m.nfds; j++)
				close(m.fds[j]);
		nap_us(50);
	}
	close(sock);
	return 0;
}

static void test_hostile_positions_cannot_hold_publisher(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_hostile"));
	const uint32_t deadline_ms = 1000;
	kite *k = open_publisher(UINT32_MAX, deadline_ms);
	sh->publisher_id = kite_id(k);
	struct hostile_args h[4] = {{H_GARBAGE, 1}, {H_BAD_SLOT, 2}, {H_UNSEALED, 3},
				    {H_SHORT, 4}};
	for (int i = 0; i < 4; i++) {
		assert_true(child_start(hostile, &h[i]) > 0);
		wait_flag(&sh->ready[h[i].index]);
	}
	/* An honest reliable subscriber beside them gets everything. */
	struct sub_args honest = {0, 1, 0, 0};
	start_sub(&honest);
	struct pub_result res = {0};
	publish_range(k, 1, 5000, &res);
	printf("# 5000 messages beside 4 hostile reliable subscribers in %.1f ms, "
	       "worst publish %.1f ms (deadline %u ms)\n",
	       res.wall_ns / 1e6, res.worst_ns / 1e6, deadline_ms);
	assert_true(res.worst_ns < (uint64_t)(deadline_ms + 1500) * 1000000u);
	assert_true(res.wall_ns < (uint64_t)(2 * deadline_ms + 5000) * 1000000u);
	sh->stop_hostile = 1;
	kite_close(k);
	expect_all(0, 5000);
}

/* A subscriber without a slot for a ring (POS_SLOTS or more: its page is
 * full) says so, and its publisher reads it as radio at once instead of
 * waiting out its deadline. */
static void test_no_slot_is_radio_at_once(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("rel_noslot"));
	kite *k = open_publisher(UINT32_MAX, 10000);
	sh->publisher_id = kite_id(k);
	struct hostile_args h = {H_BAD_SLOT, 1};
	assert_true(child_start(hostile, &h) > 0);
	wait_flag(&sh->ready[1]);
	struct pub_result res = {0};
	publish_range(k, 1, 3000, &res);
	printf("# worst publish %.1f ms (deadline 10000 ms)\n", res.worst_ns / 1e6);
	assert_true(res.worst_ns < 3000000000u);
	sh->stop_hostile = 1;
	kite_close(k);
}

static void test_options_checked(void **state)
{
	(void)state;
	kite *k;
	kite_options o = {.bus = test_bus("rel_opts"), .reliable_deadline_ms = 60001};
	assert_int_equal(kite_open(&k, &o), -EINVAL);
	o.reliable_deadline_ms = 0;
	o.reserved32 = 1;
	assert_int_equal(kite_open(&k, &o), -EINVAL);
	o.reserved32 = 0;
	o.reserved[2] = 1;
	assert_int_equal(kite_open(&k, &o), -EINVAL);
	o.reserved[2] = 0;
	assert_int_equal(kite_open(&k, &o), 0);
	struct kite_sub_options so = {0};
	so.flags = 2;
	assert_int_equal(kite_subscribe_opts(k, "a.b", &so), -EINVAL);
	so.flags = KITE_SUB_RELIABLE;
	so.reserved[3] = 1;
	assert_int_equal(kite_subscribe_opts(k, "a.b", &so), -EINVAL);
	so.reserved[3] = 0;
	so.reserved32 = 1;
	assert_int_equal(kite_subscribe_opts(k, "a.b", &so), -EINVAL);
	so.reserved32 = 0;
	so.last_n = 5;
	assert_int_equal(kite_subscribe_opts(k, "a.b", &so), -ENOTSUP);
	so.last_n = 0;
	so.last_ms = 5;
	assert_int_equal(kite_subscribe_opts(k, "a.b", &so), -ENOTSUP);
	so.last_ms = 0;
	assert_int_equal(kite_subscribe_opts(k, "a.b.>", &so), 0);
	assert_int_equal(kite_subscribe_opts(k, "a.b.>", &so), 0); /* again: no-op */
	assert_int_equal(kite_subscribe(k, "a.b.>"), -EEXIST);   /* other delivery */
	assert_int_equal(kite_subscribe_opts(k, "a.b.*", NULL), 0);
	so.flags = KITE_SUB_RELIABLE;
	assert_int_equal(kite_subscribe_opts(k, "a.b.*", &so), -EEXIST);
	assert_int_equal(kite_subscribe_opts(k, "bad..name", &so), KITE_EBADNAME);
	assert_int_equal(kite_subscribe_opts(NULL, "a", &so), -EINVAL);
	assert_int_equal(kite_unsubscribe(k, "a.b.>"), 0);
	assert_int_equal(kite_subscribe(k, "a.b.>"), 0); /* radio now */
	kite_close(k);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_options_checked),
		T(test_slow_subscriber_eagain),
		T(test_slow_subscriber_waits),
		T(test_four_reliable_subscribers),
		T(test_killed_and_stopped_release_publisher),
		T(test_slow_but_moving_is_never_dropped),
		T(test_unsubscribe_releases_publisher),
		T(test_hostile_positions_cannot_hold_publisher),
		T(test_no_slot_is_radio_at_once),
	};
	if (getenv("KITE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KITE_TEST_FILTER"));
	return cmocka_run_group_tests_name("reliable", tests, NULL, NULL);
}
