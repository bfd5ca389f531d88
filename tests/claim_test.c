/* Zero-copy publish (kite_claim / kite_commit / kite_abort) through real
 * handles on a private bus. Rings are small (16 x 256 = 4 KiB of records,
 * inline limit 480 bytes) so that every run goes round them many times.
 *
 * Checked: every claimable size from 0 to the limit, committed whole, and
 * 3,000 seeded claims of random sizes committed shorter or aborted, across
 * ~100 laps (pads included): each delivered byte-exact, in order, no loss,
 * an aborted claim spends no seq; a forged record header left in the
 * unused room of a claim committed shorter is never delivered; the
 * timestamp is taken at commit; one claim per channel (-EBUSY for a
 * second claim, kite_publish and
 * kite_publish_origin on it; other channels unaffected); two threads, one
 * claiming and one publishing on the same and on another channel, every
 * message delivered as the call that returned its seq made it; bad
 * arguments; a fork child gets -ECHILD and the parent's claim survives it;
 * an idle release waits for an open claim; a publisher SIGKILLed between
 * claim and commit (with and without the claim padding the lap's end):
 * live and late subscribers (replay included) get every committed
 * message, whole, then GONE, and no loss; kite_close with a claim open; a
 * reliable subscriber that stops makes kite_claim return -EAGAIN with no
 * claim made (wait 0), a slow one makes it wait (wait forever), and
 * neither loses anything.
 *
 * Claims in the ring's pool (16 KiB here, 4 KiB a message at most): sizes
 * on both sides of the inline limit and of the pool's quarter (-EMSGSIZE
 * above, where kite_publish still goes), committed whole and shorter;
 * 2,000 seeded claims mixing inline and pool sizes across ~100 pool wraps
 * (byte-exact, in order, 0 lost); a reader a pool behind loses exactly the
 * message under a claim at claim time; a slow radio reader overrun while
 * claims are filled (exact loss, never a torn payload); a slow reliable
 * reader (0 lost: the pool floor at claim time); SIGKILL between a pool
 * claim and its commit (live, late and replaying readers); aborted pool
 * claims then publishes round the pool; the idle release waits for a pool
 * claim. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"

#define SLOTS 16
#define SLOT_SIZE 256
/* What goes inline: an eighth of the ring's records, never less than a
 * slot, less 32 bytes (480 here). */
#define RING_EIGHTH (SLOTS * SLOT_SIZE / 8)
#define INLINE_MAX ((RING_EIGHTH > SLOT_SIZE ? RING_EIGHTH : SLOT_SIZE) - 32)
/* The ring's pool: four times its records (16 KiB), a message at most a
 * quarter of it (4 KiB). */
#define POOL_BYTES (4 * SLOTS * SLOT_SIZE)
#define POOL_MAX (POOL_BYTES / 4)
#define CH "claim.data"
#define OTHER "claim.other"

struct shared {
	_Atomic int ready, go, done;
	_Atomic uint64_t received, lost, bad;
};

static struct shared *sh;
static char bus[96];

CHILD_SHARED_FIXTURES(sh)

static kite *open_pub_opts(kite_options o)
{
	o.bus = bus;
	o.handshake_ms = 3000;
	o.ring_slots = SLOTS;
	o.slot_size = SLOT_SIZE;
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	return k;
}

static kite *open_pub(void)
{
	return open_pub_opts((kite_options){0});
}

static kite *open_sub(const char *pattern, uint32_t last_n)
{
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k = NULL;
	assert_int_equal(kite_open(&k, &o), 0);
	struct kite_sub_options so = {.last_n = last_n};
	assert_int_equal(kite_subscribe_opts(k, pattern, &so), 0);
	return k;
}

static void use_bus(const char *name)
{
	snprintf(bus, sizeof bus, "%s", test_bus(name));
}

/* Every byte says which message (id) and where in it it is. */
static uint8_t fill_byte(uint64_t id, size_t i)
{
	return (uint8_t)(id * 131u + i * 7u + 1u);
}

static void fill(void *p, uint64_t id, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)p)[i] = fill_byte(id, i);
}

static int filled(const void *p, uint64_t id, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((const uint8_t *)p)[i] != fill_byte(id, i))
			return 0;
	return 1;
}

/* The next message (events other than messages fail the test, but for
 * PUBLISHER_NEW, which is skipped). */
static const kite_msg *next_msg(kite *sub, kite_event *ev)
{
	do
		assert_int_equal(kite_recv(sub, ev, 3000), 0);
	while (ev->type == KITE_PUBLISHER_NEW);
	assert_int_equal(ev->type, KITE_MESSAGE);
	return &ev->msg;
}

static void expect_msg(kite *sub, uint64_t seq, uint64_t id, size_t len)
{
	kite_event ev;
	const kite_msg *m = next_msg(sub, &ev);
	assert_string_equal(m->channel, CH);
	assert_int_equal(m->seq, seq);
	assert_int_equal(m->len, len);
	assert_true(filled(m->data, id, len));
}

static void expect_quiet(kite *sub, int ms)
{
	kite_event ev;
	int rc;
	while ((rc = kite_recv(sub, &ev, ms)) == 0 && ev.type == KITE_PUBLISHER_NEW)
		;
	assert_int_equal(rc, -ETIMEDOUT);
}

static int64_t claim_fill_commit(kite *k, uint64_t id, size_t len)
{
	void *p = NULL;
	assert_int_equal(kite_claim(k, CH, len, &p), 0);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 8, 0);
	fill(p, id, len);
	return kite_commit(k, CH, len);
}

/* Nothing more comes; the subscriber got `received` messages and lost
 * none; both handles closed. */
static void expect_all_and_close(kite *pub, kite *sub, uint64_t received)
{
	expect_quiet(sub, 100);
	kite_stats st;
	kite_get_stats(sub, &st);
	assert_int_equal(st.lost, 0);
	assert_int_equal(st.received, received);
	kite_close(pub);
	kite_close(sub);
}

static void test_every_size_round_trip(void **state)
{
	(void)state;
	use_bus("claim_sizes");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	/* Each size twice, so records of every length meet the lap's end at
	 * many offsets; the reader keeps up, so nothing may be lost. */
	uint64_t seq = 0;
	for (int round = 0; round < 2; round++)
		for (size_t len = 0; len <= INLINE_MAX; len++) {
			assert_int_equal(claim_fill_commit(pub, seq + 1, len), (int64_t)seq + 1);
			seq++;
			expect_msg(sub, seq, seq, len);
		}
	/* One byte more than the pool takes: refused, nothing open. */
	void *p = (void *)1;
	assert_int_equal(kite_claim(pub, CH, POOL_MAX + 1, &p), -EMSGSIZE);
	assert_null(p);
	assert_int_equal(kite_claim(pub, CH, SIZE_MAX, &p), -EMSGSIZE);
	assert_int_equal(kite_commit(pub, CH, 0), KITE_ENOCLAIM);
	kite_stats st;
	kite_get_stats(pub, &st);
	assert_int_equal(st.published, seq);
	kite_close(pub);
	kite_close(sub);
}

/* Random sizes, committed shorter than claimed or aborted, many laps; the
 * subscriber reads as we go, in batches, so it is sometimes a few records
 * behind. */
static void test_random_claims_across_laps(void **state)
{
	(void)state;
	use_bus("claim_random");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	uint64_t rng = 0x9e3779b97f4a7c15ull, seq = 0, aborted = 0;
	uint64_t ids[8];
	size_t lens[8], pending = 0;
	for (uint64_t id = 1; id <= 3000; id++) {
		size_t claim = test_rand(&rng) % (INLINE_MAX + 1);
		void *p = NULL;
		assert_int_equal(kite_claim(pub, CH, claim, &p), 0);
		fill(p, id, claim);
		if (test_rand(&rng) % 4 == 0) {
			assert_int_equal(kite_abort(pub, CH), 0);
			aborted++;
			continue;
		}
		size_t len = claim ? test_rand(&rng) % (claim + 1) : 0;
		assert_int_equal(kite_commit(pub, CH, len), (int64_t)++seq);
		ids[pending] = id;
		lens[pending++] = len;
		if (pending == 8) {
			for (size_t i = 0; i < pending; i++)
				expect_msg(sub, seq - pending + 1 + i, ids[i], lens[i]);
			pending = 0;
		}
	}
	for (size_t i = 0; i < pending; i++)
		expect_msg(sub, seq - pending + 1 + i, ids[i], lens[i]);
	assert_true(aborted > 500);
	expect_all_and_close(pub, sub, seq);
}

/* Both sides of both limits: the ring's inline one and the pool's. */
static void test_pool_claim_sizes(void **state)
{
	(void)state;
	use_bus("claim_pool_sizes");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	const size_t sizes[] = {INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, POOL_MAX - 1,
				POOL_MAX};
	uint64_t seq = 0;
	/* Eight rounds of ~9.5 KiB: the pool (16 KiB) wraps at several
	 * offsets. */
	for (int round = 0; round < 8; round++)
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
			assert_int_equal(claim_fill_commit(pub, seq + 1, sizes[i]),
					 (int64_t)seq + 1);
			seq++;
			expect_msg(sub, seq, seq, sizes[i]);
		}
	/* A pool claim committed shorter, down to nothing and to what would
	 * have gone inline. */
	const size_t shorter[] = {0, 1, INLINE_MAX, INLINE_MAX + 1, POOL_MAX - 1};
	for (size_t i = 0; i < sizeof shorter / sizeof *shorter; i++) {
		void *p;
		assert_int_equal(kite_claim(pub, CH, POOL_MAX, &p), 0);
		fill(p, seq + 1, POOL_MAX);
		assert_int_equal(kite_commit(pub, CH, shorter[i]), (int64_t)++seq);
		expect_msg(sub, seq, seq, shorter[i]);
	}
	/* Longer than claimed: refused, the claim stays open. */
	void *p;
	assert_int_equal(kite_claim(pub, CH, INLINE_MAX + 1, &p), 0);
	fill(p, seq + 1, INLINE_MAX + 1);
	assert_int_equal(kite_commit(pub, CH, INLINE_MAX + 2), -EINVAL);
	assert_int_equal(kite_commit(pub, CH, INLINE_MAX + 1), (int64_t)++seq);
	expect_msg(sub, seq, seq, INLINE_MAX + 1);
	/* Above the pool a message needs a memfd of its own, made from a
	 * finished copy: kite_publish only. */
	p = (void *)1;
	assert_int_equal(kite_claim(pub, CH, POOL_MAX + 1, &p), -EMSGSIZE);
	assert_null(p);
	assert_int_equal(kite_commit(pub, CH, 0), KITE_ENOCLAIM);
	uint8_t *big = malloc(POOL_MAX + 1);
	assert_non_null(big);
	fill(big, seq + 1, POOL_MAX + 1);
	assert_int_equal(kite_publish(pub, CH, big, POOL_MAX + 1), (int64_t)++seq);
	expect_msg(sub, seq, seq, POOL_MAX + 1);
	free(big);
	expect_all_and_close(pub, sub, seq);
}

/* A ring of 256 MiB of records has no pool (its quarter would not hold
 * twice an inline record): a claim goes up to the inline maximum, 32 MiB
 * less 32, and one byte more is -EMSGSIZE, not a pool claim of up to
 * 32 MiB as min(4 x capacity, 128 MiB) / 4 alone would say (kite.h says
 * so now); kite_publish sends it in a memfd of its own. The ring is
 * sparse: only what is written becomes resident. */
static void test_no_pool_for_the_largest_rings(void **state)
{
	(void)state;
	use_bus("claim_no_pool");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	assert_int_equal(kite_set_channel_ring(pub, CH, 256u << 20), 0);
	const size_t inline_max = (32u << 20) - 32;
	void *p;
	assert_int_equal(kite_claim(pub, CH, inline_max + 1, &p), -EMSGSIZE);
	assert_int_equal(kite_claim(pub, CH, 32u << 20, &p), -EMSGSIZE);
	assert_int_equal(kite_claim(pub, CH, inline_max, &p), 0);
	fill(p, 1, 4096);
	assert_int_equal(kite_commit(pub, CH, 4096), 1);
	expect_msg(sub, 1, 1, 4096);
	uint8_t *big = malloc(inline_max + 1);
	assert_non_null(big);
	fill(big, 2, inline_max + 1);
	assert_int_equal(kite_publish(pub, CH, big, inline_max + 1), 2);
	free(big);
	expect_msg(sub, 2, 2, inline_max + 1);
	expect_all_and_close(pub, sub, 2);
}

/* 2,000 seeded claims, half inline and half pool sizes, some committed
 * shorter, some aborted, across a hundred pool wraps; the subscriber keeps
 * up (two messages behind at most). */
static void test_random_pool_claims_across_wraps(void **state)
{
	(void)state;
	use_bus("claim_pool_random");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	uint64_t rng = 0x2545f4914f6cdd1dull, seq = 0, aborted = 0, pooled = 0;
	uint64_t pool_bytes = 0, ids[2];
	size_t lens[2], pending = 0;
	for (uint64_t id = 1; id <= 2000; id++) {
		size_t claim = test_rand(&rng) % 2
				       ? test_rand(&rng) % (INLINE_MAX + 1)
				       : INLINE_MAX + 1 + test_rand(&rng) % (POOL_MAX - INLINE_MAX);
		void *p = NULL;
		assert_int_equal(kite_claim(pub, CH, claim, &p), 0);
		assert_int_equal((uintptr_t)p % 8, 0);
		fill(p, id, claim);
		if (claim > INLINE_MAX)
			pool_bytes += claim;
		if (test_rand(&rng) % 8 == 0) {
			assert_int_equal(kite_abort(pub, CH), 0);
			aborted++;
			continue;
		}
		size_t len = test_rand(&rng) % 4 ? claim : test_rand(&rng) % (claim + 1);
		assert_int_equal(kite_commit(pub, CH, len), (int64_t)++seq);
		pooled += claim > INLINE_MAX;
		ids[pending] = id;
		lens[pending++] = len;
		if (pending == 2) {
			expect_msg(sub, seq - 1, ids[0], lens[0]);
			expect_msg(sub, seq, ids[1], lens[1]);
			pending = 0;
		}
	}
	if (pending)
		expect_msg(sub, seq, ids[0], lens[0]);
	assert_true(aborted > 150 && pooled > 700);
	assert_true(pool_bytes > 100 * POOL_BYTES);
	expect_all_and_close(pub, sub, seq);
}

/* The pool room is taken at claim time: a reader a pool behind loses the
 * message under the claim before a byte of it is written, exactly that
 * one, and gets the claimed one once committed. */
static void test_pool_claim_overruns_at_claim_time(void **state)
{
	(void)state;
	use_bus("claim_pool_overrun");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	for (uint64_t seq = 1; seq <= 4; seq++) /* the pool, exactly full */
		assert_int_equal(claim_fill_commit(pub, seq, POOL_MAX), (int64_t)seq);
	void *p;
	assert_int_equal(kite_claim(pub, CH, POOL_MAX, &p), 0);
	kite_event ev;
	do
		assert_int_equal(kite_recv(sub, &ev, 3000), 0);
	while (ev.type == KITE_PUBLISHER_NEW);
	assert_int_equal(ev.type, KITE_LOSS);
	assert_int_equal(ev.lost, 1);
	for (uint64_t seq = 2; seq <= 4; seq++)
		expect_msg(sub, seq, seq, POOL_MAX);
	assert_int_equal(kite_recv(sub, &ev, 50), -ETIMEDOUT); /* not committed */
	fill(p, 5, POOL_MAX);
	assert_int_equal(kite_commit(pub, CH, POOL_MAX), 5);
	expect_msg(sub, 5, 5, POOL_MAX);
	kite_stats st;
	kite_get_stats(sub, &st);
	assert_int_equal(st.lost, 1);
	kite_close(pub);
	kite_close(sub);
}

/* An aborted pool claim spends its room (its limit was told), never a
 * seq; publishes and claims go on after it, round the pool many times. */
static void test_pool_abort_then_publish(void **state)
{
	(void)state;
	use_bus("claim_pool_abort");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	uint8_t *buf = malloc(POOL_MAX);
	assert_non_null(buf);
	uint64_t seq = 0;
	for (int round = 0; round < 20; round++) {
		void *p;
		assert_int_equal(kite_claim(pub, CH, POOL_MAX - round, &p), 0);
		fill(p, 999, POOL_MAX - round);
		assert_int_equal(kite_publish(pub, CH, "x", 1), -EBUSY);
		assert_int_equal(kite_abort(pub, CH), 0);
		assert_int_equal(kite_abort(pub, CH), KITE_ENOCLAIM);
		assert_int_equal(kite_commit(pub, CH, 0), KITE_ENOCLAIM);
		size_t len = POOL_MAX - 8 * (size_t)round;
		fill(buf, seq + 1, len);
		assert_int_equal(kite_publish(pub, CH, buf, len), (int64_t)++seq);
		expect_msg(sub, seq, seq, len);
		assert_int_equal(claim_fill_commit(pub, seq + 1, INLINE_MAX + 1 + round),
				 (int64_t)seq + 1);
		seq++;
		expect_msg(sub, seq, seq, INLINE_MAX + 1 + (size_t)round);
	}
	free(buf);
	expect_all_and_close(pub, sub, seq);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_abort_and_commit_rules(void **state)
{
	(void)state;
	use_bus("claim_rules");
	kite *sub = open_sub("claim.>", 0), *pub = open_pub();
	void *p;
	/* Abort: nothing delivered, no seq spent; only once. */
	assert_int_equal(kite_claim(pub, CH, 100, &p), 0);
	fill(p, 99, 100);
	assert_int_equal(kite_abort(pub, CH), 0);
	assert_int_equal(kite_abort(pub, CH), KITE_ENOCLAIM);
	assert_int_equal(kite_commit(pub, CH, 100), KITE_ENOCLAIM);
	expect_quiet(sub, 100);
	/* One claim per channel: a second claim and publishes on it are
	 * -EBUSY; another channel goes on. */
	assert_int_equal(kite_claim(pub, CH, 64, &p), 0);
	void *q = (void *)1;
	assert_int_equal(kite_claim(pub, CH, 8, &q), -EBUSY);
	assert_null(q);
	assert_int_equal(kite_publish(pub, CH, "x", 1), -EBUSY);
	struct kite_origin origin = {.system = "test", .subject = "s"};
	assert_int_equal(kite_publish_origin(pub, CH, "x", 1, &origin), -EBUSY);
	assert_int_equal(kite_publish(pub, OTHER, "o", 1), 1);
	void *o;
	assert_int_equal(kite_claim(pub, OTHER, 8, &o), 0); /* one per channel */
	fill(o, 7, 8);
	/* Longer than claimed: refused, the claim stays open. */
	assert_int_equal(kite_commit(pub, CH, 65), -EINVAL);
	fill(p, 1, 64);
	/* The timestamp is the commit's, not the claim's. */
	nap_us(30000);
	uint64_t before_commit = realtime_ns();
	assert_int_equal(kite_commit(pub, CH, 64), 1);
	assert_int_equal(kite_commit(pub, CH, 64), KITE_ENOCLAIM); /* twice */
	assert_int_equal(kite_commit(pub, OTHER, 8), 2);
	assert_int_equal(kite_publish(pub, CH, "y", 1), 2);
	/* Two rings: the order between channels is not given, within each
	 * it is. */
	kite_event ev;
	uint64_t next_ch = 1, next_other = 1;
	for (int i = 0; i < 4; i++) {
		const kite_msg *m = next_msg(sub, &ev);
		if (!strcmp(m->channel, OTHER)) {
			assert_int_equal(m->seq, next_other);
			if (next_other++ == 2)
				assert_true(filled(m->data, 7, 8));
			continue;
		}
		assert_string_equal(m->channel, CH);
		assert_int_equal(m->seq, next_ch);
		if (next_ch++ == 1) {
			assert_true(filled(m->data, 1, 64));
			assert_true(m->timestamp_ns >= before_commit);
		} else {
			assert_memory_equal(m->data, "y", 1);
		}
	}
	expect_quiet(sub, 100);
	/* A zero-length claim is a pointer to nothing: an empty message. */
	assert_int_equal(kite_claim(pub, CH, 0, &p), 0);
	assert_non_null(p);
	assert_int_equal(kite_commit(pub, CH, 0), 3);
	const kite_msg *m = next_msg(sub, &ev);
	assert_int_equal(m->seq, 3);
	assert_int_equal(m->len, 0);
	kite_close(pub);
	kite_close(sub);
}

/* The claim's unused room holds, where the next record goes once the
 * commit is shorter, a forged record header of the next seq: the commit
 * must clear that word, so the forgery is never delivered. */
static void test_commit_shorter_hides_forged_record(void **state)
{
	(void)state;
	use_bus("claim_forged");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	for (uint64_t seq = 1; seq <= 300; seq++) { /* ~3 laps */
		uint8_t *p;
		assert_int_equal(kite_claim(pub, CH, INLINE_MAX, (void **)&p), 0);
		fill(p, seq, 16);
		/* A record of 16 bytes takes 40: the next header starts 16
		 * bytes into this body. */
		uint8_t *next = p + 16;
		uint64_t fake_seq = seq + 1, ts = 1;
		uint32_t fake_len = 8;
		memset(next, 0, 24);
		memcpy(next, &fake_seq, 8);
		memcpy(next + 8, &fake_len, 4);
		memcpy(next + 16, &ts, 8);
		memcpy(next + 24, "FORGED!!", 8);
		assert_int_equal(kite_commit(pub, CH, 16), (int64_t)seq);
		expect_msg(sub, seq, seq, 16);
		/* Nothing but the real next one. */
		kite_event ev;
		assert_int_equal(kite_recv(sub, &ev, 0), -EAGAIN);
	}
	kite_close(pub);
	kite_close(sub);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	use_bus("claim_args");
	kite *pub = open_pub();
	void *p = (void *)1;
	assert_int_equal(kite_claim(NULL, CH, 8, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(kite_claim(pub, NULL, 8, &p), -EINVAL);
	assert_int_equal(kite_claim(pub, CH, 8, NULL), -EINVAL);
	assert_int_equal(kite_claim(pub, "bad..name", 8, &p), KITE_EBADNAME);
	assert_int_equal(kite_claim(pub, "a.*", 8, &p), KITE_EBADNAME);
	assert_null(p);
	assert_int_equal(kite_commit(NULL, CH, 0), -EINVAL);
	assert_int_equal(kite_commit(pub, NULL, 0), -EINVAL);
	assert_int_equal(kite_commit(pub, CH, 0), KITE_ENOCLAIM);
	assert_int_equal(kite_commit(pub, "bad..name", 0), KITE_ENOCLAIM);
	assert_int_equal(kite_abort(NULL, CH), -EINVAL);
	assert_int_equal(kite_abort(pub, NULL), -EINVAL);
	assert_int_equal(kite_abort(pub, CH), KITE_ENOCLAIM);
	/* The codes explain themselves. */
	assert_non_null(strstr(kite_strerror(KITE_ENOCLAIM), "claim"));
	assert_non_null(strstr(kite_strerror(-EBUSY), "claim"));
	assert_non_null(strstr(kite_strerror(-EMSGSIZE), "claim"));
	assert_non_null(strstr(kite_strerror(-EMSGSIZE), "pool")); /* the limit */
	kite_close(pub);
}

/* Thread A claims on CH, fills slowly (outside the lock), commits; thread
 * B publishes on CH (-EBUSY while A's claim is open) and on OTHER (always
 * goes). Each records, per seq it was given, the id it wrote. */
#define THREAD_MSGS 300
struct threads {
	kite *pub;
	pthread_mutex_t lock;
	uint64_t id_of_seq[2 * THREAD_MSGS + 1], other_id_of_seq[THREAD_MSGS + 1];
	size_t len_of_seq[2 * THREAD_MSGS + 1];
	_Atomic int claimer_done;
	uint64_t busy;
};

static void *claimer(void *arg)
{
	struct threads *t = arg;
	for (uint64_t i = 1; i <= THREAD_MSGS; i++) {
		uint64_t id = 1000000 + i;
		size_t len = (size_t)(i * 37 % (INLINE_MAX + 1));
		void *p;
		pthread_mutex_lock(&t->lock);
		int rc = kite_claim(t->pub, CH, len, &p);
		pthread_mutex_unlock(&t->lock);
		if (rc) {
			fprintf(stderr, "# claim: %d\n", rc);
			abort();
		}
		fill(p, id, len);
		nap_us(200); /* the claim stays open a while: B meets it */
		pthread_mutex_lock(&t->lock);
		int64_t seq = kite_commit(t->pub, CH, len);
		pthread_mutex_unlock(&t->lock);
		if (seq < 1 || seq > 2 * THREAD_MSGS) {
			fprintf(stderr, "# commit: %lld\n", (long long)seq);
			abort();
		}
		t->id_of_seq[seq] = id;
		t->len_of_seq[seq] = len;
	}
	t->claimer_done = 1;
	return NULL;
}

static void test_claim_and_publish_from_two_threads(void **state)
{
	(void)state;
	use_bus("claim_threads");
	kite *sub = open_sub("claim.>", 0);
	struct threads *t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->pub = open_pub();
	/* The subscriber reads once both are done: a ring that holds it all. */
	assert_int_equal(kite_set_channel_ring(t->pub, "claim.>", 256 << 10), 0);
	pthread_mutex_init(&t->lock, NULL);
	pthread_t a;
	assert_int_equal(pthread_create(&a, NULL, claimer, t), 0);
	uint64_t published = 0, other = 0;
	uint8_t buf[INLINE_MAX];
	/* B until A is done, and until B has had THREAD_MSGS on CH. */
	while (!t->claimer_done || published < THREAD_MSGS) {
		uint64_t id = 2000000 + published + other;
		size_t len = (size_t)(id % 97);
		fill(buf, id, len);
		int64_t seq = -1;
		if (published < THREAD_MSGS) {
			pthread_mutex_lock(&t->lock);
			seq = kite_publish(t->pub, CH, buf, len);
			pthread_mutex_unlock(&t->lock);
			if (seq == -EBUSY) {
				t->busy++;
			} else {
				assert_true(seq >= 1 && seq <= 2 * THREAD_MSGS);
				t->id_of_seq[seq] = id;
				t->len_of_seq[seq] = len;
				published++;
			}
		}
		if (other < THREAD_MSGS) {
			fill(buf, id, 8);
			pthread_mutex_lock(&t->lock);
			seq = kite_publish(t->pub, OTHER, buf, 8);
			pthread_mutex_unlock(&t->lock);
			assert_int_equal(seq, (int64_t)other + 1);
			t->other_id_of_seq[seq] = id;
			other++;
		}
		nap_us(50);
	}
	assert_int_equal(pthread_join(a, NULL), 0);
	/* The claim was open for ~200 us at a time, 300 times: B met it. */
	assert_true(t->busy > 0);
	uint64_t next = 1, next_other = 1;
	kite_event ev;
	while (next <= 2 * THREAD_MSGS || next_other <= THREAD_MSGS) {
		const kite_msg *m = next_msg(sub, &ev);
		if (!strcmp(m->channel, OTHER)) {
			assert_int_equal(m->seq, next_other);
			assert_int_equal(m->len, 8);
			assert_true(filled(m->data, t->other_id_of_seq[m->seq], 8));
			next_other++;
			continue;
		}
		assert_int_equal(m->seq, next);
		assert_int_equal(m->len, t->len_of_seq[m->seq]);
		assert_true(filled(m->data, t->id_of_seq[m->seq], m->len));
		next++;
	}
	expect_quiet(sub, 100);
	kite_close(t->pub);
	pthread_mutex_destroy(&t->lock);
	free(t);
	kite_close(sub);
}

static kite *fork_pub;

static int forked_child(void *arg)
{
	(void)arg;
	void *p = (void *)1;
	CHILD_CHECK(kite_claim(fork_pub, CH, 8, &p) == -ECHILD, "claim");
	CHILD_CHECK(p == NULL, "pointer");
	CHILD_CHECK(kite_commit(fork_pub, CH, 8) == -ECHILD, "commit");
	CHILD_CHECK(kite_abort(fork_pub, CH) == -ECHILD, "abort");
	return 0;
}

static void test_fork_child_gets_echild(void **state)
{
	(void)state;
	use_bus("claim_fork");
	kite *sub = open_sub(CH, 0);
	fork_pub = open_pub();
	void *p;
	assert_int_equal(kite_claim(fork_pub, CH, 16, &p), 0);
	fill(p, 5, 16);
	pid_t pid = child_start(forked_child, NULL);
	assert_true(pid > 0);
	assert_int_equal(child_wait(pid, 10000), 0);
	/* The parent's claim is untouched by the child's attempts. */
	assert_int_equal(kite_commit(fork_pub, CH, 16), 1);
	expect_msg(sub, 1, 5, 16);
	kite_close(fork_pub);
	kite_close(sub);
}

static void test_idle_release_waits_for_claim(void **state)
{
	(void)state;
	use_bus("claim_idle");
	kite *sub = open_sub(CH, 0);
	kite *pub = open_pub_opts((kite_options){.idle_ms = 20});
	assert_int_equal(claim_fill_commit(pub, 1, 32), 1);
	expect_msg(sub, 1, 1, 32);
	void *p;
	assert_int_equal(kite_claim(pub, CH, INLINE_MAX, &p), 0);
	/* Many idle periods with the claim open: the ring must stay (a
	 * released ring is unmapped, and this write would fault). */
	nap_us(300000);
	fill(p, 2, INLINE_MAX);
	assert_int_equal(kite_commit(pub, CH, INLINE_MAX), 2);
	expect_msg(sub, 2, 2, INLINE_MAX);
	/* The same for a claim in the ring's pool. */
	assert_int_equal(kite_claim(pub, CH, POOL_MAX, &p), 0);
	nap_us(300000);
	fill(p, 3, POOL_MAX);
	assert_int_equal(kite_commit(pub, CH, POOL_MAX), 3);
	expect_msg(sub, 3, 3, POOL_MAX);
	kite_close(pub);
	kite_close(sub);
}

static void test_close_with_claim_open(void **state)
{
	(void)state;
	use_bus("claim_close");
	kite *sub = open_sub(CH, 0), *pub = open_pub();
	assert_int_equal(claim_fill_commit(pub, 1, 40), 1);
	void *p;
	assert_int_equal(kite_claim(pub, CH, 40, &p), 0);
	fill(p, 2, 40);
	kite_close(pub);
	expect_msg(sub, 1, 1, 40);
	kite_event ev;
	do
		assert_int_equal(kite_recv(sub, &ev, 3000), 0);
	while (ev.type == KITE_PUBLISHER_NEW);
	assert_int_equal(ev.type, KITE_PUBLISHER_GONE);
	kite_stats st;
	kite_get_stats(sub, &st);
	assert_int_equal(st.lost, 0);
	kite_close(sub);
}

/* The publisher of the kill tests: commits `committed` messages of
 * kill_len bytes (ids = seqs), says so ('n') and waits for a go, claims one more,
 * writes half of it, says so ('c') and waits to be killed. */
#define KILL_LEN 200 /* records of 224 bytes: the 19th does not fit the lap */
static int kill_fds[2], go_fds[2];
static uint64_t kill_committed;
static size_t kill_len;

static int doomed_publisher(void *arg)
{
	(void)arg;
	kite_options o = {.bus = bus, .handshake_ms = 3000, .ring_slots = SLOTS,
			  .slot_size = SLOT_SIZE};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	for (uint64_t seq = 1; seq <= kill_committed; seq++) {
		void *p;
		CHILD_CHECK(kite_claim(k, CH, kill_len, &p) == 0, "claim");
		fill(p, seq, kill_len);
		CHILD_CHECK(kite_commit(k, CH, kill_len) == (int64_t)seq, "commit");
	}
	pipe_send(kill_fds[1], 'n');
	CHILD_CHECK(pipe_wait(go_fds[0], 20000) == 'g', "go");
	void *p;
	CHILD_CHECK(kite_claim(k, CH, kill_len, &p) == 0, "last claim");
	fill(p, kill_committed + 1, kill_len / 2); /* half a message */
	pipe_send(kill_fds[1], 'c');
	for (;;)
		pause();
}

/* Read what is left: the committed messages from next to last, then GONE;
 * no loss, no other message. */
static void drain_until_gone(kite *sub, uint64_t next, uint64_t last)
{
	kite_event ev;
	for (;;) {
		assert_int_equal(kite_recv(sub, &ev, 5000), 0);
		if (ev.type == KITE_PUBLISHER_NEW)
			continue;
		if (ev.type == KITE_PUBLISHER_GONE)
			break;
		assert_int_equal(ev.type, KITE_MESSAGE);
		assert_int_equal(ev.msg.seq, next);
		assert_int_equal(ev.msg.len, kill_len);
		assert_true(filled(ev.msg.data, next, kill_len));
		next++;
	}
	assert_int_equal(next, last + 1);
	expect_quiet(sub, 100);
	kite_stats st;
	kite_get_stats(sub, &st);
	assert_int_equal(st.lost, 0);
}

/* replay_from: the oldest message the ring still holds once the claim
 * took its room (docs/channels.md, "Replay": records starting at or after
 * limit - capacity). */
static void killed_between_claim_and_commit(const char *name, uint64_t committed,
					    uint64_t replay_from, size_t len)
{
	use_bus(name);
	kill_len = len;
	kite *live = open_sub(CH, 0);
	pipe_make(kill_fds);
	pipe_make(go_fds);
	kill_committed = committed;
	pid_t pid = child_start(doomed_publisher, NULL);
	assert_true(pid > 0);
	assert_int_equal(pipe_wait(kill_fds[0], 20000), 'n');
	/* The live subscriber reads all that was committed before the claim
	 * (the claim may take the room of records not read yet: radio). */
	for (uint64_t seq = 1; seq <= committed; seq++)
		expect_msg(live, seq, seq, len);
	pipe_send(go_fds[1], 'g');
	assert_int_equal(pipe_wait(kill_fds[0], 20000), 'c');
	/* Late ones join with the claim open: one live only (nothing: its
	 * stream starts at the claimed seq), one asking for all still held. */
	kite *late = open_sub(CH, 0), *replay = open_sub(CH, 1000);
	kill(pid, SIGKILL);
	assert_int_equal(child_wait(pid, 10000), 128 + SIGKILL);
	drain_until_gone(live, committed + 1, committed);
	drain_until_gone(late, committed + 1, committed);
	drain_until_gone(replay, replay_from, committed);
	kite_close(replay);
	kite_close(late);
	kite_close(live);
	pipe_close(go_fds);
	pipe_close(kill_fds);
}

static void test_killed_between_claim_and_commit(void **state)
{
	(void)state;
	killed_between_claim_and_commit("claim_kill", 5, 1, KILL_LEN);
}

/* The same with the claim in the pool (1,000 bytes: five committed and
 * the claim's room fit in it, so replay has them all). */
static void test_killed_between_pool_claim_and_commit(void **state)
{
	(void)state;
	killed_between_claim_and_commit("claim_kill_pool", 5, 1, 1000);
}

/* 18 records of 224 bytes leave 64 at the lap's end: the claim pads the
 * lap first, so a committed pad carries the seq of a record never made,
 * and the claim's room (up to the segment boundary at 512) takes records
 * 1 to 3 (starting at 0, 224, 448) from replay. */
static void test_killed_after_claim_padded_the_lap(void **state)
{
	(void)state;
	killed_between_claim_and_commit("claim_kill_pad", 18, 4, KILL_LEN);
}

/* A subscriber (reliable unless radio) that waits for `go` before
 * reading, counting; it naps 2 ms every nap_every messages (0: never).
 * Messages are KILL_LEN bytes, or with pool set, pool_len(seq). */
struct reader_args {
	uint64_t total;
	unsigned nap_every;
	int radio, pool;
};

/* Pool sizes, a different one for each seq. */
static size_t pool_len(uint64_t seq)
{
	return INLINE_MAX + 1 + (size_t)(seq * 997 % (POOL_MAX - INLINE_MAX));
}

static size_t reader_len(const struct reader_args *a, uint64_t seq)
{
	return a->pool ? pool_len(seq) : KILL_LEN;
}

static int counting_reader(void *arg)
{
	const struct reader_args *a = arg;
	kite_options o = {.bus = bus, .handshake_ms = 3000};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	struct kite_sub_options so = {.flags = a->radio ? 0 : KITE_SUB_RELIABLE};
	CHILD_CHECK(kite_subscribe_opts(k, CH, &so) == 0, "subscribe");
	sh->ready = 1;
	while (!sh->go)
		nap_us(1000);
	uint64_t next = 1, deadline = mono_ms() + 60000;
	kite_event ev;
	while (next <= a->total && mono_ms() < deadline) {
		int rc = kite_recv(k, &ev, 200);
		if (rc == -ETIMEDOUT || (rc == 0 && ev.type == KITE_PUBLISHER_NEW))
			continue;
		CHILD_CHECK(rc == 0, "recv %d", rc);
		if (ev.type == KITE_LOSS) {
			sh->lost += ev.lost;
			next += ev.lost;
			continue;
		}
		CHILD_CHECK(ev.type == KITE_MESSAGE, "event %d", ev.type);
		/* Every byte says which message it belongs to: a torn copy
		 * (parts of two) fails. */
		size_t len = reader_len(a, next);
		if (ev.msg.seq != next || ev.msg.len != len || !filled(ev.msg.data, next, len))
			sh->bad++;
		sh->received++;
		next = ev.msg.seq + 1;
		if (a->nap_every && next % a->nap_every == 0)
			nap_us(2000);
	}
	sh->done = 1;
	kite_close(k);
	return 0;
}

static pid_t start_reader(struct reader_args *a)
{
	pid_t pid = child_start_ready(counting_reader, a, &sh->ready, 30000);
	assert_true(pid > 0);
	return pid;
}

static void expect_reader_got_all(pid_t pid, uint64_t total)
{
	assert_int_equal(child_wait(pid, 60000), 0);
	assert_true(sh->done);
	assert_int_equal(sh->received, total);
	assert_int_equal(sh->lost, 0);
	assert_int_equal(sh->bad, 0);
}

/* reliable_wait_ms 0: a reader that does not read makes kite_claim
 * return -EAGAIN, with nothing claimed, within a lap. */
static void test_reliable_subscriber_claim_eagain(void **state)
{
	(void)state;
	use_bus("claim_reliable");
	static struct reader_args args = {400, 0, 0, 0};
	pid_t pid = start_reader(&args);
	kite *pub = open_pub_opts((kite_options){.reliable_deadline_ms = 60000});
	uint64_t seq = 1, eagain = 0, first_eagain = 0, give_up = mono_ms() + 30000;
	void *p;
	while (seq <= args.total) {
		int rc = kite_claim(pub, CH, KILL_LEN, &p);
		if (rc == -EAGAIN) {
			/* No claim was made. */
			assert_null(p);
			assert_int_equal(kite_commit(pub, CH, 0), KITE_ENOCLAIM);
			if (!eagain++)
				first_eagain = seq;
			sh->go = 1;
			assert_true(mono_ms() < give_up);
			nap_us(100);
			continue;
		}
		assert_int_equal(rc, 0);
		fill(p, seq, KILL_LEN);
		assert_int_equal(kite_commit(pub, CH, KILL_LEN), (int64_t)seq);
		seq++;
	}
	/* The reader did not read before the first -EAGAIN: at most a lap of
	 * 224-byte records (18 in 4 KiB) went in before it. */
	assert_true(eagain > 0);
	assert_true(first_eagain > 1 && first_eagain <= 20);
	expect_reader_got_all(pid, args.total);
	kite_close(pub);
}

/* reliable_wait_ms forever: a slow reader makes kite_claim wait, never
 * fail, and it loses nothing. */
static void test_reliable_subscriber_claim_waits(void **state)
{
	(void)state;
	use_bus("claim_reliable_wait");
	static struct reader_args args = {400, 10, 0, 0};
	sh->go = 1;
	pid_t pid = start_reader(&args);
	kite *pub = open_pub_opts((kite_options){.reliable_wait_ms = UINT32_MAX,
						 .reliable_deadline_ms = 60000});
	uint64_t longest_ms = 0;
	for (uint64_t seq = 1; seq <= args.total; seq++) {
		void *p;
		uint64_t t0 = mono_ms();
		assert_int_equal(kite_claim(pub, CH, KILL_LEN, &p), 0);
		if (mono_ms() - t0 > longest_ms)
			longest_ms = mono_ms() - t0;
		fill(p, seq, KILL_LEN);
		assert_int_equal(kite_commit(pub, CH, KILL_LEN), (int64_t)seq);
	}
	/* 400 messages at 10 per 2 ms nap: the reader needs >= 80 ms, the
	 * publisher alone far less; some claim waited for it (a lap ahead
	 * is ~18 messages, ~3 naps). */
	assert_true(longest_ms >= 1);
	expect_reader_got_all(pid, args.total);
	kite_close(pub);
}

/* A slow reliable subscriber and claims in the pool (~7 payloads a lap):
 * kite_claim waits for it at the pool floor, and it loses nothing. */
static void test_reliable_subscriber_pool_claims(void **state)
{
	(void)state;
	use_bus("claim_reliable_pool");
	static struct reader_args args = {400, 10, 0, 1};
	sh->go = 1;
	pid_t pid = start_reader(&args);
	kite *pub = open_pub_opts((kite_options){.reliable_wait_ms = UINT32_MAX,
						 .reliable_deadline_ms = 60000});
	for (uint64_t seq = 1; seq <= args.total; seq++) {
		void *p;
		size_t len = pool_len(seq);
		assert_int_equal(kite_claim(pub, CH, len, &p), 0);
		fill(p, seq, len);
		assert_int_equal(kite_commit(pub, CH, len), (int64_t)seq);
	}
	expect_reader_got_all(pid, args.total);
	kite_close(pub);
}

/* A slow radio subscriber, claims in the pool written while it copies:
 * it is overrun, told exactly how many it lost, and never handed a
 * message with bytes of another. */
static void test_radio_subscriber_overrun_by_pool_claims(void **state)
{
	(void)state;
	use_bus("claim_radio_pool");
	static struct reader_args args = {3000, 4, 1, 1};
	sh->go = 1;
	pid_t pid = start_reader(&args);
	kite *pub = open_pub();
	for (uint64_t seq = 1; seq <= args.total; seq++) {
		uint8_t *p;
		size_t len = pool_len(seq);
		assert_int_equal(kite_claim(pub, CH, len, (void **)&p), 0);
		/* In two halves, a pause between: readers meet a claim half
		 * written. */
		fill(p, seq, len / 2);
		if (seq % 16 == 0)
			nap_us(100);
		for (size_t i = len / 2; i < len; i++)
			p[i] = fill_byte(seq, i);
		assert_int_equal(kite_commit(pub, CH, len), (int64_t)seq);
	}
	assert_int_equal(child_wait(pid, 60000), 0);
	assert_true(sh->done);
	assert_int_equal(sh->bad, 0);
	assert_true(sh->lost > 0);
	assert_true(sh->received > 0);
	assert_int_equal(sh->received + sh->lost, args.total);
	kite_close(pub);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_every_size_round_trip),
		T(test_random_claims_across_laps),
		T(test_pool_claim_sizes),
		T(test_no_pool_for_the_largest_rings),
		T(test_random_pool_claims_across_wraps),
		T(test_pool_claim_overruns_at_claim_time),
		T(test_pool_abort_then_publish),
		T(test_abort_and_commit_rules),
		T(test_commit_shorter_hides_forged_record),
		T(test_bad_arguments),
		T(test_claim_and_publish_from_two_threads),
		T(test_fork_child_gets_echild),
		T(test_idle_release_waits_for_claim),
		T(test_close_with_claim_open),
		T(test_killed_between_claim_and_commit),
		T(test_killed_after_claim_padded_the_lap),
		T(test_killed_between_pool_claim_and_commit),
		T(test_reliable_subscriber_claim_eagain),
		T(test_reliable_subscriber_claim_waits),
		T(test_reliable_subscriber_pool_claims),
		T(test_radio_subscriber_overrun_by_pool_claims),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
