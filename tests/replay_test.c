/* Replay for late joiners (kite_subscribe_opts: last_n, last_ms) and
 * per-channel ring sizes (kite_set_channel_ring), through real handles on
 * a private bus: a subscriber that joins late gets the last N messages the
 * publisher's ring still holds, with their original sequence numbers,
 * then live ones with no gap or duplicate (a message that went in a memfd
 * of its own is not held: replay starts after it); N = 0, 1, exactly what the ring
 * holds, more, and after wrap-around; by time; after an idle release (what
 * a released ring held is gone: not delivered, not reported lost); while a
 * child process floods the ring (every gap between two delivered messages
 * is exactly the loss reported between them, nothing torn, nothing twice);
 * a "last value" channel; a subscriber stopped while its publisher starts
 * (a late joiner to it: replay is what brings back what it missed). Then per-channel ring sizes: a small-ring
 * channel overruns where a big one beside it does not, the memfds have the
 * sizes asked for, and sizes no ring can have are refused. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"

#define PAYLOAD 8 /* "%08llu" of the seq: every message says its own seq */

/* What a subscriber child saw (stopped_subscriber). */
struct child_seen {
	_Atomic int ready, done;
	_Atomic uint64_t first, messages, lost, news;
	_Atomic uint64_t messages_b; /* stopped_subscriber: those of stopped.b */
};

struct shared {
	_Atomic int stop;
	_Atomic uint64_t published;
	struct child_seen seen[2];
};

static struct shared *sh;
static char bus[96];

CHILD_SHARED_FIXTURES(sh)

static kite *open_on(const char *name, uint32_t slots, uint32_t idle_ms)
{
	snprintf(bus, sizeof bus, "%s", test_bus(name));
	kite_options o = {.bus = bus, .handshake_ms = 3000, .ring_slots = slots,
			  .slot_size = 64, .idle_ms = idle_ms};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	return k;
}

static kite *open_sub(void)
{
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	return k;
}

static void publish_seq(kite *k, const char *channel, uint64_t seq)
{
	char p[PAYLOAD + 1];
	snprintf(p, sizeof p, "%08" PRIu64, seq);
	assert_int_equal(kite_publish(k, channel, p, PAYLOAD), (int64_t)seq);
}

static int subscribe_last(kite *k, const char *pattern, uint32_t n, uint32_t ms)
{
	struct kite_sub_options o = {0};
	o.last_n = n;
	o.last_ms = ms;
	return kite_subscribe_opts(k, pattern, &o);
}

/* What a subscriber saw on one channel. */
struct seen {
	uint64_t first, last, messages, lost, news, bad;
};

/* Read until quiet_ms pass with nothing; every message must carry its own
 * seq in its payload and come in order. */
static void read_all(kite *k, struct seen *s, int quiet_ms)
{
	kite_event ev;
	while (kite_recv(k, &ev, quiet_ms) == 0) {
		if (ev.type == KITE_PUBLISHER_NEW)
			s->news++;
		if (ev.type == KITE_LOSS)
			s->lost += ev.lost;
		if (ev.type != KITE_MESSAGE)
			continue;
		char want[PAYLOAD + 1];
		snprintf(want, sizeof want, "%08" PRIu64, ev.msg.seq);
		if (ev.msg.len != PAYLOAD || memcmp(ev.msg.data, want, PAYLOAD) ||
		    (s->messages && ev.msg.seq != s->last + 1))
			s->bad++;
		if (!s->messages)
			s->first = ev.msg.seq;
		s->last = ev.msg.seq;
		s->messages++;
	}
}

/* One late joiner asking for the last n of `published` messages: it gets
 * seqs first..published, then 3 live ones, nothing twice, no loss. */
static void late_joiner(kite *pub, uint64_t published, uint32_t n, uint64_t first)
{
	kite *sub = open_sub();
	assert_int_equal(subscribe_last(sub, "replay.>", n, 0), 0);
	struct seen s = {0};
	read_all(sub, &s, 300);
	for (uint64_t seq = published + 1; seq <= published + 3; seq++)
		publish_seq(pub, "replay.a", seq);
	read_all(sub, &s, 300);
	print_message("# N %u after %" PRIu64 ": seqs %" PRIu64 "..%" PRIu64 ", %" PRIu64
		      " messages, %" PRIu64 " lost\n", n, published, s.first, s.last,
		      s.messages, s.lost);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.news, 1);
	assert_int_equal(s.first, first);
	assert_int_equal(s.last, published + 3);
	assert_int_equal(s.messages, published + 3 - first + 1);
	kite_close(sub);
}

/* A 1 KiB ring (16 x 64) holds 32 records of 16 bytes (32 bytes each). */
static void test_replay_counts_before_wrap(void **state)
{
	(void)state;
	kite *pub = open_on("replay-counts", 16, UINT32_MAX);
	uint64_t seq = 0;
	for (int i = 0; i < 20; i++)
		publish_seq(pub, "replay.a", ++seq);
	late_joiner(pub, seq, 0, seq + 1);     /* live only */
	seq += 3;
	late_joiner(pub, seq, 1, seq);         /* the latest */
	seq += 3;
	late_joiner(pub, seq, 26, 1);          /* exactly what it holds */
	seq += 3;
	late_joiner(pub, seq, 1000, 1);        /* more than it holds */
	kite_close(pub);
}

static void test_replay_after_wrap_around(void **state)
{
	(void)state;
	kite *pub = open_on("replay-wrap", 16, UINT32_MAX);
	uint64_t seq = 0;
	for (int i = 0; i < 100; i++)
		publish_seq(pub, "replay.a", ++seq);
	late_joiner(pub, seq, 5, seq - 4);
	seq += 3;
	/* More than a lap asked: what the ring holds, at least 7/8 of its
	 * 32 records less one, consecutive, ending at the head. */
	kite *sub = open_sub();
	assert_int_equal(subscribe_last(sub, "replay.>", 1000, 0), 0);
	struct seen s = {0};
	read_all(sub, &s, 300);
	print_message("# after %" PRIu64 ": replayed %" PRIu64 "..%" PRIu64 "\n", seq,
		      s.first, s.last);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.last, seq);
	assert_true(s.messages >= 32 * 7 / 8 - 1 && s.messages <= 32);
	kite_close(sub);
	kite_close(pub);
}

/* Every new subscriber gets the latest message at once. */
static void test_last_value_channel(void **state)
{
	(void)state;
	kite *pub = open_on("replay-last-value", 0, UINT32_MAX);
	for (uint64_t seq = 1; seq <= 3; seq++)
		publish_seq(pub, "config.x", seq);
	for (int round = 0; round < 3; round++) {
		kite *sub = open_sub();
		assert_int_equal(subscribe_last(sub, "config.*", 1, 0), 0);
		kite_event ev;
		do
			assert_int_equal(kite_recv(sub, &ev, 2000), 0);
		while (ev.type == KITE_PUBLISHER_NEW);
		assert_int_equal(ev.type, KITE_MESSAGE);
		assert_int_equal(ev.msg.seq, 3 + round);
		assert_int_equal(kite_recv(sub, &ev, 100), -ETIMEDOUT);
		kite_close(sub);
		publish_seq(pub, "config.x", 4 + round);
	}
	kite_close(pub);
}

static void test_replay_by_time(void **state)
{
	(void)state;
	kite *pub = open_on("replay-time", 0, UINT32_MAX);
	for (uint64_t seq = 1; seq <= 5; seq++)
		publish_seq(pub, "replay.a", seq);
	usleep(2000 * 1000);
	for (uint64_t seq = 6; seq <= 10; seq++)
		publish_seq(pub, "replay.a", seq);
	/* The last 1.5 s: the second five; and of those the last 3; a
	 * minute: all ten. (Each case waits 300 ms for silence: the second
	 * one joins some 400 ms after the second five, more on a loaded
	 * machine. With a 400 ms window, 100 ms of delay made it miss them
	 * all in one full run.) */
	const struct { uint32_t n, ms; uint64_t first; } c[] = {
		{0, 1500, 6}, {3, 1500, 8}, {0, 60000, 1}, {7, 60000, 4},
	};
	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		kite *sub = open_sub();
		assert_int_equal(subscribe_last(sub, "replay.a", c[i].n, c[i].ms), 0);
		struct seen s = {0};
		read_all(sub, &s, 300);
		assert_int_equal(s.bad, 0);
		assert_int_equal(s.lost, 0);
		assert_int_equal(s.first, c[i].first);
		assert_int_equal(s.last, 10);
		kite_close(sub);
	}
	kite_close(pub);
}

/* A late joiner asking for more pooled messages than the pool still holds
 * (a 1 KiB ring: its 4 KiB pool keeps the last 4 of 1000 bytes, while the
 * ring still names some 20): it is replayed those whose payloads are
 * there, whole, and the rest is not held, so not reported lost. */
#define POOLED 1000
static void publish_pooled(kite *k, const char *channel, uint64_t seq)
{
	uint8_t p[POOLED];
	snprintf((char *)p, PAYLOAD + 1, "%08" PRIu64, seq);
	for (size_t i = PAYLOAD; i < sizeof p; i++)
		p[i] = (uint8_t)(seq * 31 + i);
	assert_int_equal(kite_publish(k, channel, p, sizeof p), (int64_t)seq);
}

static void test_replay_of_pooled_messages(void **state)
{
	(void)state;
	kite *pub = open_on("replay-pooled", 16, UINT32_MAX);
	uint64_t seq = 0;
	while (seq < 20)
		publish_pooled(pub, "replay.a", ++seq);
	kite *sub = open_sub();
	assert_int_equal(subscribe_last(sub, "replay.>", 20, 0), 0);
	uint64_t first = 0, last = 0, messages = 0, lost = 0, bad = 0;
	kite_event ev;
	while (kite_recv(sub, &ev, 300) == 0) {
		lost += ev.type == KITE_LOSS ? ev.lost : 0;
		if (ev.type != KITE_MESSAGE)
			continue;
		uint8_t want[POOLED];
		snprintf((char *)want, PAYLOAD + 1, "%08" PRIu64, ev.msg.seq);
		for (size_t i = PAYLOAD; i < sizeof want; i++)
			want[i] = (uint8_t)(ev.msg.seq * 31 + i);
		bad += ev.msg.len != POOLED || memcmp(ev.msg.data, want, POOLED) ||
		       (messages && ev.msg.seq != last + 1);
		first = messages++ ? first : ev.msg.seq;
		last = ev.msg.seq;
	}
	print_message("# pooled: replayed %" PRIu64 "..%" PRIu64 ", %" PRIu64 " lost\n",
		      first, last, lost);
	assert_int_equal(bad, 0);
	assert_int_equal(lost, 0);
	assert_int_equal(last, 20);
	assert_true(messages >= 3 && messages <= 4);
	kite_close(sub);
	kite_close(pub);
}

/* A message beyond the pool travels in a memfd of its own, sent only to
 * the ring's holders of the time: a late joiner can never have it, so it
 * is not held. Replay starts after the last such one (as after a reused
 * pool payload) instead of reporting it, and everything before it, lost:
 * they were published before the subscriber joined. */
static void test_replay_skips_memfd_messages(void **state)
{
	(void)state;
	kite *pub = open_on("replay-memfd", 16, UINT32_MAX);
	static uint8_t big[4096]; /* over a 1 KiB ring's pool quarter (1 KiB) */
	for (uint64_t seq = 1; seq <= 3; seq++)
		publish_seq(pub, "replay.a", seq);
	assert_int_equal(kite_publish(pub, "replay.a", big, sizeof big), 4);
	for (uint64_t seq = 5; seq <= 6; seq++)
		publish_seq(pub, "replay.a", seq);
	assert_int_equal(kite_publish(pub, "replay.b", big, sizeof big), 1);
	kite *sub = open_sub();
	assert_int_equal(subscribe_last(sub, "replay.a", UINT32_MAX, 0), 0);
	struct seen s = {0};
	read_all(sub, &s, 300);
	print_message("# replay past a memfd message: %" PRIu64 "..%" PRIu64 ", %" PRIu64
		      " lost\n", s.first, s.last, s.lost);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.first, 5);
	assert_int_equal(s.last, 6);
	assert_int_equal(s.messages, 2);
	/* A last-value channel whose latest value went in a memfd: nothing
	 * to replay, and nothing reported lost. */
	kite *last = open_sub();
	assert_int_equal(subscribe_last(last, "replay.b", 1, 0), 0);
	struct seen b = {0};
	read_all(last, &b, 300);
	assert_int_equal(b.lost, 0);
	assert_int_equal(b.messages, 0);
	assert_int_equal(kite_publish(pub, "replay.b", "00000002", PAYLOAD), 2);
	read_all(last, &b, 300);
	assert_int_equal(b.lost, 0);
	assert_int_equal(b.first, 2);
	assert_int_equal(b.messages, 1);
	kite_close(last);
	kite_close(sub);
	kite_close(pub);
}

/* Descriptors this process holds. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* The per-handle and per-ring descriptors docs/channels.md states: 6 for
 * a handle (listener, wake-up socket pair, eventfd, epoll set, waiter
 * page), its stream heads page and one per ring at its first message, 2
 * per link (its socket, the peer's pidfd); all given back at close. */
static void test_handle_descriptors_as_documented(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("fds"));
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	int before = open_fds();
	kite *pub = NULL, *sub = NULL;
	assert_int_equal(kite_open(&pub, &o), 0);
	assert_int_equal(open_fds() - before, 6);
	publish_seq(pub, "fds.a", 1);
	assert_int_equal(open_fds() - before, 6 + 2);
	assert_int_equal(kite_open(&sub, &o), 0); /* its 6 and heads page, a link */
	/* A descriptor the control thread takes in from the link (and
	 * closes once mapped) may still be open for a moment. */
	uint64_t deadline = mono_ms() + 3000;
	while (open_fds() - before != 6 + 2 + 7 + 2 * 2 && mono_ms() < deadline)
		nap_us(1000);
	assert_int_equal(open_fds() - before, 6 + 2 + 7 + 2 * 2);
	kite_close(sub);
	kite_close(pub);
	assert_int_equal(open_fds(), before);
}

/* Ring memfds this process holds whose name starts with prefix; *size gets
 * the last one's size. */
static int ring_fds(const char *prefix, off_t *size)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;
	char want[256];
	snprintf(want, sizeof want, "/memfd:kite-ring:%s", prefix);
	while (d && (e = readdir(d))) {
		char path[300], link[512];
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, link, sizeof link - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		struct stat st;
		if (!strncmp(link, want, strlen(want)) && stat(path, &st) == 0) {
			n++;
			if (size)
				*size = st.st_size;
		}
	}
	if (d)
		closedir(d);
	return n;
}

/* After an idle release the ring and what it held are gone: a late joiner
 * gets only what the ring made again holds (nothing, then the live ones),
 * with no KITE_LOSS for the rest. */
static void test_replay_after_idle_release(void **state)
{
	(void)state;
	kite *pub = open_on("replay-idle", 16, 40);
	for (uint64_t seq = 1; seq <= 5; seq++)
		publish_seq(pub, "replay.a", seq);
	uint64_t deadline = mono_ms() + 10000;
	while (ring_fds("replay.a", NULL) && mono_ms() < deadline)
		nap_us(5000);
	assert_int_equal(ring_fds("replay.a", NULL), 0); /* released */
	kite *early = open_sub();
	assert_int_equal(subscribe_last(early, "replay.>", 10, 0), 0);
	struct seen s = {0};
	read_all(early, &s, 300);
	print_message("# joined while released: %" PRIu64 " messages (%" PRIu64 "..%" PRIu64 ")\n",
		      s.messages, s.first, s.last);
	assert_int_equal(s.messages, 0);
	for (uint64_t seq = 6; seq <= 7; seq++)
		publish_seq(pub, "replay.a", seq);
	/* Joined after the ring was made again: it holds 6 and 7 only (or,
	 * released again meanwhile, nothing). */
	kite *late = open_sub();
	assert_int_equal(subscribe_last(late, "replay.>", 10, 0), 0);
	publish_seq(pub, "replay.a", 8);
	read_all(early, &s, 300);
	assert_int_equal(s.first, 6);
	assert_int_equal(s.last, 8);
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.lost, 0);
	assert_int_equal(s.bad, 0);
	struct seen t = {0};
	read_all(late, &t, 300);
	print_message("# joined after it was made again: %" PRIu64 "..%" PRIu64 "\n",
		      t.first, t.last);
	assert_true(t.first >= 6 && t.first <= 8);
	assert_int_equal(t.last, 8);
	assert_int_equal(t.messages, 8 - t.first + 1);
	assert_int_equal(t.lost, 0);
	assert_int_equal(t.bad, 0);
	kite_close(late);
	kite_close(early);
	kite_close(pub);
}

/* A child floods a 1 KiB ring; subscribers join one after another asking
 * for everything it holds, and read while it is overwritten under them. */
static int flooder(void *arg)
{
	(void)arg;
	kite_options o = {.bus = bus, .handshake_ms = 3000, .ring_slots = 16,
			  .slot_size = 64, .idle_ms = UINT32_MAX};
	kite *k = NULL;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	char p[PAYLOAD + 1];
	for (uint64_t seq = 1; !atomic_load(&sh->stop); seq++) {
		snprintf(p, sizeof p, "%08" PRIu64, seq);
		CHILD_CHECK(kite_publish(k, "flood.a", p, PAYLOAD) == (int64_t)seq, "publish");
		atomic_store(&sh->published, seq);
	}
	kite_close(k);
	return 0;
}

static void test_replay_while_flooded(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("replay-flood"));
	atomic_store(&sh->stop, 0);
	atomic_store(&sh->published, 0);
	pid_t pid = child_start(flooder, NULL);
	uint64_t deadline = mono_ms() + 10000;
	while (atomic_load(&sh->published) < 1000 && mono_ms() < deadline)
		nap_us(1000);
	uint64_t joins = 0, messages = 0, lost = 0, gaps = 0, bad = 0;
	for (int round = 0; round < 20; round++) {
		kite *sub = open_sub();
		assert_int_equal(subscribe_last(sub, "flood.>", UINT32_MAX, 0), 0);
		kite_event ev;
		uint64_t prev = 0, lost_since = 0;
		for (int i = 0; i < 2000 && kite_recv(sub, &ev, 1000) == 0; i++) {
			if (ev.type == KITE_LOSS) {
				lost_since += ev.lost;
				lost += ev.lost;
			}
			if (ev.type != KITE_MESSAGE)
				continue;
			char want[PAYLOAD + 1];
			snprintf(want, sizeof want, "%08" PRIu64, ev.msg.seq);
			if (ev.msg.len != PAYLOAD || memcmp(ev.msg.data, want, PAYLOAD))
				bad++; /* torn */
			if (prev && ev.msg.seq != prev + 1 + lost_since)
				bad++; /* a gap not reported exactly, or a duplicate */
			gaps += prev && lost_since;
			prev = ev.msg.seq;
			lost_since = 0;
			messages++;
		}
		joins += prev != 0;
		kite_close(sub);
	}
	atomic_store(&sh->stop, 1);
	assert_int_equal(child_wait(pid, 10000), 0);
	print_message("# %" PRIu64 " joins under a flood: %" PRIu64 " delivered, %" PRIu64
		      " lost in %" PRIu64 " gaps, %" PRIu64 " bad\n", joins, messages, lost,
		      gaps, bad);
	assert_int_equal(bad, 0);
	assert_true(joins > 0);
}

/* A subscriber child (seen[0]: plain, seen[1]: replay of everything held)
 * that reads until its publisher has gone. */
static int stopped_subscriber(void *arg)
{
	struct child_seen *c = &sh->seen[(intptr_t)arg];
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k = NULL;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	CHILD_CHECK(subscribe_last(k, "stopped.>", (intptr_t)arg ? UINT32_MAX : 0, 0) == 0,
		    "subscribe");
	atomic_store(&c->ready, 1);
	kite_event ev;
	uint64_t deadline = mono_ms() + 15000, gone = 0;
	while (mono_ms() < deadline) {
		if (kite_recv(k, &ev, 100) != 0)
			continue;
		if (ev.type == KITE_PUBLISHER_GONE && ++gone == 2)
			break;
		if (ev.type == KITE_PUBLISHER_NEW)
			atomic_fetch_add(&c->news, 1);
		if (ev.type == KITE_LOSS)
			atomic_fetch_add(&c->lost, ev.lost);
		if (ev.type != KITE_MESSAGE)
			continue;
		char want[PAYLOAD + 1];
		snprintf(want, sizeof want, "%08" PRIu64, ev.msg.seq);
		CHILD_CHECK(ev.msg.len == PAYLOAD && !memcmp(ev.msg.data, want, PAYLOAD),
			    "seq %" PRIu64 " torn", ev.msg.seq);
		if (!strcmp(ev.msg.channel, "stopped.a")) {
			if (!atomic_load(&c->first))
				atomic_store(&c->first, ev.msg.seq);
			atomic_fetch_add(&c->messages, 1);
		} else {
			atomic_fetch_add(&c->messages_b, 1);
		}
	}
	atomic_store(&c->done, 1);
	kite_close(k);
	return 0;
}

/* Subscribers that subscribed before their publisher existed, but were
 * stopped (SIGSTOP) past its handshake_ms while it started: their
 * subscriptions reach it only when they run again, and it offers its
 * rings from its head then, as to a late joiner. The streams began after
 * they subscribed, so they take them from the start (docs/channels.md,
 * "Sequences and loss"): all 10 messages of stopped.a from seq 1, and of
 * the 1,000 on stopped.b, whose 4 KiB ring went round many times
 * meanwhile, what it still holds (from its oldest record, not the newest
 * hint), the rest reported lost. (They got NEW
 * and nothing of either, silently, before.) */
static void test_subscriber_stopped_at_publisher_start_misses_nothing(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("replay-stopped"));
	memset(sh->seen, 0, sizeof sh->seen);
	pid_t subs[2];
	for (intptr_t i = 0; i < 2; i++) {
		subs[i] = child_start_ready(stopped_subscriber, (void *)i, &sh->seen[i].ready, 5000);
		assert_true(subs[i] > 0);
	}
	for (int i = 0; i < 2; i++) {
		kill(subs[i], SIGSTOP);
		assert_true(wait_stopped(subs[i], 5000));
	}
	kite_options o = {.bus = bus, .handshake_ms = 300, .idle_ms = UINT32_MAX};
	kite *pub = NULL;
	assert_int_equal(kite_open(&pub, &o), 0);
	assert_int_equal(kite_set_channel_ring(pub, "stopped.b", 4096), 0);
	for (uint64_t seq = 1; seq <= 10; seq++)
		publish_seq(pub, "stopped.a", seq);
	for (uint64_t seq = 1; seq <= 1000; seq++)
		publish_seq(pub, "stopped.b", seq);
	for (int i = 0; i < 2; i++)
		kill(subs[i], SIGCONT);
	/* Both have everything once each has the last of both channels. */
	uint64_t deadline = mono_ms() + 10000;
	for (int i = 0; i < 2; i++)
		while ((atomic_load(&sh->seen[i].messages) < 10 ||
			atomic_load(&sh->seen[i].messages_b) + atomic_load(&sh->seen[i].lost) < 1000) &&
		       mono_ms() < deadline)
			nap_us(1000);
	nap_us(200 * 1000);
	kite_close(pub);
	for (int i = 0; i < 2; i++)
		assert_int_equal(child_wait(subs[i], 10000), 0);
	for (int i = 0; i < 2; i++) {
		const struct child_seen *c = &sh->seen[i];
		print_message("# %s, stopped across the publisher's start: stopped.a %" PRIu64
			      " from seq %" PRIu64 "; stopped.b %" PRIu64 " + %" PRIu64 " lost\n",
			      i ? "replay" : "plain", (uint64_t)c->messages, (uint64_t)c->first,
			      (uint64_t)c->messages_b, (uint64_t)c->lost);
		assert_int_equal(c->done, 1);
		assert_int_equal(c->news, 2);
		assert_int_equal(c->messages, 10);
		assert_int_equal(c->first, 1);
		assert_int_equal(c->messages_b + c->lost, 1000);
		/* The 4 KiB ring holds 128 records of 32 bytes; from its
		 * oldest replay-index boundary on, at least 7 eighths. */
		assert_true(c->lost > 0 && c->messages_b >= 112);
	}
}

/* Options this version does not have are refused, not ignored. */
static void test_sub_options_checked(void **state)
{
	(void)state;
	kite *k = open_on("replay-options", 0, 0);
	struct kite_sub_options o = {0};
	assert_int_equal(kite_subscribe_opts(k, "a.b", &o), 0);
	assert_int_equal(kite_subscribe_opts(k, "a.c", NULL), 0);
	o.reserved32 = 1;
	assert_int_equal(kite_subscribe_opts(k, "a.d", &o), -EINVAL);
	o = (struct kite_sub_options){0};
	o.reserved[3] = 1;
	assert_int_equal(kite_subscribe_opts(k, "a.d", &o), -EINVAL);
	o = (struct kite_sub_options){0};
	o.flags = 2;
	assert_int_equal(kite_subscribe_opts(k, "a.d", &o), -EINVAL);
	o.flags = KITE_SUB_RELIABLE; /* replay and reliable together */
	o.last_n = 1;
	assert_int_equal(kite_subscribe_opts(k, "a.d", &o), 0);
	o.last_n = 0;
	o.flags = 0;
	assert_int_equal(kite_subscribe_opts(k, "a..d", &o), KITE_EBADNAME);
	assert_int_equal(kite_subscribe_opts(NULL, "a.d", &o), -EINVAL);
	assert_int_equal(kite_subscribe_opts(k, NULL, &o), -EINVAL);
	kite_close(k);
}

/* A handle's own ring geometry (kite_options) whose memfd no subscriber
 * would map (over RING_ACCEPT_MAX, 1 GiB with its header and pool) is
 * refused at kite_open, not by every subscriber at the first message. */
static void test_handle_ring_no_subscriber_maps_refused(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("ring-size-open"));
	static const struct {
		uint32_t slots, slot_size;
		int want;
	} cases[] = {
		{1u << 20, 1u << 20, -EINVAL}, /* 1 TiB of records */
		{1u << 20, 1024, -EINVAL},     /* 1 GiB + the header */
		{1u << 19, 2048, -EINVAL},     /* the same, other slots */
		{1u << 20, 960, 0},            /* 960 MiB + 4 KiB: mapped */
		{1u << 19, 1024, 0},           /* 512 MiB + 4 KiB */
		{1u << 16, 2048, 0},           /* 128 MiB + its 128 MiB pool */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		kite_options o = {.bus = bus, .ring_slots = cases[i].slots,
				  .slot_size = cases[i].slot_size};
		kite *k = NULL;
		int rc = kite_open(&k, &o);
		print_message("# %u slots of %u: %d\n", cases[i].slots, cases[i].slot_size, rc);
		assert_int_equal(rc, cases[i].want);
		kite_close(k);
	}
}

static void test_channel_ring_sizes_refused(void **state)
{
	(void)state;
	kite *k = open_on("ring-size-bad", 0, 0); /* slot_size 64 */
	assert_int_equal(kite_set_channel_ring(k, "a.>", 0), 0); /* nothing to remove */
	assert_int_equal(kite_set_channel_ring(k, "a.>", 64), -EINVAL);      /* 1 slot */
	assert_int_equal(kite_set_channel_ring(k, "a.>", 192), -EINVAL);     /* 3 slots */
	assert_int_equal(kite_set_channel_ring(k, "a.>", 1000), -EINVAL);    /* not slots */
	assert_int_equal(kite_set_channel_ring(k, "a.>", 128 << 20), -EINVAL); /* 2^21 slots */
	assert_int_equal(kite_set_channel_ring(k, "a.>", (size_t)1 << 30), -EINVAL);
	assert_int_equal(kite_set_channel_ring(k, "a.>", 128), 0);
	assert_int_equal(kite_set_channel_ring(k, "a.>", 64 << 20), 0);      /* 2^20 slots */
	assert_int_equal(kite_set_channel_ring(k, "a.>>", 128), KITE_EBADNAME);
	assert_int_equal(kite_set_channel_ring(NULL, "a.>", 128), -EINVAL);
	assert_int_equal(kite_set_channel_ring(k, NULL, 128), -EINVAL);
	char p[32];
	for (int i = 1; i < KITE_RING_RULES_MAX; i++) {
		snprintf(p, sizeof p, "r%d.>", i);
		assert_int_equal(kite_set_channel_ring(k, p, 4096), 0);
	}
	assert_int_equal(kite_set_channel_ring(k, "one.more", 4096), -ENOSPC);
	assert_int_equal(kite_set_channel_ring(k, "r1.>", 0), 0); /* removed: room */
	assert_int_equal(kite_set_channel_ring(k, "one.more", 4096), 0);
	kite_close(k);
}

/* Channels of one publisher with rings of 1 KiB, 64 KiB (the handle's
 * default here) and 1 MiB: the memfds have those sizes, and a subscriber
 * that reads nothing while 2,000 messages go by loses on the small one
 * only. The latest matching setting wins; a removed one gives the default
 * back. */
static void test_channel_ring_size_honoured(void **state)
{
	(void)state;
	kite *pub = open_on("ring-size", 1024, UINT32_MAX);
	assert_int_equal(kite_set_channel_ring(pub, "size.>", 4096), 0);
	assert_int_equal(kite_set_channel_ring(pub, "size.small", 1024), 0);
	assert_int_equal(kite_set_channel_ring(pub, "size.big", 1 << 20), 0);
	assert_int_equal(kite_set_channel_ring(pub, "size.>", 0), 0);
	kite *sub = open_sub();
	assert_int_equal(kite_subscribe(sub, "size.>"), 0);
	const char *ch[] = {"size.small", "size.mid", "size.big"};
	/* Header page, records, and the large-message pool (4 x the records). */
	const off_t want[] = {4096 + 1024 * 5, 4096 + 65536 * 5, 4096 + (1 << 20) * 5};
	for (int c = 0; c < 3; c++)
		for (uint64_t seq = 1; seq <= 2000; seq++)
			publish_seq(pub, ch[c], seq);
	for (int c = 0; c < 3; c++) {
		off_t size = 0;
		/* The publisher's descriptor (the subscriber keeps only
		 * its mapping). */
		assert_int_equal(ring_fds(ch[c], &size), 1);
		assert_int_equal(size, want[c]);
	}
	uint64_t got[3] = {0}, lost[3] = {0};
	kite_event ev;
	while (kite_recv(sub, &ev, 300) == 0) {
		for (int c = 0; c < 3; c++)
			if (ev.msg.channel && !strcmp(ev.msg.channel, ch[c])) {
				got[c] += ev.type == KITE_MESSAGE;
				lost[c] += ev.type == KITE_LOSS ? ev.lost : 0;
			}
	}
	print_message("# 1 KiB ring: %" PRIu64 " + %" PRIu64 " lost; 64 KiB: %" PRIu64
		      " + %" PRIu64 "; 1 MiB: %" PRIu64 " + %" PRIu64 "\n", got[0], lost[0],
		      got[1], lost[1], got[2], lost[2]);
	assert_true(lost[0] > 0);
	assert_int_equal(got[0] + lost[0], 2000);
	assert_int_equal(got[1] + lost[1], 2000);
	assert_int_equal(got[2], 2000);
	assert_int_equal(lost[2], 0);
	kite_close(sub);
	kite_close(pub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sub_options_checked),
		cmocka_unit_test(test_replay_counts_before_wrap),
		cmocka_unit_test(test_replay_after_wrap_around),
		cmocka_unit_test(test_last_value_channel),
		cmocka_unit_test(test_replay_by_time),
		cmocka_unit_test(test_replay_after_idle_release),
		cmocka_unit_test(test_replay_while_flooded),
		cmocka_unit_test(test_replay_of_pooled_messages),
		cmocka_unit_test(test_subscriber_stopped_at_publisher_start_misses_nothing),
		cmocka_unit_test(test_replay_skips_memfd_messages),
		cmocka_unit_test(test_channel_ring_sizes_refused),
		cmocka_unit_test(test_handle_ring_no_subscriber_maps_refused),
		cmocka_unit_test(test_handle_descriptors_as_documented),
		cmocka_unit_test(test_channel_ring_size_honoured),
	};
	if (getenv("KITE_TEST_FILTER")) /* run only the tests matching this glob */
		cmocka_set_test_filter(getenv("KITE_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
