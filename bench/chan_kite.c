/* chan_kite.c — kite's side of the local-channel benchmark: one handle per
 * process on a private bus (--where), publishing on one channel and
 * subscribed to another:
 *
 *   pub   publishes bench.data, hears bench.ctl (acknowledgements)
 *   sub   publishes bench.ctl,  hears bench.data
 *   ping  publishes bench.ping, hears bench.pong
 *   pong  publishes bench.pong, hears bench.ping
 *
 * kite has radio semantics: the publisher never waits, and an overrun
 * subscriber is told how many messages it lost (KITE_LOSS); those counts
 * are summed into the result line next to what actually arrived.
 * Modes, all through kite_recv with a timeout but for poll:
 *   busy  spin_us far longer than the wait: spins inside kite_recv, never
 *         sleeps, makes no system call while messages keep coming
 *   spin  kite's default: spins 50 us, then sleeps on its eventfd
 *   idle  spin_us = UINT32_MAX: sleeps at once, pays every wake-up
 *   poll  kite_recv(k, &ev, 0) in a loop (an application's event loop)
 * With CHAN_KITE_RELIABLE=1 in the environment, subscribers subscribe
 * bench.data reliably (KITE_SUB_RELIABLE) and the publisher waits for them
 * (reliable_wait_ms = UINT32_MAX): nothing may be lost.
 * With CHAN_KITE_CLAIM=1, every message is built in place (zero-copy
 * publish): kite_claim, the harness's 16 bytes of words stored and the
 * rest set with memset (each byte written once, as a producer building
 * its message must; no copy from a buffer), kite_commit.
 */
#include "lib/chan_harness.h"

#include <errno.h>
#include <kite.h>
#include <stdlib.h>
#include <string.h>

struct kt {
	kite *k;
	const char *out;
	int claim; /* CHAN_KITE_CLAIM: build each message in place */
	uint64_t gone, refused;
};

static void *k_open(const struct chan_args *a)
{
	static const char *const out[] = {"bench.data", "bench.ctl",
					  "bench.ping", "bench.pong"};
	static const char *const in[] = {"bench.ctl", "bench.data",
					 "bench.pong", "bench.ping"};
	struct kt *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	const char *rel = getenv("CHAN_KITE_RELIABLE");
	int reliable = rel && *rel == '1';
	kite_options o = {.bus = a->where, .reliable_wait_ms = reliable ? UINT32_MAX : 0};
	struct kite_sub_options so = {.flags = reliable ? KITE_SUB_RELIABLE : 0};
	if (a->mode == MODE_IDLE)
		o.spin_us = UINT32_MAX;
	else if (a->mode == MODE_BUSY)
		o.spin_us = UINT32_MAX - 1; /* about 71 minutes */
	int rc = kite_open(&t->k, &o);
	if (rc == 0)
		rc = kite_subscribe_opts(t->k, in[a->role], &so);
	if (rc != 0) {
		fprintf(stderr, "chan: kite: %s\n", kite_strerror(rc));
		kite_close(t->k);
		free(t);
		return NULL;
	}
	t->out = out[a->role];
	const char *claim = getenv("CHAN_KITE_CLAIM");
	t->claim = claim && *claim == '1';
	return t;
}

static int k_send(void *p, const void *buf, size_t len)
{
	struct kt *t = p;
	if (t->claim) {
		void *m;
		int rc = kite_claim(t->k, t->out, len, &m);
		if (rc < 0) {
			fprintf(stderr, "chan: kite_claim: %s\n", kite_strerror(rc));
			return -1;
		}
		size_t words = len < 16 ? len : 16; /* index and sender id */
		memcpy(m, buf, words);
		memset((char *)m + words, 0x5a, len - words);
		int64_t seq = kite_commit(t->k, t->out, len);
		if (seq < 0) {
			fprintf(stderr, "chan: kite_commit: %s\n", kite_strerror((int)seq));
			return -1;
		}
		return 0;
	}
	int64_t rc = kite_publish(t->k, t->out, buf, len);
	if (rc < 0) {
		fprintf(stderr, "chan: kite_publish: %s\n", kite_strerror((int)rc));
		return -1;
	}
	return 0;
}

/* Events other than messages are counted and skipped. */
static int k_recv(void *p, struct chan_msg *m, int timeout_ms, uint64_t *lost)
{
	struct kt *t = p;
	kite_event ev;
	for (;;) {
		int rc = kite_recv(t->k, &ev, timeout_ms);
		if (rc == -EAGAIN || rc == -ETIMEDOUT)
			return 0;
		if (rc < 0) {
			fprintf(stderr, "chan: kite_recv: %s\n", kite_strerror(rc));
			return -1;
		}
		switch (ev.type) {
		case KITE_MESSAGE:
			m->data = ev.msg.data;
			m->len = ev.msg.len;
			m->seq = ev.msg.seq;
			return 1;
		case KITE_LOSS:
			*lost += ev.lost;
			break;
		case KITE_PUBLISHER_GONE:
			t->gone++;
			break;
		case KITE_REFUSED:
			t->refused++;
			fprintf(stderr, "chan: kite: refused%s: %s\n",
				ev.refused_by_peer ? " by peer" : "",
				ev.text ? ev.text : "");
			break;
		default:
			break;
		}
	}
}

static void k_report(void *p, FILE *out)
{
	struct kt *t = p;
	kite_stats s;
	kite_get_stats(t->k, &s);
	fprintf(out, " published=%llu received=%llu reported_lost=%llu "
		     "wakeups_sent=%llu events_dropped=%llu gone=%llu refused=%llu",
		(unsigned long long)s.published, (unsigned long long)s.received,
		(unsigned long long)s.lost, (unsigned long long)s.wakeups_sent,
		(unsigned long long)s.events_dropped,
		(unsigned long long)t->gone, (unsigned long long)t->refused);
}

static void k_close(void *p)
{
	struct kt *t = p;
	kite_close(t->k);
	free(t);
}

static const struct chan_ops kite_ops = {
	.name = "kite",
	.spins = 1,
	.open = k_open,
	.send = k_send,
	.recv = k_recv,
	.wait_subscribers = NULL, /* hellos and acknowledgements over kite */
	.close = k_close,
	.report = k_report,
};

int main(int argc, char **argv)
{
	return chan_main(&kite_ops, argc, argv);
}
