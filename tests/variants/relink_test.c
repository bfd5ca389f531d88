/* Links that are cut and made again, with exact accounting. Built against
 * a variant of libkite whose outbound queues are tiny (OUTQ_MAX 32 records
 * beyond one hand-over per ring, see the Makefile), so that an ordinary
 * stopped subscriber gets its link cut as soon as its publisher subscribes
 * and unsubscribes a few patterns: the path a real link takes only after
 * 16,384 such records.
 *
 * A subscriber is SIGSTOPped; its publisher goes on publishing on its
 * channels, opens new ones (some of whose hand-overs are lost with the
 * cut), and churns its own subscriptions until the link is cut. After
 * SIGCONT the subscriber must get every message or a KITE_LOSS for it, per
 * channel and sequence, with no KITE_PUBLISHER_GONE while the publisher
 * lives — then GONE for each ring once it closes. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "../child.h"
#include "kite.h"

#define CHANNELS 120     /* opened by the publisher, 40 before the stop */
#define PER_CHANNEL 50   /* messages on each */
#define CHILD_MS 60000

struct shared {
	_Atomic uint64_t published[CHANNELS]; /* last seq per channel */
	_Atomic int pub_done;
	_Atomic int sub_done;
	_Atomic uint64_t delivered, lost, gone_live, gone_after, bad, news;
};
static struct shared *sh;
static char bus[96];

static int chan_index(const char *c)
{
	return strncmp(c, "rl.c", 4) ? -1 : atoi(c + 4);
}

static int subscriber(void *arg)
{
	int *ready = arg;
	kite_options o = {.bus = bus, .handshake_ms = 5000};
	kite *k;
	if (kite_open(&k, &o) || kite_subscribe(k, "rl.>"))
		return 2;
	pipe_send(ready[1], 's');
	static uint64_t next[CHANNELS];
	for (int i = 0; i < CHANNELS; i++)
		next[i] = 1;
	uint64_t idle_since = mono_ms();
	kite_event ev;
	for (;;) {
		int rc = kite_recv(k, &ev, 100);
		if (rc == -ETIMEDOUT) {
			if (atomic_load(&sh->pub_done) == 2 && mono_ms() - idle_since > 1500)
				break;
			continue;
		}
		if (rc)
			return 3;
		idle_since = mono_ms();
		int i = chan_index(ev.msg.channel);
		if (i < 0 || i >= CHANNELS) {
			atomic_fetch_add(&sh->bad, 1);
			continue;
		}
		if (ev.type == KITE_MESSAGE) {
			if (ev.msg.seq != next[i])
				atomic_fetch_add(&sh->bad, 1); /* a silent gap or a repeat */
			next[i] = ev.msg.seq + 1;
			atomic_fetch_add(&sh->delivered, 1);
		} else if (ev.type == KITE_LOSS) {
			next[i] += ev.lost;
			atomic_fetch_add(&sh->lost, ev.lost);
		} else if (ev.type == KITE_PUBLISHER_NEW) {
			atomic_fetch_add(&sh->news, 1);
		} else if (ev.type == KITE_PUBLISHER_GONE) {
			atomic_fetch_add(atomic_load(&sh->pub_done) == 2 ? &sh->gone_after
									  : &sh->gone_live, 1);
		}
	}
	for (int i = 0; i < CHANNELS; i++)
		if (next[i] != atomic_load(&sh->published[i]) + 1)
			atomic_fetch_add(&sh->bad, 1); /* its tail neither came nor was lost */
	kite_close(k);
	return 0;
}

static int publish_on(kite *k, int i)
{
	char ch[32];
	snprintf(ch, sizeof ch, "rl.c%d", i);
	int64_t seq = kite_publish(k, ch, "m", 1);
	if (seq < 1)
		return -1;
	atomic_store(&sh->published[i], (uint64_t)seq);
	return 0;
}

static void test_cut_link_comes_back_exact(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("relink"));
	int ready[2];
	pipe_make(ready);
	pid_t sub = child_start(subscriber, ready);
	assert_int_equal(pipe_wait(ready[0], 10000), 's');
	/* A short handshake: its subscribe calls must not wait for the
	 * stopped subscriber's acknowledgements. */
	kite_options o = {.bus = bus, .handshake_ms = 1};
	kite *k;
	assert_int_equal(kite_open(&k, &o), 0);
	usleep(300000); /* the subscriber's pattern has reached us */
	for (int i = 0; i < 40; i++)
		for (int n = 0; n < PER_CHANNEL / 2; n++)
			assert_int_equal(publish_on(k, i), 0);
	usleep(200000);
	kill(sub, SIGSTOP);
	/* Our own subscription churn queues records it does not read: with
	 * the variant's tiny queue, its link is cut. */
	kite_stats st;
	for (int n = 0; n < 400; n++) {
		char p[32];
		snprintf(p, sizeof p, "churn.p%d", n);
		kite_subscribe(k, p);
		kite_unsubscribe(k, p);
		if (n == 100) /* new channels, some hand-overs lost with the cut */
			for (int i = 40; i < CHANNELS; i++)
				assert_int_equal(publish_on(k, i), 0);
	}
	for (int i = 0; i < CHANNELS; i++)
		for (int n = 0; n < PER_CHANNEL / 2; n++)
			assert_int_equal(publish_on(k, i), 0);
	usleep(300000);
	kill(sub, SIGCONT);
	/* It drains the old link to its end, finds us alive, links again. */
	uint64_t deadline = mono_ms() + 10000;
	kite_get_stats(k, &st);
	while (mono_ms() < deadline) {
		kite_get_stats(k, &st);
		if (st.peers == 1 && atomic_load(&sh->delivered) + atomic_load(&sh->lost) >=
					     (uint64_t)CHANNELS * PER_CHANNEL - 20 * PER_CHANNEL / 2)
			break;
		usleep(20000);
	}
	for (int i = 0; i < CHANNELS; i++)
		assert_int_equal(publish_on(k, i), 0); /* after the link is back */
	usleep(500000);
	atomic_store(&sh->pub_done, 2);
	kite_close(k);
	int rc = child_wait(sub, CHILD_MS);
	uint64_t total = 0;
	for (int i = 0; i < CHANNELS; i++)
		total += atomic_load(&sh->published[i]);
	print_message("# %llu published on %d channels: %llu delivered, %llu reported lost, "
		      "%llu NEW; GONE %llu while the publisher lived, %llu after it closed; "
		      "%llu accounting errors\n", (unsigned long long)total, CHANNELS,
		      (unsigned long long)sh->delivered, (unsigned long long)sh->lost,
		      (unsigned long long)sh->news, (unsigned long long)sh->gone_live,
		      (unsigned long long)sh->gone_after, (unsigned long long)sh->bad);
	pipe_close(ready);
	assert_int_equal(rc, 0);
	assert_int_equal(atomic_load(&sh->bad), 0);
	assert_int_equal(atomic_load(&sh->delivered) + atomic_load(&sh->lost), total);
	assert_int_equal(atomic_load(&sh->gone_live), 0);
	assert_int_equal(atomic_load(&sh->gone_after), CHANNELS);
}

CHILD_SHARED_FIXTURES(sh)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cut_link_comes_back_exact, setup, teardown),
	};
	return cmocka_run_group_tests_name("relink", tests, NULL, NULL);
}
