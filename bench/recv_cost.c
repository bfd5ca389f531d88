/* recv_cost.c — what kite_recv costs a subscriber per 64-byte message,
 * apart from the publisher's cost (the channels benchmark shows only the
 * slower of the two). One process, two handles on a private bus, the
 * publisher's thread on CPU 0 and the subscriber's on CPU 1:
 *
 *   cached  one thread publishes a batch of 256 messages, then reads them:
 *           the records are in its own cache (instructions only)
 *   behind  the publisher writes a batch of 512, then the subscriber reads
 *           them: every line comes from the other CPU, which is done with it
 *   far     the same with batches of 12,000 (about half the default ring,
 *           1 MiB): a reader far behind its publisher, its lines no longer
 *           in the other CPU's nearest caches (what decides whether a
 *           reader that fell behind catches up or is lapped again)
 *   live    the publisher publishes 3,000,000 flat out while the subscriber
 *           polls (kite_recv with timeout 0) and sums the time (TSC) of the
 *           calls that returned a message (plus two TSC reads each); also
 *           both rates and the loss
 *   spin    the publisher publishes 3,000,000 flat out, timing each batch
 *           of 1,000, while the subscriber waits inside kite_recv (spinning,
 *           as `kite busy` and the default's first 50 us do): what a
 *           subscriber's polling costs its publisher, the pair's pace. The
 *           medians over batches leave out those another process's time
 *           slice fell into (this machine is shared).
 *
 * Prints one line per figure: median ns per message over the batches
 * (cached, behind, far, spin), or over the whole run (live).
 *
 *   build/bench/recv_cost [cached|behind|far|live|spin]...
 *   (default: cached behind far live)
 */
#include <errno.h>
#include <kite.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/cost_util.h"
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

#define MSG 64
#define CACHED_BATCH 256
#define CACHED_ROUNDS 4000
#define BEHIND_BATCH 512 /* far below a lap of the default ring */
#define BEHIND_ROUNDS 4000
#define FAR_BATCH 12000 /* about half the default ring's 2 MiB */
#define FAR_ROUNDS 200
#define LIVE_COUNT 3000000ull
#define SPIN_BATCH 1000 /* spin: messages per timed batch */
#define SPIN_BATCHES (LIVE_COUNT / SPIN_BATCH)

static char bus[64];
/* Each on a cache line of its own: the subscriber writes sink for every
 * message and the publisher reads msg (together, the publisher ran at
 * two thirds of its speed). */
static _Alignas(64) char msg[MSG];
static _Alignas(64) volatile unsigned sink; /* what was read, so it is read */

static kite *open_handle(uint32_t spin_us)
{
	return open_handle_on(bus, spin_us);
}

/* Wait for the next message (events skipped); its first byte. */
static unsigned next_message(kite *k, uint64_t *lost)
{
	for (;;) {
		kite_event ev;
		int rc = kite_recv(k, &ev, 10000);
		if (rc)
			die("kite_recv", rc);
		if (ev.type == KITE_MESSAGE)
			return ((const unsigned char *)ev.msg.data)[0];
		if (ev.type == KITE_LOSS)
			*lost += ev.lost;
	}
}

/* Publish until the subscriber hears, then let it drain what came. */
static void attach(kite *pub, kite *sub, _Atomic int *heard)
{
	kite_event ev;
	if (sub) {
		while (!(kite_recv(sub, &ev, 1) == 0 && ev.type == KITE_MESSAGE))
			kite_publish(pub, "cost", msg, MSG);
		while (kite_recv(sub, &ev, 20) == 0)
			;
		return;
	}
	while (!atomic_load(heard)) {
		kite_publish(pub, "cost", msg, MSG);
		usleep(1000);
	}
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, by_value);
	return v[n / 2];
}

static void cached(void)
{
	pin(1);
	kite *sub = open_handle(0), *pub = open_handle(0);
	int rc = kite_subscribe(sub, "cost");
	if (rc)
		die("kite_subscribe", rc);
	attach(pub, sub, NULL);
	static double per[CACHED_ROUNDS];
	uint64_t lost = 0;
	for (int r = 0; r < CACHED_ROUNDS; r++) {
		for (int i = 0; i < CACHED_BATCH; i++)
			kite_publish(pub, "cost", msg, MSG);
		uint64_t t0 = now_ns();
		for (int i = 0; i < CACHED_BATCH; i++)
			sink += next_message(sub, &lost);
		per[r] = (double)(now_ns() - t0) / CACHED_BATCH;
	}
	printf("cached: %.1f ns per message (median of %d batches of %d; lost %llu)\n",
	       median(per, CACHED_ROUNDS), CACHED_ROUNDS, CACHED_BATCH,
	       (unsigned long long)lost);
	kite_close(pub);
	kite_close(sub);
}

/* The two-thread figures: the subscriber's side runs in this thread. */
struct shared {
	_Atomic int attached, heard, go, done_pub;
	_Atomic int round, round_read;
	uint64_t pub_ns;
	int live; /* 1: live, 2: spin */
	double *pub_batch_ns; /* spin: per message, each batch */
	int batch, rounds; /* not live: messages per batch, batches */
};

static void *publisher(void *arg)
{
	struct shared *sh = arg;
	pin(0);
	kite *pub = open_handle(0);
	while (!atomic_load(&sh->attached))
		usleep(1000);
	attach(pub, NULL, &sh->heard);
	while (!atomic_load(&sh->go))
		;
	if (sh->live == 2) {
		uint64_t t0 = now_ns();
		for (uint64_t b = 0; b < SPIN_BATCHES; b++) {
			uint64_t b0 = now_ns();
			for (int i = 0; i < SPIN_BATCH; i++)
				kite_publish(pub, "cost", msg, MSG);
			sh->pub_batch_ns[b] = (double)(now_ns() - b0) / SPIN_BATCH;
		}
		sh->pub_ns = now_ns() - t0;
	} else if (sh->live) {
		uint64_t t0 = now_ns();
		for (uint64_t i = 0; i < LIVE_COUNT; i++)
			kite_publish(pub, "cost", msg, MSG);
		sh->pub_ns = now_ns() - t0;
	} else {
		for (int r = 1; r <= sh->rounds; r++) {
			for (int i = 0; i < sh->batch; i++)
				kite_publish(pub, "cost", msg, MSG);
			atomic_store(&sh->round, r);
			while (atomic_load(&sh->round_read) != r)
				;
		}
	}
	atomic_store(&sh->done_pub, 1);
	kite_close(pub);
	return NULL;
}

static void two_cpus(int live, int batch, int rounds)
{
	static double pub_batch_ns[SPIN_BATCHES], sub_batch_ns[SPIN_BATCHES];
	struct shared sh = {.live = live, .batch = batch, .rounds = rounds,
			    .pub_batch_ns = pub_batch_ns};
	pthread_t t;
	pin(1);
	kite *sub = open_handle(UINT32_MAX - 1);
	int rc = kite_subscribe(sub, "cost");
	if (rc)
		die("kite_subscribe", rc);
	if (pthread_create(&t, NULL, publisher, &sh))
		die("pthread_create", -EAGAIN);
	atomic_store(&sh.attached, 1);
	uint64_t lost = 0;
	sink += next_message(sub, &lost);
	atomic_store(&sh.heard, 1);
	kite_event ev;
	while (kite_recv(sub, &ev, 50) == 0)
		;
	lost = 0;
	atomic_store(&sh.go, 1);
	if (!live) {
		static double per[BEHIND_ROUNDS > FAR_ROUNDS ? BEHIND_ROUNDS : FAR_ROUNDS];
		for (int r = 1; r <= rounds; r++) {
			while (atomic_load(&sh.round) != r)
				;
			uint64_t t0 = now_ns();
			for (int i = 0; i < batch; i++)
				sink += next_message(sub, &lost);
			per[r - 1] = (double)(now_ns() - t0) / batch;
			atomic_store(&sh.round_read, r);
		}
		printf("%s: %.1f ns per message (median of %d batches of %d; lost %llu)\n",
		       batch == FAR_BATCH ? "far" : "behind", median(per, (size_t)rounds), rounds,
		       batch, (unsigned long long)lost);
	} else if (live == 2) {
		/* The subscriber's pace: the time of each SPIN_BATCH messages
		 * (or losses) it got, waiting included. */
		uint64_t got = 0, t0 = now_ns(), b0 = t0, nb = 0, mark = SPIN_BATCH;
		while (got + lost < LIVE_COUNT) {
			rc = kite_recv(sub, &ev, 10000);
			if (rc)
				die("kite_recv", rc);
			if (ev.type == KITE_MESSAGE) {
				sink += ((const unsigned char *)ev.msg.data)[0];
				got++;
			} else if (ev.type == KITE_LOSS) {
				lost += ev.lost;
			}
			if (got + lost >= mark && nb < SPIN_BATCHES) {
				uint64_t now = now_ns();
				sub_batch_ns[nb++] = (double)(now - b0) /
						     (double)(got + lost + SPIN_BATCH - mark);
				b0 = now;
				mark = got + lost + SPIN_BATCH;
			}
		}
		double elapsed = (double)(now_ns() - t0);
		while (!atomic_load(&sh.done_pub))
			;
		printf("spin: publisher %.1f ns per message, subscriber %.1f (medians of "
		       "batches of %d); overall subscriber %.2f M/s, publisher %.2f M/s, "
		       "lost %.3f %%\n",
		       median(pub_batch_ns, SPIN_BATCHES), median(sub_batch_ns, nb ? nb : 1),
		       SPIN_BATCH, (double)got * 1e3 / elapsed,
		       (double)LIVE_COUNT * 1e3 / (double)sh.pub_ns,
		       (double)lost * 100 / (double)LIVE_COUNT);
	} else {
#ifdef HAVE_TSC
		uint64_t got = 0, ticks = 0, t0 = now_ns(), c0 = __rdtsc();
		while (got + lost < LIVE_COUNT) {
			uint64_t a = __rdtsc();
			rc = kite_recv(sub, &ev, 0);
			if (rc == -EAGAIN)
				continue;
			if (rc)
				die("kite_recv", rc);
			uint64_t b = __rdtsc();
			if (ev.type == KITE_MESSAGE) {
				sink += ((const unsigned char *)ev.msg.data)[0];
				got++;
				ticks += b - a;
			} else if (ev.type == KITE_LOSS) {
				lost += ev.lost;
			}
		}
		double elapsed = (double)(now_ns() - t0);
		double tsc_per_ns = (double)(__rdtsc() - c0) / elapsed;
		while (!atomic_load(&sh.done_pub))
			;
		printf("live: %.1f ns per message inside kite_recv; subscriber %.2f M/s, "
		       "publisher %.2f M/s, lost %.3f %%\n",
		       (double)ticks / tsc_per_ns / (double)(got ? got : 1),
		       (double)got * 1e3 / elapsed, (double)LIVE_COUNT * 1e3 / (double)sh.pub_ns,
		       (double)lost * 100 / (double)LIVE_COUNT);
#else
		fprintf(stderr, "recv_cost: live needs a time-stamp counter\n");
		exit(1);
#endif
	}
	pthread_join(t, NULL);
	kite_close(sub);
}

int main(int argc, char **argv)
{
	static const char *const all[] = {"cached", "behind", "far", "live"};
	const char *const *which = argc > 1 ? (const char *const *)argv + 1 : all;
	int n = argc > 1 ? argc - 1 : 4;
	memset(msg, 7, sizeof msg);
	for (int i = 0; i < n; i++) {
		snprintf(bus, sizeof bus, "cost%d%d", (int)getpid(), i);
		if (!strcmp(which[i], "cached")) {
			cached();
		} else if (!strcmp(which[i], "behind")) {
			two_cpus(0, BEHIND_BATCH, BEHIND_ROUNDS);
		} else if (!strcmp(which[i], "far")) {
			two_cpus(0, FAR_BATCH, FAR_ROUNDS);
		} else if (!strcmp(which[i], "live")) {
			two_cpus(1, 0, 0);
		} else if (!strcmp(which[i], "spin")) {
			two_cpus(2, 0, 0);
		} else {
			fprintf(stderr, "usage: recv_cost [cached|behind|far|live|spin]...\n");
			return 2;
		}
	}
	return 0;
}
