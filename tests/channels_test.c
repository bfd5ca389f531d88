/* Local channels across processes, with exact sequence checks.
 *
 * Publishers and subscribers run in forked children that report through
 * shared counters and exit codes. kite never makes a publisher wait, so a
 * test that wants "no loss" paces its publisher itself: each subscriber
 * stores the last seq it read, and the publisher waits (with a deadline)
 * while it is more than a window ahead of any subscriber that has joined.
 * Every test uses its own bus, so tests never meet each other or a demo. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"
#include "rawpeer.h"
#include "shm.h"

#define MAX_SUBS 6
#define MAX_PUBS 4
#define P_OFF UINT64_MAX            /* subscriber not taking part */
#define P_JOINING (UINT64_MAX - 1)  /* publisher: note your head, then pace */
#define CHILD_MS 90000             /* no child outlives this */
#define NOBODY 65534

struct shared {
	_Atomic uint64_t progress[MAX_SUBS][MAX_PUBS]; /* last seq read */
	_Atomic uint64_t published[MAX_PUBS];
	_Atomic int stop;
	pid_t pub_pid[MAX_PUBS];
	uid_t pub_uid[MAX_PUBS];
	gid_t pub_gid[MAX_PUBS];
	uint64_t pub_id[MAX_PUBS];
	_Atomic uint64_t received[MAX_SUBS], lost[MAX_SUBS];
	uint64_t first_seq[MAX_SUBS][MAX_PUBS];
	pid_t msg_pid[MAX_SUBS];
	uid_t msg_uid[MAX_SUBS];
	gid_t msg_gid[MAX_SUBS];
	uint64_t wakeups_sent[MAX_PUBS];
	_Atomic int pub_refused, pub_refused_by_peer;
	_Atomic unsigned pub_refused_uid;
	uint64_t checksum;
	_Atomic int ponger_ready;
};

static struct shared *sh;
static char bus[96];

/* Every big_every-th message carries BIG_EXTRA more bytes: more than a
 * 2 KiB slot holds, so it is a record several slots long (inline up to an
 * eighth of the ring; it travelled as a memfd of its own before the pool:
 * pool_test.c covers that path now) (0: none). Set before the children are
 * forked. */
#define BIG_EXTRA 3000
#define PAYLOAD_MAX (sizeof(struct head) + 300 + BIG_EXTRA)
static unsigned big_every;

static int setup(void **state)
{
	(void)state;
	sh = shared_alloc(sizeof *sh);
	assert_non_null(sh);
	big_every = 0;
	for (int i = 0; i < MAX_SUBS; i++)
		for (int j = 0; j < MAX_PUBS; j++)
			sh->progress[i][j] = P_OFF;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	child_kill_all();
	shared_free(sh, sizeof *sh);
	return 0;
}

#define SETUP(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static void use_bus(const char *name)
{
	snprintf(bus, sizeof bus, "%s", test_bus(name));
}

/* Payload of publisher j's message seq: its index, its seq, then bytes
 * derived from both. */
struct head {
	uint32_t pub;
	uint32_t len;
	uint64_t seq;
};

static size_t payload_fill(uint8_t *buf, uint32_t j, uint64_t seq)
{
	size_t len = sizeof(struct head) + (size_t)(seq * 37 % 300);
	if (big_every && seq % big_every == 0)
		len += BIG_EXTRA;
	struct head h = {j, (uint32_t)len, seq};
	memcpy(buf, &h, sizeof h);
	for (size_t i = sizeof h; i < len; i++)
		buf[i] = (uint8_t)(seq * 13 + i * 7 + j);
	return len;
}

/* 0 if data is publisher j's message seq, byte for byte. */
static int payload_check(const void *data, size_t len, uint32_t *j, uint64_t *seq)
{
	struct head h;
	if (len < sizeof h)
		return -1;
	memcpy(&h, data, sizeof h);
	if (h.pub >= MAX_PUBS || h.len != len)
		return -1;
	uint8_t want[PAYLOAD_MAX];
	if (payload_fill(want, h.pub, h.seq) != len || memcmp(want, data, len))
		return -1;
	*j = h.pub;
	*seq = h.seq;
	return 0;
}

static kite *open_handle(uint32_t ring_slots, uint32_t spin_us)
{
	kite_options o = {.bus = bus, .ring_slots = ring_slots, .spin_us = spin_us,
			  .handshake_ms = 5000};
	kite *k = NULL;
	int rc = kite_open(&k, &o);
	CHILD_CHECK(rc == 0, "kite_open: %s", kite_strerror(rc));
	return k;
}

/* In a child: the next event (KITE_PUBLISHER_NEW skipped if skip_new),
 * waiting through time-outs until the deadline. */
static void child_recv(kite *k, kite_event *ev, uint64_t deadline, int skip_new)
{
	for (;;) {
		CHILD_CHECK(mono_ms() < deadline, "nothing arrived in time");
		int rc = kite_recv(k, ev, 1000);
		if (rc == -ETIMEDOUT)
			continue;
		CHILD_CHECK(rc == 0, "recv: %s", kite_strerror(rc));
		if (!skip_new || ev->type != KITE_PUBLISHER_NEW)
			return;
	}
}

/* Publisher j: wait until every joined subscriber is within window of seq. */
static void pace(uint32_t j, uint64_t seq, uint32_t window, uint64_t deadline)
{
	if (!window)
		return;
	for (;;) {
		int ahead = 0;
		for (int i = 0; i < MAX_SUBS; i++) {
			uint64_t v = atomic_load(&sh->progress[i][j]);
			if (v == P_OFF)
				continue;
			if (v == P_JOINING) {
				uint64_t expected = P_JOINING;
				atomic_compare_exchange_strong(&sh->progress[i][j], &expected,
							       seq - 1);
				continue;
			}
			if (v + window < seq)
				ahead = 1;
		}
		if (!ahead)
			return;
		CHILD_CHECK(mono_ms() < deadline,
			    "publisher %u stalled at seq %llu (subscribers at %lld %lld %lld)",
			    j, (unsigned long long)seq, (long long)sh->progress[0][j],
			    (long long)sh->progress[1][j], (long long)sh->progress[2][j]);
		nap_us(50);
	}
}

struct pub_args {
	uint32_t index;
	const char *channel;
	uint64_t count;     /* 0: until killed or sh->stop */
	uint32_t window;    /* 0: no pacing */
	uint32_t ring_slots;
	unsigned burst_nap_us; /* >0: nap this long after every 100 messages */
	int go_fd;          /* wait for a byte here before kite_open (-1: no) */
	int ready_fd;       /* a byte here once open (-1: no) */
	int done_fd;        /* wait for a byte here before closing (-1: no) */
};

static int publisher(void *arg)
{
	struct pub_args *a = arg;
	uint32_t j = a->index;
	if (a->go_fd >= 0)
		CHILD_CHECK(pipe_wait(a->go_fd, CHILD_MS) >= 0, "no go");
	sh->pub_pid[j] = getpid();
	sh->pub_uid[j] = getuid();
	sh->pub_gid[j] = getgid();
	kite *k = open_handle(a->ring_slots, 0);
	sh->pub_id[j] = kite_id(k);
	if (a->ready_fd >= 0)
		pipe_send(a->ready_fd, 'r');
	uint64_t deadline = mono_ms() + CHILD_MS;
	uint8_t buf[PAYLOAD_MAX];
	for (uint64_t seq = 1; !a->count || seq <= a->count; seq++) {
		if (atomic_load(&sh->stop))
			break;
		pace(j, seq, a->window, deadline);
		size_t len = payload_fill(buf, j, seq);
		int64_t got = kite_publish(k, a->channel, buf, len);
		CHILD_CHECK(got == (int64_t)seq, "publish %llu returned %lld (%s)",
			    (unsigned long long)seq, (long long)got,
			    got < 0 ? kite_strerror((int)got) : "wrong seq");
		atomic_store(&sh->published[j], seq);
		if (a->burst_nap_us && seq % 100 == 0)
			nap_us(a->burst_nap_us);
	}
	kite_stats st;
	kite_get_stats(k, &st);
	sh->wakeups_sent[j] = st.wakeups_sent;
	if (a->done_fd >= 0)
		CHILD_CHECK(pipe_wait(a->done_fd, CHILD_MS) >= 0, "no done");
	kite_close(k);
	return 0;
}

struct sub_args {
	int index;
	const char *pattern;
	int npubs;          /* publishers 0..npubs-1 take part */
	uint64_t count;     /* each publishes seq 1..count */
	int late;           /* joins mid-stream */
	int until_gone;     /* stream ends with KITE_PUBLISHER_GONE */
	uint32_t spin_us;
	int ready_fd;
};

/* A subscriber that accepts nothing but each publisher's consecutive
 * sequence with exact payloads, from seq 1 (or from its join point). */
static int subscriber(void *arg)
{
	struct sub_args *a = arg;
	int i = a->index;
	kite *k = open_handle(0, a->spin_us);
	uint64_t next[MAX_PUBS] = {0}, joined_at = 0;
	for (int j = 0; j < a->npubs; j++)
		atomic_store(&sh->progress[i][j], a->late ? P_JOINING : 0);
	if (a->late)
		joined_at = atomic_load(&sh->published[0]);
	int rc = kite_subscribe(k, a->pattern);
	CHILD_CHECK(rc == 0, "subscribe: %s", kite_strerror(rc));
	uint64_t subscribed_at = atomic_load(&sh->published[0]);
	/* A late joiner's ring starts somewhere after joined_at: from here on
	 * the publisher paces itself by this mark (its window is small enough
	 * that the ring cannot overrun us before our first read). */
	if (a->late)
		atomic_store(&sh->progress[i][0], subscribed_at);
	if (a->ready_fd >= 0)
		pipe_send(a->ready_fd, 's');
	uint64_t deadline = mono_ms() + CHILD_MS;
	int done = 0, gone = 0;
	while (!done) {
		kite_event ev;
		child_recv(k, &ev, deadline, 1);
		if (ev.type == KITE_PUBLISHER_GONE && a->until_gone) {
			gone = 1;
			break;
		}
		if (ev.type == KITE_PUBLISHER_GONE) {
			/* Only once its whole stream has been read. */
			int j = 0;
			while (j < a->npubs && sh->pub_id[j] != ev.msg.publisher)
				j++;
			CHILD_CHECK(j < a->npubs && next[j] == a->count + 1,
				    "publisher gone before its last message: %s", ev.text);
			continue;
		}
		CHILD_CHECK(ev.type == KITE_MESSAGE, "sub %d: event %d (lost %llu): %s", i,
			    ev.type, (unsigned long long)ev.lost, ev.text);
		uint32_t j;
		uint64_t seq;
		CHILD_CHECK(payload_check(ev.msg.data, ev.msg.len, &j, &seq) == 0,
			    "sub %d: bad payload, len %zu", i, ev.msg.len);
		CHILD_CHECK((int)j < a->npubs, "unknown publisher %u", j);
		CHILD_CHECK(seq == ev.msg.seq, "payload seq %llu, msg.seq %llu",
			    (unsigned long long)seq, (unsigned long long)ev.msg.seq);
		if (!next[j]) {
			sh->first_seq[i][j] = seq;
			if (a->late)
				CHILD_CHECK(seq > joined_at && seq <= subscribed_at + 2,
					    "late joiner started at %llu, joined between "
					    "%llu and %llu", (unsigned long long)seq,
					    (unsigned long long)joined_at,
					    (unsigned long long)subscribed_at);
			else
				CHILD_CHECK(seq == 1, "sub %d first seq %llu", i,
					    (unsigned long long)seq);
			sh->msg_pid[i] = ev.msg.pid;
			sh->msg_uid[i] = ev.msg.uid;
			sh->msg_gid[i] = ev.msg.gid;
		} else {
			CHILD_CHECK(seq == next[j], "sub %d from pub %u: seq %llu, expected %llu",
				    i, j, (unsigned long long)seq,
				    (unsigned long long)next[j]);
		}
		CHILD_CHECK(ev.msg.publisher == sh->pub_id[j] && ev.msg.pid == sh->pub_pid[j],
			    "identity of publisher %u", j);
		next[j] = seq + 1;
		atomic_store(&sh->progress[i][j], seq);
		atomic_fetch_add(&sh->received[i], 1);
		done = !a->until_gone;
		for (int p = 0; p < a->npubs; p++)
			if (next[p] != a->count + 1)
				done = 0;
	}
	if (gone) {
		/* Nothing more, and no hang. */
		kite_event ev;
		rc = kite_recv(k, &ev, 300);
		CHILD_CHECK(rc == -ETIMEDOUT, "after GONE: %d", rc);
	}
	kite_close(k);
	return 0;
}

static struct pub_args pub_default(uint32_t index, const char *channel,
				   uint64_t count, uint32_t window)
{
	return (struct pub_args){.index = index, .channel = channel, .count = count,
				 .window = window, .go_fd = -1, .ready_fd = -1,
				 .done_fd = -1};
}

static struct sub_args sub_default(int index, const char *pattern, int npubs,
				   uint64_t count, int ready_fd)
{
	return (struct sub_args){.index = index, .pattern = pattern, .npubs = npubs,
				 .count = count, .ready_fd = ready_fd};
}

/* Start n subscribers and wait until each has subscribed. */
static void start_subs(pid_t *pids, struct sub_args *args, int n, int ready[2])
{
	for (int i = 0; i < n; i++)
		pids[i] = child_start(subscriber, &args[i]);
	for (int i = 0; i < n; i++)
		assert_int_equal(pipe_wait(ready[0], 30000), 's');
}

static void expect_exit0(pid_t pid, const char *who)
{
	int rc = child_wait(pid, CHILD_MS + 30000);
	if (rc != 0)
		fail_msg("%s (pid %ld) ended with %d", who, (long)pid, rc);
}

static void fan(const char *name, int npubs, int nsubs, uint64_t count, uint32_t window)
{
	use_bus(name);
	int ready[2];
	pipe_make(ready);
	struct sub_args sa[MAX_SUBS];
	pid_t subs[MAX_SUBS], pubs[MAX_PUBS];
	for (int i = 0; i < nsubs; i++)
		sa[i] = sub_default(i, "fan.data", npubs, count, ready[1]);
	start_subs(subs, sa, nsubs, ready);
	struct pub_args pa[MAX_PUBS];
	for (int j = 0; j < npubs; j++) {
		pa[j] = pub_default((uint32_t)j, "fan.data", count, window);
		pubs[j] = child_start(publisher, &pa[j]);
	}
	for (int i = 0; i < nsubs; i++)
		expect_exit0(subs[i], "subscriber");
	for (int j = 0; j < npubs; j++)
		expect_exit0(pubs[j], "publisher");
	for (int i = 0; i < nsubs; i++)
		assert_int_equal(sh->received[i], count * (uint64_t)npubs);
	pipe_close(ready);
}

static void test_one_to_one(void **state)
{
	(void)state;
	fan("one_to_one", 1, 1, 100000, 512);
}

static void test_one_to_four(void **state)
{
	(void)state;
	fan("one_to_four", 1, 4, 20000, 512);
}

static void test_three_to_one(void **state)
{
	(void)state;
	fan("three_to_one", 3, 1, 20000, 512);
}

/* Large messages among small ones, to two subscribers: still one
 * consecutive sequence. The window keeps fewer large messages in flight
 * than a subscriber holds (LARGE_KEEP, 64). */
static void test_large_messages_in_sequence(void **state)
{
	(void)state;
	big_every = 4;
	fan("large_mix", 1, 2, 10000, 128);
	big_every = 0;
}

static void test_credentials(void **state)
{
	(void)state;
	fan("credentials", 1, 1, 10, 512);
	assert_int_equal(sh->msg_pid[0], sh->pub_pid[0]);
	assert_int_equal(sh->msg_uid[0], getuid());
	assert_int_equal(sh->msg_gid[0], getgid());
	assert_int_equal(sh->msg_uid[0], sh->pub_uid[0]);
	assert_int_equal(sh->msg_gid[0], sh->pub_gid[0]);
	assert_int_not_equal(sh->msg_pid[0], getpid());
}

/* The subscriber is there (and subscribed) before the publisher opens:
 * it sees the ring attach, then every message from seq 1. */
static int sub_first(void *arg)
{
	int *fds = arg;
	kite *k = open_handle(0, 0);
	kite_stats st;
	kite_get_stats(k, &st);
	CHILD_CHECK(st.peers == 0, "a peer on a private bus: %llu",
		    (unsigned long long)st.peers);
	CHILD_CHECK(kite_subscribe(k, "sbp.>") == 0, "subscribe");
	sh->progress[0][0] = 0;
	pipe_send(fds[1], 's');
	int attached = 0;
	uint64_t next = 1, deadline = mono_ms() + CHILD_MS;
	while (next <= 5000) {
		kite_event ev;
		child_recv(k, &ev, deadline, 0);
		if (ev.type == KITE_PUBLISHER_NEW) {
			CHILD_CHECK(!attached && next == 1, "attach after data");
			CHILD_CHECK(!strcmp(ev.msg.channel, "sbp.x"), "channel %s",
				    ev.msg.channel);
			attached = 1;
			continue;
		}
		CHILD_CHECK(ev.type == KITE_MESSAGE && attached, "event %d", ev.type);
		CHILD_CHECK(ev.msg.seq == next, "seq %llu, expected %llu",
			    (unsigned long long)ev.msg.seq, (unsigned long long)next);
		CHILD_CHECK(!strcmp(ev.msg.channel, "sbp.x"), "channel");
		atomic_store(&sh->progress[0][0], next);
		next++;
	}
	kite_close(k);
	return 0;
}

static void test_subscriber_before_publisher(void **state)
{
	(void)state;
	use_bus("sub_before_pub");
	int ready[2];
	pipe_make(ready);
	pid_t sub = child_start(sub_first, ready);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	struct pub_args pa = pub_default(0, "sbp.x", 5000, 512);
	pid_t pub = child_start(publisher, &pa);
	expect_exit0(sub, "subscriber");
	expect_exit0(pub, "publisher");
	pipe_close(ready);
}

static void wait_progress(int i, int j, uint64_t at_least)
{
	uint64_t deadline = mono_ms() + CHILD_MS;
	for (;;) {
		uint64_t v = atomic_load(&sh->progress[i][j]);
		if (v != P_OFF && v != P_JOINING && v >= at_least)
			return;
		if (mono_ms() > deadline)
			fail_msg("subscriber %d never reached seq %llu", i,
				 (unsigned long long)at_least);
		nap_us(1000);
	}
}

static void test_late_joiner(void **state)
{
	(void)state;
	use_bus("late_joiner");
	int ready[2];
	pipe_make(ready);
	const uint64_t n = 30000;
	struct sub_args sa[2] = {sub_default(0, "late.x", 1, n, ready[1]),
				 sub_default(1, "late.x", 1, n, ready[1])};
	sa[1].late = 1;
	pid_t subs[2];
	start_subs(subs, sa, 1, ready);
	struct pub_args pa = pub_default(0, "late.x", n, 256);
	pid_t pub = child_start(publisher, &pa);
	wait_progress(0, 0, 5000);
	/* The publisher paces by the late joiner from now on, so it cannot
	 * finish and leave before a slow machine has started and linked it. */
	atomic_store(&sh->progress[1][0], P_JOINING);
	subs[1] = child_start(subscriber, &sa[1]);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	expect_exit0(subs[0], "early subscriber");
	expect_exit0(subs[1], "late subscriber");
	expect_exit0(pub, "publisher");
	assert_true(sh->first_seq[1][0] > 5000);
	assert_int_equal(sh->received[1], n + 1 - sh->first_seq[1][0]);
	assert_int_equal(sh->received[0], n);
	pipe_close(ready);
}

static void test_publisher_killed(void **state)
{
	(void)state;
	use_bus("publisher_killed");
	int ready[2];
	pipe_make(ready);
	struct sub_args sa = sub_default(0, "kill.x", 1, 0, ready[1]);
	sa.until_gone = 1;
	pid_t sub;
	start_subs(&sub, &sa, 1, ready);
	struct pub_args pa = pub_default(0, "kill.x", 0, 512);
	pid_t pub = child_start(publisher, &pa);
	wait_progress(0, 0, 3000);
	child_kill(pub);
	expect_exit0(sub, "subscriber");
	assert_true(sh->received[0] >= 3000);
	pipe_close(ready);
}

static void test_subscriber_killed(void **state)
{
	(void)state;
	use_bus("subscriber_killed");
	int ready[2];
	pipe_make(ready);
	const uint64_t n = 30000;
	struct sub_args sa[2] = {sub_default(0, "sk.x", 1, n, ready[1]),
				 sub_default(1, "sk.x", 1, n, ready[1])};
	pid_t subs[2];
	start_subs(subs, sa, 2, ready);
	struct pub_args pa = pub_default(0, "sk.x", n, 512);
	pid_t pub = child_start(publisher, &pa);
	wait_progress(1, 0, 3000);
	child_kill(subs[1]);
	atomic_store(&sh->progress[1][0], P_OFF); /* stop pacing for it */
	expect_exit0(subs[0], "surviving subscriber");
	expect_exit0(pub, "publisher"); /* every publish returned its seq */
	assert_int_equal(sh->received[0], n);
	pipe_close(ready);
}

/* A subscriber that reads slowly from a 64-slot ring: every message is
 * received in order or reported lost, exactly once. */
struct slow_args {
	int ready_fd;
	uint64_t count;
};

static int slow_sub(void *arg)
{
	struct slow_args *a = arg;
	kite *k = open_handle(0, 0);
	CHILD_CHECK(kite_subscribe(k, "slow.x") == 0, "subscribe");
	pipe_send(a->ready_fd, 's');
	uint64_t deadline = mono_ms() + CHILD_MS;
	/* Fall behind on purpose: the first read comes after 200 messages. */
	while (atomic_load(&sh->published[0]) < 200) {
		CHILD_CHECK(mono_ms() < deadline, "publisher never started");
		nap_us(1000);
	}
	uint64_t expect = 1, received = 0, lost = 0, reads = 0;
	while (received + lost < a->count) {
		kite_event ev;
		child_recv(k, &ev, deadline, 1);
		if (ev.type == KITE_LOSS) {
			CHILD_CHECK(ev.lost > 0, "a loss of 0");
			lost += ev.lost;
			expect += ev.lost;
			continue;
		}
		CHILD_CHECK(ev.type == KITE_MESSAGE, "event %d: %s", ev.type, ev.text);
		uint32_t j;
		uint64_t seq;
		CHILD_CHECK(payload_check(ev.msg.data, ev.msg.len, &j, &seq) == 0, "payload");
		CHILD_CHECK(seq == expect && ev.msg.seq == expect, "seq %llu, expected %llu",
			    (unsigned long long)seq, (unsigned long long)expect);
		expect++;
		received++;
		if (++reads % 8 == 0)
			nap_us(20);
	}
	kite_stats st;
	kite_get_stats(k, &st);
	CHILD_CHECK(st.lost == lost && st.received == received, "stats %llu/%llu",
		    (unsigned long long)st.lost, (unsigned long long)st.received);
	sh->received[0] = received;
	sh->lost[0] = lost;
	kite_close(k);
	return 0;
}

static void slow_run(const char *name, uint64_t count)
{
	use_bus(name);
	int ready[2], done[2];
	pipe_make(ready);
	pipe_make(done);
	struct slow_args sa = {ready[1], count};
	pid_t sub = child_start(slow_sub, &sa);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	struct pub_args pa = pub_default(0, "slow.x", sa.count, 0);
	pa.ring_slots = 64;
	pa.burst_nap_us = 300;
	pa.done_fd = done[0];
	pid_t pub = child_start(publisher, &pa);
	expect_exit0(sub, "slow subscriber");
	pipe_send(done[1], 'd');
	expect_exit0(pub, "publisher");
	print_message("# slow subscriber: %llu received, %llu lost\n",
		      (unsigned long long)sh->received[0],
		      (unsigned long long)sh->lost[0]);
	assert_int_equal(sh->received[0] + sh->lost[0], sa.count);
	assert_true(sh->lost[0] >= 200 - 64);
	assert_true(sh->received[0] > 0);
	pipe_close(ready);
	pipe_close(done);
}

static void test_slow_subscriber_losses_counted(void **state)
{
	(void)state;
	slow_run("slow_subscriber", 20000);
}

/* The same with every third message too big for a slot (a record several
 * slots long): overrun, each is one more counted loss. */
static void test_slow_subscriber_large_losses_counted(void **state)
{
	(void)state;
	big_every = 3;
	slow_run("slow_large", 6000);
	big_every = 0;
}

/* --- policy: a peer of another uid --- */

struct refuse_pub_args {
	int cmd_fd, ack_fd;
};

static int refuse_pub(void *arg)
{
	struct refuse_pub_args *a = arg;
	kite *k = open_handle(0, 0);
	pipe_send(a->ack_fd, 'r');
	uint64_t deadline = mono_ms() + CHILD_MS;
	uint8_t buf[64] = {1};
	while (!atomic_load(&sh->stop)) {
		CHILD_CHECK(mono_ms() < deadline, "never stopped");
		CHILD_CHECK(kite_publish(k, "sec.data", buf, sizeof buf) > 0, "publish");
		kite_event ev;
		while (kite_recv(k, &ev, 0) == 0)
			if (ev.type == KITE_REFUSED) {
				atomic_store(&sh->pub_refused_by_peer, ev.refused_by_peer);
				atomic_store(&sh->pub_refused_uid, ev.msg.uid);
				atomic_fetch_add(&sh->pub_refused, 1);
			}
		struct pollfd p = {.fd = a->cmd_fd, .events = POLLIN};
		if (poll(&p, 1, 2) == 1 && pipe_wait(a->cmd_fd, 1000) == 'a') {
			CHILD_CHECK(kite_allow_uid(k, "sec.>", NOBODY) == 0, "allow");
			pipe_send(a->ack_fd, 'A');
		}
	}
	kite_close(k);
	return 0;
}

static void become_nobody(void)
{
	CHILD_CHECK(setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0,
		    "drop privileges: %s", strerror(errno));
	CHILD_CHECK(getuid() == NOBODY && geteuid() == NOBODY, "still root");
}

/* expect_refusal: the publisher refuses us and no message arrives;
 * otherwise messages arrive from a root publisher and nothing is refused. */
static int nobody_sub(void *arg)
{
	int expect_refusal = *(int *)arg;
	become_nobody();
	kite *k = open_handle(0, 0);
	CHILD_CHECK(kite_subscribe(k, "sec.>") == 0, "subscribe");
	uint64_t deadline = mono_ms() + 30000, quiet_until = 0;
	int refused = 0, messages = 0;
	for (;;) {
		uint64_t now = mono_ms();
		CHILD_CHECK(now < deadline, "nothing happened (refused %d, messages %d)",
			    refused, messages);
		if (quiet_until && now >= quiet_until)
			break;
		kite_event ev;
		int rc = kite_recv(k, &ev, 100);
		if (rc == -ETIMEDOUT)
			continue;
		CHILD_CHECK(rc == 0, "recv %d", rc);
		if (ev.type == KITE_REFUSED) {
			CHILD_CHECK(expect_refusal, "refused: %s", ev.text);
			CHILD_CHECK(ev.refused_by_peer == 1, "refused by us? %s", ev.text);
			CHILD_CHECK(ev.msg.uid == 0, "refuser uid %u", (unsigned)ev.msg.uid);
			refused++;
			/* Watch a while longer: still no message may come. */
			if (!quiet_until)
				quiet_until = mono_ms() + 500;
		} else if (ev.type == KITE_MESSAGE) {
			CHILD_CHECK(!expect_refusal, "a message despite the refusal");
			CHILD_CHECK(ev.msg.uid == 0 && !strcmp(ev.msg.channel, "sec.data"),
				    "message from uid %u", (unsigned)ev.msg.uid);
			if (++messages == 10)
				break;
		}
	}
	kite_stats st;
	kite_get_stats(k, &st);
	if (expect_refusal)
		CHILD_CHECK(st.received == 0 && st.refused >= 1, "stats");
	kite_close(k);
	return 0;
}

static void test_other_uid_refused_then_allowed(void **state)
{
	(void)state;
	use_bus("other_uid");
	int cmd[2], ack[2];
	pipe_make(cmd);
	pipe_make(ack);
	struct refuse_pub_args pa = {cmd[0], ack[1]};
	pid_t pub = child_start(refuse_pub, &pa);
	assert_int_equal(pipe_wait(ack[0], 30000), 'r');
	int refusal = 1;
	pid_t sub = child_start(nobody_sub, &refusal);
	expect_exit0(sub, "refused subscriber");
	uint64_t deadline = mono_ms() + 30000;
	while (!atomic_load(&sh->pub_refused) && mono_ms() < deadline)
		nap_us(1000);
	assert_true(atomic_load(&sh->pub_refused) >= 1);
	assert_int_equal(atomic_load(&sh->pub_refused_by_peer), 0);
	assert_int_equal(atomic_load(&sh->pub_refused_uid), NOBODY);

	pipe_send(cmd[1], 'a');
	assert_int_equal(pipe_wait(ack[0], 30000), 'A');
	int allowed = 0;
	sub = child_start(nobody_sub, &allowed);
	expect_exit0(sub, "allowed subscriber");
	atomic_store(&sh->stop, 1);
	expect_exit0(pub, "publisher");
	pipe_close(cmd);
	pipe_close(ack);
}

/* A subscriber (uid nobody) subscribed before a root publisher's stream
 * began, refused by it, then let in (kite_allow_uid): the stream begins
 * for it at the grant. It gets the LATE_AFTER messages published after
 * kite_allow_uid returned, from seq LATE_BEFORE + 1, and neither the
 * LATE_BEFORE published while it was refused nor a loss report for them
 * (it took the stream from seq 1, as one that had been there all along,
 * before). */
#define LATE_BEFORE 10
#define LATE_AFTER 5

static int refused_then_allowed_sub(void *arg)
{
	int ready_fd = *(int *)arg;
	become_nobody();
	kite *k = open_handle(0, 0);
	CHILD_CHECK(kite_subscribe(k, "late.>") == 0, "subscribe");
	pipe_send(ready_fd, 's');
	uint64_t deadline = mono_ms() + 30000, first = 0, messages = 0, lost = 0;
	int refused = 0;
	while (first + messages - 1 < LATE_BEFORE + LATE_AFTER || !messages) {
		kite_event ev;
		child_recv(k, &ev, deadline, 1);
		if (ev.type == KITE_REFUSED && !refused++)
			pipe_send(ready_fd, 'R');
		if (ev.type == KITE_LOSS)
			lost += ev.lost;
		if (ev.type != KITE_MESSAGE)
			continue;
		CHILD_CHECK(refused, "seq %llu before any refusal",
			    (unsigned long long)ev.msg.seq);
		if (!messages)
			first = ev.msg.seq;
		messages++;
	}
	/* Anything more would have come by now. */
	kite_event ev;
	while (kite_recv(k, &ev, 300) == 0)
		if (ev.type == KITE_MESSAGE || ev.type == KITE_LOSS)
			messages += 1000;
	CHILD_CHECK(first == LATE_BEFORE + 1 && messages == LATE_AFTER && lost == 0,
		    "first seq %llu, %llu messages, %llu lost (want %d, %d, 0)",
		    (unsigned long long)first, (unsigned long long)messages,
		    (unsigned long long)lost, LATE_BEFORE + 1, LATE_AFTER);
	kite_close(k);
	return 0;
}

static void test_refused_subscriber_allowed_later_gets_no_earlier_messages(void **state)
{
	(void)state;
	use_bus("allowed_later");
	int ready[2];
	pipe_make(ready);
	pid_t sub = child_start(refused_then_allowed_sub, &ready[1]);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	kite_options o = {.bus = bus, .handshake_ms = 5000, .idle_ms = UINT32_MAX};
	kite *pub = NULL;
	assert_int_equal(kite_open(&pub, &o), 0);
	for (int i = 0; i < LATE_BEFORE; i++)
		assert_int_equal(kite_publish(pub, "late.x", "m", 1), i + 1);
	assert_int_equal(pipe_wait(ready[0], 30000), 'R');
	assert_int_equal(kite_allow_uid(pub, "late.>", NOBODY), 0);
	for (int i = 0; i < LATE_AFTER; i++)
		assert_int_equal(kite_publish(pub, "late.x", "m", 1), LATE_BEFORE + i + 1);
	expect_exit0(sub, "subscriber let in later");
	kite_close(pub);
	pipe_close(ready);
}

/* --- sizes --- */

struct sizes_args {
	const size_t *sizes;
	int n;
	int ready_fd;
};

static uint8_t size_byte(size_t i, size_t len)
{
	return (uint8_t)((i * 2654435761u) >> 13 ^ len);
}

static int sizes_pub(void *arg)
{
	struct sizes_args *a = arg;
	kite *k = open_handle(0, 0);
	uint64_t deadline = mono_ms() + CHILD_MS;
	for (int m = 0; m < a->n; m++) {
		pace(0, (uint64_t)m + 1, 1, deadline);
		uint8_t *b = malloc(a->sizes[m] ? a->sizes[m] : 1);
		CHILD_CHECK(b, "malloc");
		for (size_t i = 0; i < a->sizes[m]; i++)
			b[i] = size_byte(i, a->sizes[m]);
		CHILD_CHECK(kite_publish(k, "size.x", b, a->sizes[m]) == m + 1, "publish");
		free(b);
	}
	pace(0, (uint64_t)a->n + 1, 1, deadline);
	kite_close(k);
	return 0;
}

static int sizes_sub(void *arg)
{
	struct sizes_args *a = arg;
	kite *k = open_handle(0, 0);
	CHILD_CHECK(kite_subscribe(k, "size.x") == 0, "subscribe");
	sh->progress[0][0] = 0;
	pipe_send(a->ready_fd, 's');
	uint64_t deadline = mono_ms() + CHILD_MS;
	for (int m = 0; m < a->n;) {
		kite_event ev;
		child_recv(k, &ev, deadline, 1);
		CHILD_CHECK(ev.type == KITE_MESSAGE, "event %d: %s", ev.type, ev.text);
		CHILD_CHECK(ev.msg.seq == (uint64_t)m + 1, "seq");
		CHILD_CHECK(ev.msg.len == a->sizes[m], "len %zu, expected %zu", ev.msg.len,
			    a->sizes[m]);
		const uint8_t *d = ev.msg.data;
		for (size_t i = 0; i < ev.msg.len; i++)
			CHILD_CHECK(d[i] == size_byte(i, ev.msg.len), "byte %zu of %zu", i,
				    ev.msg.len);
		atomic_store(&sh->progress[0][0], (uint64_t)++m);
	}
	kite_close(k);
	return 0;
}

static void test_slot_boundary_sizes(void **state)
{
	(void)state;
	use_bus("slot_boundary");
	static const size_t sizes[] = {0, 1, 2048 - 33, 2048 - 32, 2048 - 31, 2048,
				       4096, 2048 - 32, 0, 1 << 20, 2048 - 31, 7};
	int ready[2];
	pipe_make(ready);
	struct sizes_args a = {sizes, sizeof sizes / sizeof *sizes, ready[1]};
	pid_t sub = child_start(sizes_sub, &a);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	pid_t pub = child_start(sizes_pub, &a);
	expect_exit0(sub, "subscriber");
	expect_exit0(pub, "publisher");
	pipe_close(ready);
}

/* --- a 1 GiB message --- */

#define GIB (1ull << 30)
#define STRIDE 4093

static uint64_t gib_word(uint64_t i) { return i * 0x9e3779b97f4a7c15ull + 12345; }

static uint64_t strided_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	for (size_t i = 0; i < len; i += STRIDE)
		s = s * 31 + p[i];
	return s;
}

static int gib_pub(void *arg)
{
	(void)arg;
	uint64_t *b = malloc(GIB);
	CHILD_CHECK(b, "malloc 1 GiB");
	for (uint64_t i = 0; i < GIB / 8; i++)
		b[i] = gib_word(i);
	sh->checksum = strided_sum((const uint8_t *)b, GIB);
	kite *k = open_handle(0, 0);
	uint64_t deadline = mono_ms() + CHILD_MS;
	pace(0, 1, 1, deadline);
	CHILD_CHECK(kite_publish(k, "gib.x", "hi", 2) == 1, "publish small");
	pace(0, 2, 1, deadline); /* the ring is attached before the big one */
	int64_t rc = kite_publish(k, "gib.x", b, GIB);
	CHILD_CHECK(rc == 2, "publish 1 GiB: %s", kite_strerror((int)rc));
	free(b);
	pace(0, 3, 1, deadline);
	kite_close(k);
	return 0;
}

static int gib_sub(void *arg)
{
	int *ready_fd = arg;
	kite *k = open_handle(0, 0);
	CHILD_CHECK(kite_subscribe(k, "gib.x") == 0, "subscribe");
	sh->progress[0][0] = 0;
	pipe_send(*ready_fd, 's');
	uint64_t deadline = mono_ms() + CHILD_MS;
	for (uint64_t m = 1; m <= 2;) {
		kite_event ev;
		child_recv(k, &ev, deadline, 1);
		CHILD_CHECK(ev.type == KITE_MESSAGE, "event %d: %s", ev.type, ev.text);
		CHILD_CHECK(ev.msg.seq == m, "seq");
		if (m == 2) {
			CHILD_CHECK(ev.msg.len == GIB, "len %zu", ev.msg.len);
			const uint8_t *d = ev.msg.data;
			static const uint64_t at[] = {0, 1, 7, 8, 4095, 4096, 1ull << 20,
						      (1ull << 29) + 3, GIB - 4096, GIB - 1};
			for (size_t i = 0; i < sizeof at / sizeof *at; i++) {
				uint64_t w = gib_word(at[i] / 8), want;
				memcpy(&want, &w, 8);
				CHILD_CHECK(d[at[i]] == ((const uint8_t *)&want)[at[i] % 8],
					    "byte at %llu", (unsigned long long)at[i]);
			}
			CHILD_CHECK(strided_sum(d, GIB) == sh->checksum, "checksum");
		}
		atomic_store(&sh->progress[0][0], m++);
	}
	kite_close(k);
	return 0;
}

static void test_one_gib_message(void **state)
{
	(void)state;
	use_bus("one_gib");
	int ready[2];
	pipe_make(ready);
	pid_t sub = child_start(gib_sub, &ready[1]);
	assert_int_equal(pipe_wait(ready[0], 30000), 's');
	pid_t pub = child_start(gib_pub, NULL);
	expect_exit0(sub, "subscriber");
	expect_exit0(pub, "publisher");
	pipe_close(ready);
}

/* Bytes of memory available, from /proc/meminfo. */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb * 1024;
}

/* --- idle, wake-ups, poll --- */

/* A publisher that serves commands: 'p' publishes five messages on its
 * channel and answers 'd'; 'q' quits. */
struct cmd_pub_args {
	const char *channel;
	int cmd_fd, ack_fd;
};

static int cmd_pub(void *arg)
{
	struct cmd_pub_args *a = arg;
	kite *k = open_handle(0, 0);
	pipe_send(a->ack_fd, 'r');
	uint64_t seq = 0;
	for (;;) {
		int c = pipe_wait(a->cmd_fd, CHILD_MS);
		if (c == 'p') {
			for (int i = 0; i < 5; i++) {
				seq++;
				CHILD_CHECK(kite_publish(k, a->channel, &seq, sizeof seq) ==
						    (int64_t)seq,
					    "publish");
			}
			pipe_send(a->ack_fd, 'd');
		} else if (c == 'e') {
			CHILD_CHECK(kite_publish(k, "unsub.end", "", 0) > 0, "publish end");
			pipe_send(a->ack_fd, 'd');
		} else {
			break;
		}
	}
	kite_close(k);
	return 0;
}

struct cmd_pub {
	struct cmd_pub_args a;
	int cmd[2], ack[2];
	pid_t pid;
};

/* On the test's own bus: a command publisher, opened and waiting. */
static void cmd_pub_start(struct cmd_pub *c, const char *test, const char *channel)
{
	use_bus(test);
	pipe_make(c->cmd);
	pipe_make(c->ack);
	c->a = (struct cmd_pub_args){channel, c->cmd[0], c->ack[1]};
	c->pid = child_start(cmd_pub, &c->a);
	assert_int_equal(pipe_wait(c->ack[0], 30000), 'r');
}

static void cmd_pub_do(struct cmd_pub *c, char what)
{
	pipe_send(c->cmd[1], what);
	assert_int_equal(pipe_wait(c->ack[0], 30000), 'd');
}

static void cmd_pub_stop(struct cmd_pub *c)
{
	pipe_send(c->cmd[1], 'q');
	expect_exit0(c->pid, "command publisher");
	pipe_close(c->cmd);
	pipe_close(c->ack);
}

/* A handle of the test process itself, subscribed to pattern (or not:
 * NULL). */
static kite *parent_open(const char *pattern)
{
	kite_options o = {.bus = bus, .handshake_ms = 5000};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	if (pattern)
		assert_int_equal(kite_subscribe(k, pattern), 0);
	return k;
}

/* Receive n messages on channel (other events are skipped), seqs from first. */
static void parent_receive(kite *k, const char *channel, int n, uint64_t first)
{
	uint64_t deadline = mono_ms() + 30000;
	while (n > 0) {
		assert_true(mono_ms() < deadline);
		kite_event ev;
		int rc = kite_recv(k, &ev, 1000);
		if (rc == -ETIMEDOUT)
			continue;
		assert_int_equal(rc, 0);
		if (ev.type != KITE_MESSAGE)
			continue;
		assert_string_equal(ev.msg.channel, channel);
		assert_int_equal(ev.msg.seq, first);
		first++;
		n--;
	}
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Publish n messages on channel, then read them all back: the reader has
 * taken many in a row, so its next empty look is a caught-up one. */
static void stream_through(kite *pub, kite *sub, const char *channel, int n,
			   uint64_t *next_seq)
{
	char msg[64] = {0};
	for (int i = 0; i < n; i++)
		assert_true(kite_publish(pub, channel, msg, sizeof msg) > 0);
	parent_receive(sub, channel, n, *next_seq);
	*next_seq += (uint64_t)n;
}

/* A reader that catches up with its publisher after a streak waits a few
 * microseconds before it looks again (recv.c, slip): never in a pure
 * poll, never past its timeout. The fastest of 20 polls right after a
 * streak must take well under that wait (noise only adds time). */
static void test_caught_up_reader_waits_within_limits(void **state)
{
	(void)state;
	use_bus("slip");
	kite *sub = parent_open("slip.x");
	kite *pub = parent_open(NULL);
	uint64_t seq = 1;
	uint64_t fastest = UINT64_MAX;
	kite_event ev;
	for (int trial = 0; trial < 20; trial++) {
		stream_through(pub, sub, "slip.x", 200, &seq);
		uint64_t t0 = now_ns();
		assert_int_equal(kite_recv(sub, &ev, 0), -EAGAIN);
		uint64_t took = now_ns() - t0;
		fastest = took < fastest ? took : fastest;
	}
	print_message("# fastest pure poll after a streak: %llu ns\n",
		      (unsigned long long)fastest);
	assert_true(fastest < 4000);
	/* A 1 ms timeout after a streak: times out, after 1 ms, not much more. */
	stream_through(pub, sub, "slip.x", 200, &seq);
	uint64_t t0 = now_ns();
	assert_int_equal(kite_recv(sub, &ev, 1), -ETIMEDOUT);
	uint64_t took = now_ns() - t0;
	assert_true(took >= 1000000 && took < 500000000);
	kite_close(pub);
	kite_close(sub);
}

struct bursty {
	kite *pub;
	int bursts;
	unsigned seed;
};

/* Bursts of 1..300 messages, each after a pause of 0..20 us: the reader
 * keeps catching up, waiting, and finding the next burst mid-wait. */
static void *bursty_publisher(void *arg)
{
	struct bursty *b = arg;
	char msg[64] = {0};
	for (int i = 0; i < b->bursts; i++) {
		int n = 1 + (int)(rand_r(&b->seed) % 300);
		uint64_t until = now_ns() + rand_r(&b->seed) % 20000;
		while (now_ns() < until)
			;
		for (int j = 0; j < n; j++) {
			int64_t rc;
			/* (A reliable reader: the publisher waits for it.) */
			while ((rc = kite_publish(b->pub, "slip.y", msg, sizeof msg)) == -EAGAIN)
				;
			if (rc <= 0)
				return (void *)1;
		}
	}
	return NULL;
}

/* Messages that come while a caught-up reader waits are read next, in
 * order, none missing, whatever the timing (a reliable subscription, so a
 * stalled test machine cannot make the publisher overrun the reader). */
static void test_caught_up_reader_misses_nothing(void **state)
{
	(void)state;
	use_bus("slipb");
	kite *sub = parent_open(NULL);
	struct kite_sub_options so = {.flags = KITE_SUB_RELIABLE};
	assert_int_equal(kite_subscribe_opts(sub, "slip.y", &so), 0);
	kite *pub = parent_open(NULL);
	/* The publisher sees its reliable subscriber before the first burst. */
	uint64_t seq = 1;
	stream_through(pub, sub, "slip.y", 1, &seq);
	struct bursty b = {.pub = pub, .bursts = 3000, .seed = 7};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bursty_publisher, &b), 0);
	uint64_t deadline = mono_ms() + 60000, got = 0;
	void *failed = (void *)1;
	for (;;) {
		kite_event ev;
		int rc = kite_recv(sub, &ev, 200);
		if (rc == -ETIMEDOUT) {
			if (pthread_tryjoin_np(t, &failed) == 0)
				break; /* the publisher is done and everything is read */
			assert_true(mono_ms() < deadline);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_not_equal(ev.type, KITE_LOSS);
		if (ev.type != KITE_MESSAGE)
			continue;
		assert_int_equal(ev.msg.seq, seq);
		seq++;
		got++;
	}
	assert_null(failed);
	print_message("# %llu messages in bursts, all in order\n", (unsigned long long)got);
	assert_true(got >= 3000);
	kite_close(pub);
	kite_close(sub);
}

/* A hybrid reader: it polls (timeout 0) until a poll finds nothing, then
 * waits with a timeout. Its polls' hits are not "in a row" once a poll
 * missed, so the wait that follows is not a caught-up one and must not
 * begin with the 5 us slip: a reply published 1 us into it is taken about
 * then (on the old code, no sooner than 5 us in, every time; the fastest
 * of many tries must come well before that). */
struct late_reply {
	kite *pub;
	_Atomic int go; /* 1: publish one reply 1 us from now; 2: quit */
	_Atomic uint64_t published_ns;
};

static void *late_replier(void *arg)
{
	struct late_reply *r = arg;
	char msg[64] = {0};
	for (;;) {
		int go;
		while (!(go = atomic_load(&r->go)))
			;
		if (go == 2)
			return NULL;
		uint64_t until = now_ns() + 1000;
		while (now_ns() < until)
			;
		atomic_store(&r->published_ns, now_ns());
		if (kite_publish(r->pub, "slip.h", msg, sizeof msg) <= 0)
			return (void *)1;
		atomic_store(&r->go, 0);
	}
}

static void test_polls_then_wait_pays_no_slip(void **state)
{
	(void)state;
	use_bus("sliph");
	kite *sub = parent_open("slip.h");
	kite *pub = parent_open(NULL);
	uint64_t seq = 1;
	stream_through(pub, sub, "slip.h", 1, &seq); /* linked both ways */
	struct late_reply r = {.pub = pub};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, late_replier, &r), 0);
	uint64_t fastest = UINT64_MAX;
	char msg[64] = {0};
	kite_event ev;
	/* The fastest of up to 200 trials: a stalled machine only adds time. */
	for (int trial = 0; trial < 200 && fastest >= 4000; trial++) {
		for (int i = 0; i < 100; i++)
			assert_true(kite_publish(pub, "slip.h", msg, sizeof msg) > 0);
		uint64_t deadline = mono_ms() + 30000;
		for (int got = 0; got < 100;) {
			int rc = kite_recv(sub, &ev, 0);
			if (rc == -EAGAIN) {
				assert_true(mono_ms() < deadline);
				continue;
			}
			assert_int_equal(rc, 0);
			if (ev.type != KITE_MESSAGE)
				continue;
			assert_int_equal(ev.msg.seq, seq);
			seq++;
			got++;
		}
		assert_int_equal(kite_recv(sub, &ev, 0), -EAGAIN);
		uint64_t t0 = now_ns();
		atomic_store(&r.go, 1);
		do
			assert_int_equal(kite_recv(sub, &ev, 5000), 0);
		while (ev.type != KITE_MESSAGE);
		uint64_t took = now_ns() - t0;
		assert_int_equal(ev.msg.seq, seq);
		seq++;
		while (atomic_load(&r.go))
			;
		fastest = took < fastest ? took : fastest;
	}
	atomic_store(&r.go, 2);
	void *failed = (void *)1;
	assert_int_equal(pthread_join(t, &failed), 0);
	assert_null(failed);
	print_message("# fastest reply to a reader that polled, then waited: %llu ns\n",
		      (unsigned long long)fastest);
	assert_true(fastest < 4000);
	kite_close(pub);
	kite_close(sub);
}

/* The publisher remembers the channel it published on last (with its
 * length) and compares the next call's name against it byte by byte: a
 * name that is a prefix of it, extends it, or differs in one byte, in the
 * same buffer rewritten, goes to its own channel; and a name whose NUL is
 * the last byte before an unmapped page is not read past (a compare of
 * the remembered length would fault). */
static void test_channel_cache_never_confused(void **state)
{
	(void)state;
	use_bus("chancache");
	kite *sub = parent_open("cache.>");
	kite *pub = parent_open(NULL);
	long page = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
	static const char *const names[] = {
		"cache.ab", "cache.a", "cache.abc", "cache.ab", "cache.ba",
		"cache.ab", "cache.b", "cache.abcdefgh", "cache.abcdefgi", "cache.ab",
	};
	const size_t nnames = sizeof names / sizeof *names;
	char buf[KITE_CHANNEL_MAX + 1];
	for (size_t i = 0; i < nnames; i++) {
		/* One buffer, rewritten: the same pointer every call. */
		snprintf(buf, sizeof buf, "%s", names[i]);
		assert_true(kite_publish(pub, buf, &i, sizeof i) > 0);
	}
	/* "cache.a", ending at the page's last byte, after "cache.ab". */
	char *edge = map + page - sizeof "cache.a";
	memcpy(edge, "cache.a", sizeof "cache.a");
	assert_true(kite_publish(pub, "cache.ab", "x", 1) > 0);
	size_t edge_index = nnames;
	assert_true(kite_publish(pub, edge, &edge_index, sizeof edge_index) > 0);
	/* Every message arrives on the channel it was published on. */
	size_t seen = 0;
	uint64_t deadline = mono_ms() + 30000;
	while (seen < nnames + 1) {
		assert_true(mono_ms() < deadline);
		kite_event ev;
		int rc = kite_recv(sub, &ev, 1000);
		if (rc == -ETIMEDOUT)
			continue;
		assert_int_equal(rc, 0);
		if (ev.type != KITE_MESSAGE || ev.msg.len != sizeof(size_t))
			continue;
		size_t i;
		memcpy(&i, ev.msg.data, sizeof i);
		assert_true(i <= nnames);
		assert_string_equal(ev.msg.channel, i < nnames ? names[i] : "cache.a");
		seen++;
	}
	munmap(map, 2 * (size_t)page);
	kite_close(pub);
	kite_close(sub);
}

static void test_idle_costs_nothing(void **state)
{
	(void)state;
	struct cmd_pub c;
	cmd_pub_start(&c, "idle", "idle.x");
	kite *k = parent_open("idle.x");
	cmd_pub_do(&c, 'p');
	parent_receive(k, "idle.x", 5, 1);
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	uint64_t t0 = mono_ms();
	kite_event ev;
	assert_int_equal(kite_recv(k, &ev, 1500), -ETIMEDOUT);
	uint64_t wall_ms = mono_ms() - t0;
	getrusage(RUSAGE_SELF, &r1);
	double cpu_ms = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 +
			(double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3 +
			(double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
			(double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
	print_message("# idle kite_recv: %.1f ms CPU in %llu ms\n", cpu_ms,
		      (unsigned long long)wall_ms);
	assert_true(wall_ms >= 1500);
	assert_true(cpu_ms < 0.05 * (double)wall_ms);
	kite_close(k);
	cmd_pub_stop(&c);
}

static void test_no_wakeups_for_a_subscriber_that_keeps_up(void **state)
{
	(void)state;
	use_bus("wakeups");
	const uint64_t n = 100000;
	int ready[2];
	pipe_make(ready);
	struct sub_args sa = sub_default(0, "wake.x", 1, n, ready[1]);
	sa.spin_us = 5000; /* sleeps only if the publisher pauses 5 ms */
	pid_t sub;
	start_subs(&sub, &sa, 1, ready);
	struct pub_args pa = pub_default(0, "wake.x", n, 512);
	pid_t pub = child_start(publisher, &pa);
	expect_exit0(sub, "subscriber");
	expect_exit0(pub, "publisher");
	print_message("# %llu wake-ups for %llu messages\n",
		      (unsigned long long)sh->wakeups_sent[0], (unsigned long long)n);
	assert_true(sh->wakeups_sent[0] < n / 10);
	pipe_close(ready);
}

/* Sleep/wake protocol: a subscriber that sleeps at once (spin_us
 * UINT32_MAX) must be woken for every message that finds it asleep, in
 * both of its barrier modes (publishers fence before reading its
 * `sleeping` flag, or it forces the barrier on them with membarrier()
 * before it sleeps: it switches to the second after a burst of 256
 * messages between two sleeps, and back after a few quiet sleeps). The
 * pinger publishes bursts (of 300: the subscriber turns to membarrier; of
 * 1: it turns back) and waits for the ponger's reply to each burst's last
 * message; the ponger, idle too, replies. A wake-up missed on either side
 * leaves a sleeper asleep for a minute: the 5 s waits fail. */
#define PING_ROUNDS 300
#define PING_BURST 300

struct ping {
	uint32_t reply; /* 1: answer with a pong carrying round */
	uint32_t round;
};

static int ponger(void *arg)
{
	(void)arg;
	kite *k = open_handle(0, UINT32_MAX);
	CHILD_CHECK(kite_subscribe(k, "wk.ping") == 0, "subscribe");
	atomic_store(&sh->ponger_ready, 1);
	for (uint32_t last = 0; last != UINT32_MAX;) {
		kite_event ev;
		int rc = kite_recv(k, &ev, 5000);
		CHILD_CHECK(rc == 0, "kite_recv: %s (after round %u)", kite_strerror(rc), last);
		if (ev.type != KITE_MESSAGE)
			continue;
		struct ping p;
		CHILD_CHECK(ev.msg.len == sizeof p, "length %zu", ev.msg.len);
		memcpy(&p, ev.msg.data, sizeof p);
		if (!p.reply)
			continue;
		last = p.round;
		CHILD_CHECK(kite_publish(k, "wk.pong", &p.round, sizeof p.round) > 0, "pong");
	}
	kite_close(k);
	return 0;
}

/* The next pong; its round, or -1 if none came within timeout_ms. */
static int64_t next_pong(kite *k, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline)
			return -1;
		kite_event ev;
		int rc = kite_recv(k, &ev, (int)(deadline - now));
		if (rc == -ETIMEDOUT)
			return -1;
		assert_int_equal(rc, 0);
		if (ev.type != KITE_MESSAGE)
			continue;
		uint32_t round;
		assert_int_equal(ev.msg.len, sizeof round);
		memcpy(&round, ev.msg.data, sizeof round);
		return round;
	}
}

static void test_sleepers_woken_in_both_barrier_modes(void **state)
{
	(void)state;
	use_bus("pingwake");
	kite_options o = {.bus = bus, .spin_us = UINT32_MAX, .handshake_ms = 5000};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	assert_int_equal(kite_subscribe(k, "wk.pong"), 0);
	pid_t pid = child_start_ready(ponger, NULL, &sh->ponger_ready, 10000);
	assert_true(pid > 0);
	/* Until both rings are handed over: ping (round 0) until a pong. */
	struct ping p = {1, 0};
	int64_t got = -1;
	for (int i = 0; i < 500 && got < 0; i++) {
		assert_true(kite_publish(k, "wk.ping", &p, sizeof p) > 0);
		got = next_pong(k, 10);
	}
	assert_int_equal(got, 0);
	while (next_pong(k, 50) == 0) /* the other hellos' answers */
		;
	uint64_t woken = 0;
	for (uint32_t round = 1; round <= PING_ROUNDS; round++) {
		/* Ten bursts, then twenty single messages, and again. */
		int burst = round % 30 < 10 ? PING_BURST : 1;
		for (int i = 0; i < burst; i++) {
			p = (struct ping){i == burst - 1, round};
			assert_true(kite_publish(k, "wk.ping", &p, sizeof p) > 0);
		}
		got = next_pong(k, 5000);
		if (got != (int64_t)round)
			fail_msg("round %u (burst of %d): pong %lld", round, burst,
				 (long long)got);
		woken++;
	}
	p = (struct ping){1, UINT32_MAX};
	assert_true(kite_publish(k, "wk.ping", &p, sizeof p) > 0);
	assert_int_equal(child_wait(pid, 10000), 0);
	kite_stats st;
	kite_get_stats(k, &st);
	print_message("# %llu rounds, %llu wake-ups sent by the pinger\n",
		      (unsigned long long)woken, (unsigned long long)st.wakeups_sent);
	/* It did sleep (how often depends on the machine's load). */
	assert_true(st.wakeups_sent > 0);
	kite_close(k);
}

/* Drain to -EAGAIN, poll kite_fd(), drain again: n messages arrive. */
static void poll_receive(kite *k, int n, uint64_t first)
{
	uint64_t deadline = mono_ms() + 30000;
	while (n > 0) {
		assert_true(mono_ms() < deadline);
		struct pollfd p = {.fd = kite_fd(k), .events = POLLIN};
		int r = poll(&p, 1, 1000);
		if (r == 0)
			continue;
		assert_int_equal(r, 1);
		kite_event ev;
		int rc;
		while ((rc = kite_recv(k, &ev, 0)) == 0) {
			if (ev.type != KITE_MESSAGE)
				continue;
			assert_int_equal(ev.msg.seq, first);
			first++;
			n--;
		}
		assert_int_equal(rc, -EAGAIN);
	}
	assert_int_equal(n, 0);
}

static void test_fd_with_poll(void **state)
{
	(void)state;
	struct cmd_pub c;
	cmd_pub_start(&c, "fd_poll", "fdp.x");
	kite *k = parent_open("fdp.x");
	assert_true(kite_fd(k) >= 0);
	kite_event ev;
	while (kite_recv(k, &ev, 0) == 0)
		;
	cmd_pub_do(&c, 'p');
	poll_receive(k, 5, 1);
	cmd_pub_do(&c, 'p');
	poll_receive(k, 5, 6);
	assert_int_equal(kite_recv(k, &ev, 0), -EAGAIN);
	kite_close(k);
	cmd_pub_stop(&c);
}

static void test_unsubscribe_stops_delivery(void **state)
{
	(void)state;
	struct cmd_pub c;
	cmd_pub_start(&c, "unsubscribe", "unsub.a");
	kite *k = parent_open(NULL);
	assert_int_equal(kite_unsubscribe(k, "unsub.>"), KITE_ENOTSUB);
	assert_int_equal(kite_subscribe(k, "unsub.>"), 0);
	assert_int_equal(kite_subscribe(k, "unsub.>"), 0); /* twice: a no-op */
	cmd_pub_do(&c, 'p');
	parent_receive(k, "unsub.a", 5, 1);
	assert_int_equal(kite_unsubscribe(k, "unsub.>"), 0);
	assert_int_equal(kite_unsubscribe(k, "unsub.>"), KITE_ENOTSUB);
	assert_int_equal(kite_unsubscribe(k, "bad..pattern"), KITE_EBADNAME);
	assert_int_equal(kite_subscribe(k, "unsub.end"), 0);
	cmd_pub_do(&c, 'p');
	cmd_pub_do(&c, 'e');
	/* The end marker was published after the five: wait for it, and see
	 * none of them. */
	uint64_t deadline = mono_ms() + 30000;
	int ended = 0;
	kite_event ev;
	while (!ended) {
		assert_true(mono_ms() < deadline);
		int rc = kite_recv(k, &ev, 1000);
		if (rc == -ETIMEDOUT)
			continue;
		assert_int_equal(rc, 0);
		if (ev.type != KITE_MESSAGE)
			continue;
		assert_string_equal(ev.msg.channel, "unsub.end");
		ended = 1;
	}
	int rc;
	while ((rc = kite_recv(k, &ev, 0)) == 0)
		assert_int_not_equal(ev.type, KITE_MESSAGE);
	assert_int_equal(rc, -EAGAIN);
	kite_stats st;
	kite_get_stats(k, &st);
	assert_int_equal(st.received, 6);
	kite_close(k);
	cmd_pub_stop(&c);
}

/* --- the ring a subscriber receives is read-only for it --- */

static void test_ring_fd_not_writable(void **state)
{
	(void)state;
	struct cmd_pub c;
	cmd_pub_start(&c, "ring_readonly", "ro.x");
	cmd_pub_do(&c, 'p'); /* the ring exists, with five messages */
	uint64_t id;
	assert_int_equal(raw_find_peers(bus, &id, 1), 1);
	int sock = raw_connect(bus, id);
	assert_true(sock >= 0);
	assert_int_equal(raw_hello(sock, 0x5eed5eed5eedull), 0);
	struct wire_msg m;
	assert_int_equal(raw_expect(sock, &m, W_HELLO, 10000), 1);
	for (int i = 0; i < m.nfds; i++)
		close(m.fds[i]);
	ki_wire_init(&m, W_SUB);
	m.id = 1;
	snprintf(m.text, sizeof m.text, "ro.>");
	assert_int_equal(ki_wire_send(sock, &m, 0), 0);
	assert_int_equal(raw_expect(sock, &m, W_RING, 10000), 1);
	/* The ring, and the publisher's stream heads page: neither can be
	 * written through what a subscriber is given. */
	assert_int_equal(m.nfds, 2);
	int heads = m.fds[1];
	assert_int_equal(fcntl(heads, F_GET_SEALS) & SEALS_RING, SEALS_RING);
	errno = 0;
	assert_ptr_equal(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, heads, 0),
			 MAP_FAILED);
	assert_int_equal(errno, EPERM);
	char one = 1;
	assert_int_equal(pwrite(heads, &one, 1, 0), -1);
	assert_int_equal(ftruncate(heads, 0), -1);
	close(heads);
	int fd = m.fds[0];
	assert_string_equal(m.text, "ro.x");
	assert_int_equal(m.a, 6); /* head + 1 */
	size_t bytes;
	assert_int_equal(ki_ring_geometry_valid(m.slot_count, m.slot_size, &bytes), 0);

	int seals = fcntl(fd, F_GET_SEALS);
	assert_int_equal(seals & SEALS_RING, SEALS_RING);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((size_t)st.st_size, bytes);
	errno = 0;
	assert_ptr_equal(mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
			 MAP_FAILED);
	assert_int_equal(errno, EPERM);
	char junk[64] = {0};
	assert_int_equal(pwrite(fd, junk, sizeof junk, 4096), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(write(fd, junk, sizeof junk), -1);
	assert_int_equal(ftruncate(fd, 0), -1);
	assert_int_equal(ftruncate(fd, (off_t)bytes * 2), -1);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1); /* F_SEAL_SEAL */
	void *ro = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	assert_ptr_not_equal(ro, MAP_FAILED);
	assert_int_equal(mprotect(ro, bytes, PROT_READ | PROT_WRITE), -1);
	/* What it can do: read the five messages through its own reader. */
	assert_int_equal(ki_ring_header_check(ro, m.slot_count, m.slot_size, "ro.x"), 0);
	struct ring_reader r;
	ki_ring_reader_init(&r, ro, m.slot_count, m.slot_size, 1, 0);
	uint8_t buf[4096];
	struct ring_record rec;
	for (uint64_t seq = 1; seq <= 5; seq++) {
		assert_int_equal(ki_ring_read(&r, buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.seq, seq);
		uint64_t v;
		memcpy(&v, buf, 8);
		assert_int_equal(v, seq);
	}
	assert_int_equal(ki_ring_read(&r, buf, &rec), RING_EMPTY);
	munmap(ro, bytes);
	close(fd);
	close(sock);
	cmd_pub_stop(&c);
}

/* A real subscriber's mapping of the ring: read-only and shared. */
static void test_ring_mapping_read_only(void **state)
{
	(void)state;
	struct cmd_pub c;
	cmd_pub_start(&c, "ring_maps", "maps.x");
	kite *k = parent_open("maps.x");
	cmd_pub_do(&c, 'p');
	parent_receive(k, "maps.x", 5, 1);
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[512];
	int found = 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, "kite-ring:maps.x")) {
			char perms[8];
			assert_int_equal(sscanf(line, "%*s %7s", perms), 1);
			assert_string_equal(perms, "r--s");
			found++;
		}
	fclose(f);
	assert_int_equal(found, 1);
	kite_close(k);
	cmd_pub_stop(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		SETUP(test_one_to_one),
		SETUP(test_one_to_four),
		SETUP(test_three_to_one),
		SETUP(test_large_messages_in_sequence),
		SETUP(test_credentials),
		SETUP(test_subscriber_before_publisher),
		SETUP(test_late_joiner),
		SETUP(test_publisher_killed),
		SETUP(test_subscriber_killed),
		SETUP(test_slow_subscriber_losses_counted),
		SETUP(test_slow_subscriber_large_losses_counted),
		SETUP(test_slot_boundary_sizes),
		SETUP(test_channel_cache_never_confused),
		SETUP(test_caught_up_reader_waits_within_limits),
		SETUP(test_caught_up_reader_misses_nothing),
		SETUP(test_polls_then_wait_pays_no_slip),
		SETUP(test_idle_costs_nothing),
		SETUP(test_no_wakeups_for_a_subscriber_that_keeps_up),
		SETUP(test_sleepers_woken_in_both_barrier_modes),
		SETUP(test_fd_with_poll),
		SETUP(test_unsubscribe_stops_delivery),
		SETUP(test_ring_fd_not_writable),
		SETUP(test_ring_mapping_read_only),
	};
	if (getenv("KITE_TEST_FILTER")) /* run only the tests matching this glob */
		cmocka_set_test_filter(getenv("KITE_TEST_FILTER"));
	int rc = cmocka_run_group_tests_name("channels", tests, NULL, NULL);
	/* Cases that need what the machine may not give run on their own, so
	 * that lacking it is a stated skip rather than a failure. */
	const struct CMUnitTest uid[] = {
		SETUP(test_other_uid_refused_then_allowed),
		SETUP(test_refused_subscriber_allowed_later_gets_no_earlier_messages),
	};
	if (getuid() != 0)
		printf("ok - test_other_uid_refused_then_allowed # SKIP needs root "
		       "to run a child as uid %d\n"
		       "ok - test_refused_subscriber_allowed_later_gets_no_earlier_messages "
		       "# SKIP needs root to run a child as uid %d\n", NOBODY, NOBODY);
	else
		rc |= cmocka_run_group_tests_name("other_uid", uid, NULL, NULL);
	const struct CMUnitTest gib[] = {SETUP(test_one_gib_message)};
	uint64_t avail = mem_available();
	if (avail < 4 * GIB)
		printf("ok - test_one_gib_message # SKIP needs 4 GiB of free memory, "
		       "%llu MiB available\n", (unsigned long long)(avail >> 20));
	else
		rc |= cmocka_run_group_tests_name("one_gib", gib, NULL, NULL);
	return rc;
}
