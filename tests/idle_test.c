/* Rings released after an idle spell (kite_options.idle_ms, issue 9): a
 * channel nobody publishes on gives its memory and descriptors back, here
 * and in every subscriber, and its next message carries the same stream on:
 * sequence numbers continue, no second KITE_PUBLISHER_NEW, no loss, one
 * KITE_PUBLISHER_GONE at the end. Tried with a subscriber that keeps up,
 * one stopped (SIGSTOP) across a release and a re-creation with messages
 * unread in both rings, and a publisher of 1,000 channels under a
 * 128-descriptor limit, which fails with -EMFILE without the release.
 *
 * Each test has a private bus; children are killed and reaped in the
 * teardown also when an assertion fails half-way. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"

#define CHILD_MS 60000
#define IDLE_MS 40
#define CHANNELS 3
#define PER_ROUND 5
#define MANY 1000
#define MANY_BATCH 50
#define MANY_FD_LIMIT 128

struct stream_seen {
	uint64_t next;        /* the seq expected next (0: none yet) */
	uint64_t messages, lost, news, gones, disorder;
};

struct shared {
	_Atomic int ready, finish;
	_Atomic uint64_t received;
	struct stream_seen s[MANY];
	uint64_t stray;
	/* many channels */
	_Atomic int pub_done;
	int64_t first_error, first_failed;
	_Atomic int maps_checked;
};

static struct shared *sh;
static char bus[96];

CHILD_SHARED_FIXTURES(sh)

static void use_bus(const char *name)
{
	snprintf(bus, sizeof bus, "%s", test_bus(name));
}

/* Lines of a /proc maps or fd listing that name a kite ring's memfd. */
static int count_rings_mapped(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, "kite-ring:") != NULL;
	fclose(f);
	return n;
}

static int count_ring_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	char path[300], target[300];
	while ((e = readdir(d))) {
		snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len > 0) {
			target[len] = 0;
			n += strstr(target, "kite-ring:") != NULL;
		}
	}
	closedir(d);
	return n;
}

/* Poll fn until it returns want (or below, with at_most); 1 if it did. */
static int eventually_at_most(int (*fn)(pid_t), pid_t pid, int want, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	do {
		int n = fn(pid);
		if (n >= 0 && n <= want)
			return 1;
		nap_us(5000);
	} while (mono_ms() < end);
	return 0;
}

static int own_ring_fds(pid_t unused)
{
	(void)unused;
	return count_ring_fds();
}

static int channel_number(const char *channel, const char *prefix, int max)
{
	size_t n = strlen(prefix);
	if (strncmp(channel, prefix, n))
		return -1;
	char *end;
	long c = strtol(channel + n, &end, 10);
	return *end || c < 0 || c >= max ? -1 : (int)c;
}

/* A subscriber child: every event on prefix.N, tallied per stream, until
 * finish is set and nothing has come for a while. */
static int subscriber(void *arg)
{
	const char *prefix = arg;
	kite_options o = {.bus = bus, .handshake_ms = 2000};
	kite *k = NULL;
	int rc = kite_open(&k, &o);
	CHILD_CHECK(rc == 0, "kite_open: %s", kite_strerror(rc));
	char pattern[64];
	snprintf(pattern, sizeof pattern, "%s>", prefix);
	CHILD_CHECK(kite_subscribe(k, pattern) == 0, "subscribe");
	atomic_store(&sh->ready, 1);
	uint64_t deadline = mono_ms() + CHILD_MS, quiet_since = 0;
	kite_event ev;
	while (mono_ms() < deadline) {
		rc = kite_recv(k, &ev, 50);
		if (rc == -ETIMEDOUT) {
			if (!atomic_load(&sh->finish))
				continue;
			if (!quiet_since)
				quiet_since = mono_ms();
			else if (mono_ms() - quiet_since > 500)
				break;
			continue;
		}
		CHILD_CHECK(rc == 0, "recv: %s", kite_strerror(rc));
		quiet_since = 0;
		int c = ev.msg.channel ? channel_number(ev.msg.channel, prefix, MANY) : -1;
		if (c < 0) {
			sh->stray++;
			continue;
		}
		struct stream_seen *s = &sh->s[c];
		switch (ev.type) {
		case KITE_MESSAGE:
			if (s->next && ev.msg.seq != s->next)
				s->disorder++;
			s->next = ev.msg.seq + 1;
			s->messages++;
			atomic_fetch_add(&sh->received, 1);
			break;
		case KITE_LOSS:
			s->lost += ev.lost;
			s->next += ev.lost;
			break;
		case KITE_PUBLISHER_NEW:
			s->news++;
			break;
		case KITE_PUBLISHER_GONE:
			s->gones++;
			break;
		default:
			sh->stray++;
		}
	}
	kite_close(k);
	return 0;
}

static int wait_received(uint64_t n, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	while (atomic_load(&sh->received) < n && mono_ms() < end)
		nap_us(2000);
	return atomic_load(&sh->received) >= n;
}

static void publish_round(kite *k, uint64_t first_seq)
{
	char ch[32];
	for (int c = 0; c < CHANNELS; c++) {
		snprintf(ch, sizeof ch, "idle.%d", c);
		for (int i = 0; i < PER_ROUND; i++)
			assert_int_equal(kite_publish(k, ch, "x", 1),
					 (int64_t)(first_seq + (uint64_t)i));
	}
}

/* Two rounds of messages with a release between them; stopped: the
 * subscriber sleeps (SIGSTOP) through both, with all of them unread. */
static void release_and_continue(int stopped)
{
	use_bus(stopped ? "idle-stopped" : "idle-live");
	pid_t sub = child_start(subscriber, "idle.");
	uint64_t end = mono_ms() + 10000;
	while (!atomic_load(&sh->ready) && mono_ms() < end)
		nap_us(1000);
	assert_int_equal(atomic_load(&sh->ready), 1);
	kite_options o = {.bus = bus, .handshake_ms = 2000, .idle_ms = IDLE_MS};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	if (stopped) {
		kill(sub, SIGSTOP);
		assert_true(wait_stopped(sub, 2000));
	}
	publish_round(k, 1);
	if (!stopped)
		assert_true(wait_received(CHANNELS * PER_ROUND, 5000));
	/* Released here: no ring descriptor left. (A stopped subscriber
	 * still maps what it has not read.) */
	assert_true(eventually_at_most(own_ring_fds, 0, 0, 5000));
	if (!stopped)
		assert_true(eventually_at_most(count_rings_mapped, sub, 0, 5000));
	publish_round(k, PER_ROUND + 1);
	assert_int_equal(count_ring_fds(), CHANNELS);
	if (stopped)
		kill(sub, SIGCONT);
	assert_true(wait_received(2 * CHANNELS * PER_ROUND, 10000));
	/* Idle again: released in the subscriber too, before the end. */
	assert_true(eventually_at_most(own_ring_fds, 0, 0, 5000));
	assert_true(eventually_at_most(count_rings_mapped, sub, 0, 5000));
	kite_stats st;
	kite_get_stats(k, &st);
	assert_int_equal(st.published, 2 * CHANNELS * PER_ROUND);
	kite_close(k);
	atomic_store(&sh->finish, 1);
	assert_int_equal(child_wait(sub, 20000), 0);
	assert_int_equal(sh->stray, 0);
	for (int c = 0; c < CHANNELS; c++) {
		const struct stream_seen *s = &sh->s[c];
		print_message("# idle.%d: %llu messages, %llu lost, %llu NEW, %llu GONE\n", c,
			      (unsigned long long)s->messages, (unsigned long long)s->lost,
			      (unsigned long long)s->news, (unsigned long long)s->gones);
		assert_int_equal(s->messages, 2 * PER_ROUND);
		assert_int_equal(s->next, 2 * PER_ROUND + 1);
		assert_int_equal(s->lost, 0);
		assert_int_equal(s->disorder, 0);
		assert_int_equal(s->news, 1);
		assert_int_equal(s->gones, 1);
	}
}

static void test_idle_release_live_subscriber(void **state)
{
	(void)state;
	release_and_continue(0);
}

static void test_idle_release_stopped_subscriber(void **state)
{
	(void)state;
	release_and_continue(1);
}

/* A publisher of MANY channels, one message each, with a descriptor limit
 * far below MANY: idle rings give their descriptors back. */
static int many_publisher(void *arg)
{
	(void)arg;
	struct rlimit rl = {MANY_FD_LIMIT, MANY_FD_LIMIT};
	CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit");
	kite_options o = {.bus = bus, .handshake_ms = 2000, .idle_ms = 20};
	kite *k = NULL;
	int rc = kite_open(&k, &o);
	CHILD_CHECK(rc == 0, "kite_open: %s", kite_strerror(rc));
	char ch[32];
	sh->first_error = 0;
	for (int c = 0; c < MANY; c++) {
		if (c && c % MANY_BATCH == 0)
			nap_us(150000); /* the batch goes idle and is released */
		snprintf(ch, sizeof ch, "many.%d", c);
		int64_t r = kite_publish(k, ch, &c, sizeof c);
		if (r != 1 && !sh->first_error) {
			sh->first_error = r;
			sh->first_failed = c;
		}
	}
	atomic_store(&sh->pub_done, 1);
	/* Held open until the test has looked at the subscriber's maps. */
	uint64_t end = mono_ms() + 20000;
	while (!atomic_load(&sh->maps_checked) && mono_ms() < end)
		nap_us(5000);
	kite_close(k);
	return 0;
}

static void test_idle_release_many_channels(void **state)
{
	(void)state;
	use_bus("idle-many");
	pid_t sub = child_start(subscriber, "many.");
	uint64_t end = mono_ms() + 10000;
	while (!atomic_load(&sh->ready) && mono_ms() < end)
		nap_us(1000);
	assert_int_equal(atomic_load(&sh->ready), 1);
	pid_t pub = child_start(many_publisher, NULL);
	end = mono_ms() + 30000;
	while (!atomic_load(&sh->pub_done) && mono_ms() < end)
		nap_us(5000);
	assert_int_equal(atomic_load(&sh->pub_done), 1);
	if (sh->first_error)
		fail_msg("publish on channel %lld failed: %s", (long long)sh->first_failed,
			 kite_strerror((int)sh->first_error));
	assert_true(wait_received(MANY, 10000));
	/* The subscriber maps no more than the last few batches' rings. */
	int ok = eventually_at_most(count_rings_mapped, sub, 0, 5000);
	print_message("# %d channels under a %d-descriptor limit; subscriber maps %d "
		      "rings after the last release\n", MANY, MANY_FD_LIMIT,
		      count_rings_mapped(sub));
	assert_true(ok);
	atomic_store(&sh->maps_checked, 1);
	assert_int_equal(child_wait(pub, 20000), 0);
	atomic_store(&sh->finish, 1);
	assert_int_equal(child_wait(sub, 20000), 0);
	assert_int_equal(sh->stray, 0);
	for (int c = 0; c < MANY; c++) {
		const struct stream_seen *s = &sh->s[c];
		if (s->messages != 1 || s->lost || s->news != 1 || s->gones != 1)
			fail_msg("many.%d: %llu messages, %llu lost, %llu NEW, %llu GONE", c,
				 (unsigned long long)s->messages, (unsigned long long)s->lost,
				 (unsigned long long)s->news, (unsigned long long)s->gones);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_idle_release_live_subscriber),
		T(test_idle_release_stopped_subscriber),
		T(test_idle_release_many_channels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
