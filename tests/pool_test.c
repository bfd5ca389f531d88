/* Large messages without a memfd each: the ring's pool (ring.h).
 *
 * In one process, over a malloc'd image (ASan sees any read past it, and
 * the copy buffer is exactly ki_ring_read_max): pool payloads at every
 * size near the edges (just over the inline maximum, up to the pool's
 * share, a payload that would cross the pool's end moved to the next lap)
 * read back whole; a reader lapped in the pool loses exactly the payloads
 * written over and no other; a writer thread racing a reader never has a
 * torn payload delivered and every skipped seq is reported; a writer that
 * waits for ki_ring_pool_floor never overruns a slow reader (what
 * reliable subscriptions rely on); pool references, limits and flags that
 * lie cost their own message only.
 *
 * Through kite itself: messages just under, at and over the inline rule
 * and the pool's share arrive whole, the memfd path only beyond the pool
 * (a "kite-large" mapping while the event is held); a reliable subscriber
 * that naps gets 1 MiB messages through a pool that wraps many times, none
 * lost; a radio subscriber stopped while the pool wraps 8 times loses
 * exactly the messages written over; a publisher SIGKILLed while it writes
 * 1 MiB messages leaves its
 * subscriber whole messages only, every gap reported. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "kite.h"
#include "ring.h"

/* 16 x 64: 1 KiB of records, inline up to 96 bytes, a 4 KiB pool taking
 * payloads of up to 1 KiB. */
#define SLOTS 16
#define SLOT_SIZE 64

struct pool_fixture {
	void *base;
	size_t bytes;
	uint32_t inline_max;
	uint64_t pool_max, read_max;
	struct ring_writer w;
	struct ring_reader r;
	uint8_t *buf; /* exactly read_max bytes */
};

static void pool_setup(struct pool_fixture *f, uint32_t slots, uint32_t slot_size)
{
	assert_int_equal(ki_ring_geometry_valid(slots, slot_size, &f->bytes), 0);
	f->base = aligned_alloc(64, f->bytes);
	assert_non_null(f->base);
	memset(f->base, 0, f->bytes);
	ki_ring_writer_init(&f->w, f->base, slots, slot_size, 42, "pool.test", 0);
	ki_ring_reader_init(&f->r, f->base, slots, slot_size, 1, 0);
	f->inline_max = ki_ring_inline_max(slots, slot_size);
	f->pool_max = ki_ring_pool_msg_max(slots, slot_size);
	f->read_max = ki_ring_read_max(slots, slot_size);
	f->buf = malloc(f->read_max);
	assert_non_null(f->buf);
}

static void pool_teardown(struct pool_fixture *f)
{
	free(f->base);
	free(f->buf);
}

/* Every 8-byte word names its message and its place: a payload torn
 * between two messages, or shifted, cannot pass. */
static void pattern(uint8_t *p, uint64_t seq, uint64_t len)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t word = seq << 24 ^ i;
		memcpy(p + i, &word, len - i < 8 ? len - i : 8);
	}
}

static int pattern_ok(const uint8_t *p, uint64_t seq, uint64_t len)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t word = seq << 24 ^ i;
		if (memcmp(p + i, &word, len - i < 8 ? len - i : 8))
			return 0;
	}
	return 1;
}

/* One pool message of len bytes; its seq. The payload must never cross
 * the pool's end. */
static uint64_t write_pool(struct ring_writer *w, uint64_t len)
{
	uint64_t at, seq = w->head + 1;
	uint8_t *dst = ki_ring_pool_claim(w, len, &at);
	assert_true(at % 8 == 0 && at % w->pool_bytes + len <= w->pool_bytes);
	assert_ptr_equal(dst, w->pool + at % w->pool_bytes);
	pattern(dst, seq, len);
	assert_int_equal(ki_ring_pool_commit(w, at, len, 0, seq), seq);
	return seq;
}

static uint64_t write_inline(struct ring_writer *w, uint32_t len)
{
	uint8_t p[4096];
	uint64_t seq = w->head + 1;
	pattern(p, seq, len);
	assert_int_equal(ki_ring_write(w, NULL, 0, p, len, 0, seq), seq);
	return seq;
}

static void expect_message(struct pool_fixture *f, uint64_t seq, uint64_t len, int pool)
{
	struct ring_record rec;
	enum ring_result r = ki_ring_read(&f->r, f->buf, &rec);
	if (r != RING_MESSAGE)
		fail_msg("seq %llu len %llu: read gave %d (lost %llu)", (unsigned long long)seq,
			 (unsigned long long)len, r, (unsigned long long)rec.lost);
	assert_int_equal(rec.seq, seq);
	assert_int_equal(rec.flags, pool ? REC_POOL : 0);
	assert_int_equal(rec.meta_len, 0);
	assert_int_equal(rec.len, len);
	assert_int_equal(rec.timestamp_ns, seq);
	if (!pattern_ok(f->buf, seq, len))
		fail_msg("seq %llu len %llu: payload differs", (unsigned long long)seq,
			 (unsigned long long)len);
}

static void expect_lost(struct pool_fixture *f, uint64_t lost)
{
	struct ring_record rec;
	assert_int_equal(ki_ring_read(&f->r, f->buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, lost);
}

static void expect_empty(struct pool_fixture *f)
{
	struct ring_record rec;
	assert_int_equal(ki_ring_pending(&f->r), 0);
	assert_int_equal(ki_ring_read(&f->r, f->buf, &rec), RING_EMPTY);
}

/* The rule, stated in ring.h and docs/channels.md, for the geometries
 * users get: the default (1024 x 2048) and the small one used here. */
static void test_rule(void **state)
{
	(void)state;
	assert_int_equal(ki_ring_inline_max(1024, 2048), (2u << 20) / 8 - 32);
	assert_int_equal(ki_ring_pool_bytes(1024, 2048), 8u << 20);
	assert_int_equal(ki_ring_pool_msg_max(1024, 2048), 2u << 20);
	assert_int_equal(ki_ring_read_max(1024, 2048), 2u << 20);
	assert_int_equal(ki_ring_inline_max(SLOTS, SLOT_SIZE), 96);
	assert_int_equal(ki_ring_pool_bytes(SLOTS, SLOT_SIZE), 4096);
	assert_int_equal(ki_ring_pool_msg_max(SLOTS, SLOT_SIZE), 1024);
	/* Two slots: a slot less 32 stays the inline floor. */
	assert_int_equal(ki_ring_inline_max(2, 2048), 2048 - 32);
	/* 256 MiB of records: no pool. */
	assert_int_equal(ki_ring_pool_bytes(1u << 17, 2048), 0);
	assert_int_equal(ki_ring_read_max(1u << 17, 2048), (256u << 20) / 8 - 32);
}

/* Every pool size from just over the inline maximum to the pool's share,
 * read one by one, inline records between, the pool wrapping many times;
 * then in batches that fill the pool to its end without lapping it. */
static void test_every_size_and_wrap(void **state)
{
	(void)state;
	struct pool_fixture f;
	pool_setup(&f, SLOTS, SLOT_SIZE);
	for (uint64_t len = f.inline_max + 1; len <= f.pool_max; len++) {
		uint64_t seq = write_pool(&f.w, len);
		expect_message(&f, seq, len, 1);
		if (len % 5 == 0) {
			seq = write_inline(&f.w, (uint32_t)(len % (f.inline_max + 1)));
			expect_message(&f, seq, len % (f.inline_max + 1), 0);
		}
		expect_empty(&f);
	}
	assert_true(f.w.pool_pos > 100 * f.w.pool_bytes);
	/* Batches: as many as fit in a lap from where the pool stands. */
	static const uint64_t sizes[] = {97, 104, 1023, 1024, 1017, 512, 999, 1000, 1001};
	for (int round = 0; round < 200; round++) {
		uint64_t first = f.w.head + 1, from = f.w.pool_pos, used = 0, lens[8];
		int n = 0;
		for (; n < 8; n++) {
			uint64_t len = sizes[(round + n * 3) % 9];
			/* Room in the lap ahead, counting the skip to the lap's
			 * start where a payload does not fit before its end. */
			uint64_t off = (from + used) % f.w.pool_bytes;
			uint64_t need = (len + 7) / 8 * 8 +
					(off + len > f.w.pool_bytes ? f.w.pool_bytes - off : 0);
			if (used + need > f.w.pool_bytes)
				break;
			used += need;
			lens[n] = len;
			write_pool(&f.w, len);
		}
		assert_true(n >= 3);
		for (int i = 0; i < n; i++)
			expect_message(&f, first + (uint64_t)i, lens[i], 1);
		expect_empty(&f);
	}
	pool_teardown(&f);
}

/* Six payloads of the pool's share into a pool of four: the first two are
 * written over before the reader comes, and only they are lost. */
static void test_lapped_loses_exactly(void **state)
{
	(void)state;
	struct pool_fixture f;
	pool_setup(&f, SLOTS, SLOT_SIZE);
	for (int i = 0; i < 6; i++)
		write_pool(&f.w, f.pool_max);
	expect_lost(&f, 1);
	expect_lost(&f, 1);
	for (uint64_t seq = 3; seq <= 6; seq++)
		expect_message(&f, seq, f.pool_max, 1);
	expect_empty(&f);
	/* Uneven sizes: 600 bytes each, the fifth skips to the next lap. */
	uint64_t first = f.w.head + 1;
	for (int i = 0; i < 12; i++)
		write_pool(&f.w, 600);
	/* The reader counts on its own what the last writes reach. */
	uint64_t delivered = 0, lost = 0;
	struct ring_record rec;
	for (enum ring_result r; (r = ki_ring_read(&f.r, f.buf, &rec)) != RING_EMPTY;) {
		if (r == RING_LOST) {
			lost += rec.lost;
			continue;
		}
		assert_true(pattern_ok(f.buf, rec.seq, 600));
		delivered++;
	}
	/* Six fit in a lap (the seventh would cross its end): the last six. */
	assert_int_equal(delivered, 6);
	assert_int_equal(lost, 6);
	assert_int_equal(f.r.next, first + 12);
	pool_teardown(&f);
}

/* A writer thread that laps the pool while the reader copies. */
#define RACE_MESSAGES 40000

struct race {
	struct pool_fixture f;
	_Atomic int done;
	_Atomic uint64_t reader_pos; /* reliable mode: the reader's position */
	int reliable;
};

static uint64_t race_len(const struct pool_fixture *f, uint64_t seq)
{
	/* Mostly pool payloads of every size, now and then an inline one. */
	if (seq % 7 == 0)
		return seq % (f->inline_max + 1);
	return f->inline_max + 1 + (seq * 2654435761u) % (f->pool_max - f->inline_max);
}

static void *race_writer(void *arg)
{
	struct race *t = arg;
	struct ring_writer *w = &t->f.w;
	for (uint64_t seq = 1; seq <= RACE_MESSAGES; seq++) {
		uint64_t len = race_len(&t->f, seq);
		int pool = len > t->f.inline_max;
		if (t->reliable) {
			/* What kite_publish asks of a reliable subscriber. */
			uint64_t need = ki_ring_reader_floor(
				w, pool ? sizeof(struct ring_pool_ref) : len);
			uint64_t pool_need = pool ? ki_ring_pool_floor(w, len) : 0;
			if (pool_need > need)
				need = pool_need;
			while (atomic_load(&t->reader_pos) < need)
				;
		}
		if (pool)
			write_pool(w, len);
		else
			write_inline(w, (uint32_t)len);
		for (volatile int i = 0; i < (int)(seq % 64) * 96; i++)
			;
	}
	atomic_store(&t->done, 1);
	return NULL;
}

static void race_round(int reliable, uint64_t *lost_out)
{
	struct race *t = calloc(1, sizeof *t);
	assert_non_null(t);
	t->reliable = reliable;
	pool_setup(&t->f, SLOTS, SLOT_SIZE);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, race_writer, t), 0);
	uint64_t received = 0, lost = 0, expect = 1, torn = 0;
	struct ring_record rec;
	for (unsigned n = 0;; n++) {
		int finished = atomic_load(&t->done);
		enum ring_result r = ki_ring_read(&t->f.r, t->f.buf, &rec);
		atomic_store(&t->reader_pos, t->f.r.pos);
		if (r == RING_EMPTY) {
			if (finished && !ki_ring_pending(&t->f.r))
				break;
			continue;
		}
		if (r == RING_LOST) {
			lost += rec.lost;
			expect += rec.lost;
			continue;
		}
		uint64_t len = race_len(&t->f, rec.seq);
		if (rec.seq != expect || rec.len != len || !pattern_ok(t->f.buf, rec.seq, len))
			torn++;
		expect = rec.seq + 1;
		received++;
		if (reliable && n % 64 == 0) /* a slow reader now and then */
			usleep(50);
	}
	pthread_join(th, NULL);
	print_message("# %s: %d written: %llu delivered, %llu reported lost, %llu torn\n",
		      reliable ? "reliable" : "radio", RACE_MESSAGES,
		      (unsigned long long)received, (unsigned long long)lost,
		      (unsigned long long)torn);
	assert_int_equal(torn, 0);
	assert_int_equal(received + lost, RACE_MESSAGES);
	*lost_out = lost;
	pool_teardown(&t->f);
	free(t);
}

static void test_race_never_torn(void **state)
{
	(void)state;
	uint64_t lost, total = 0;
	for (int round = 0; round < 4; round++) {
		race_round(0, &lost);
		total += lost;
	}
	print_message("# radio: %llu lost in all\n", (unsigned long long)total);
}

static void test_pool_floor_keeps_slow_reader_whole(void **state)
{
	(void)state;
	uint64_t lost;
	race_round(1, &lost);
	assert_int_equal(lost, 0);
}

/* Pool references and limits that lie: each costs its own message, the
 * next honest one arrives whole. */
typedef void (*pool_lie)(struct pool_fixture *f, struct record_header *r,
			 struct ring_pool_ref *ref);

static void lie_len_over_share(struct pool_fixture *f, struct record_header *r,
			       struct ring_pool_ref *ref)
{
	(void)r;
	ref->len = f->pool_max + 1;
}
static void lie_len_huge(struct pool_fixture *f, struct record_header *r,
			 struct ring_pool_ref *ref)
{
	(void)f, (void)r;
	ref->len = UINT64_MAX - 3;
}
static void lie_pos_unaligned(struct pool_fixture *f, struct record_header *r,
			      struct ring_pool_ref *ref)
{
	(void)f, (void)r;
	ref->pos += 4;
}
static void lie_pos_crosses_end(struct pool_fixture *f, struct record_header *r,
				struct ring_pool_ref *ref)
{
	(void)r;
	ref->pos = f->w.pool_bytes - 8;
	ref->len = 16;
}
static void lie_pos_huge(struct pool_fixture *f, struct record_header *r,
			 struct ring_pool_ref *ref)
{
	(void)f, (void)r;
	ref->pos = UINT64_MAX - 7;
}
static void lie_pos_future(struct pool_fixture *f, struct record_header *r,
			   struct ring_pool_ref *ref)
{
	(void)r;
	ref->pos += 8 * f->w.pool_bytes; /* past the limit: never written */
}
static void lie_limit_low(struct pool_fixture *f, struct record_header *r,
			  struct ring_pool_ref *ref)
{
	(void)r, (void)ref;
	atomic_store(&((struct ring_header *)f->base)->pool_limit, 0);
}
static void lie_limit_high(struct pool_fixture *f, struct record_header *r,
			   struct ring_pool_ref *ref)
{
	(void)r, (void)ref;
	atomic_store(&((struct ring_header *)f->base)->pool_limit, UINT64_MAX);
}
static void test_lying_pool_references(void **state)
{
	(void)state;
	static const pool_lie lies[] = {lie_len_over_share, lie_len_huge, lie_pos_unaligned,
					lie_pos_crosses_end, lie_pos_huge, lie_pos_future,
					lie_limit_low, lie_limit_high};
	for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
		struct pool_fixture f;
		pool_setup(&f, SLOTS, SLOT_SIZE);
		write_inline(&f.w, 5);
		uint64_t at = f.w.off;
		write_pool(&f.w, 300);
		struct record_header *r =
			(struct record_header *)((uint8_t *)f.base + RING_HEADER_SIZE + at);
		struct ring_pool_ref *ref =
			(struct ring_pool_ref *)((uint8_t *)r + RING_RECORD_HEADER);
		lies[i](&f, r, ref);
		expect_message(&f, 1, 5, 0);
		expect_lost(&f, 1);
		uint64_t seq = write_pool(&f.w, 700); /* (restores an honest limit) */
		expect_message(&f, seq, 700, 1);
		expect_empty(&f);
		pool_teardown(&f);
	}
	/* Headers no honest pool record has: the stream ends (nowhere to
	 * go). Metadata before the reference (its length within the record). */
	static const uint16_t flags[] = {REC_POOL | REC_LARGE, REC_POOL | REC_PAD, REC_POOL};
	for (size_t i = 0; i < 3; i++) {
		struct pool_fixture f;
		pool_setup(&f, SLOTS, SLOT_SIZE);
		uint64_t at = f.w.off;
		write_pool(&f.w, 300);
		struct record_header *r =
			(struct record_header *)((uint8_t *)f.base + RING_HEADER_SIZE + at);
		atomic_store(&r->flags, flags[i]);
		if (flags[i] == REC_POOL) {
			atomic_store(&r->meta_len, 8);
			atomic_store(&r->len, 16);
		}
		struct ring_record rec;
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
		assert_int_equal(f.r.next, RING_SEQ_END);
		pool_teardown(&f);
	}
	/* Pool records in a ring whose geometry has no pool (of any length,
	 * none included). */
	struct pool_fixture f;
	pool_setup(&f, 1u << 17, 2048);
	assert_int_equal(f.w.pool_bytes, 0);
	struct ring_pool_ref ref = {0, 100};
	ki_ring_write(&f.w, NULL, 0, &ref, sizeof ref, REC_POOL, 1);
	ref.len = 0;
	ki_ring_write(&f.w, NULL, 0, &ref, sizeof ref, REC_POOL, 2);
	write_inline(&f.w, 9);
	expect_lost(&f, 1);
	expect_lost(&f, 1);
	expect_message(&f, 3, 9, 0);
	pool_teardown(&f);
}

/* Through kite: a publisher with 16 x 256 rings (4 KiB of records: inline
 * up to 480 bytes, a 16 KiB pool taking up to 4 KiB). */
#define K_SLOTS 16
#define K_SLOT_SIZE 256
#define CHILD_MS 120000

struct shared {
	_Atomic int ready, finished, stop;
	_Atomic uint64_t received, lost, bad, gone, large_maps;
	_Atomic uint64_t next; /* the seq the subscriber expects next */
};
static struct shared *sh;
CHILD_SHARED_FIXTURES(sh)
static char bus[96];

/* Is a large-message memfd mapped in this process? */
static int large_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0;
	while (fgets(line, sizeof line, f))
		found |= strstr(line, "kite-large") != NULL;
	fclose(f);
	return found;
}

struct sub_args {
	int reliable;
	unsigned nap_every; /* nap 2 ms every this many messages (0: never) */
};

/* Every message is the next in sequence (or a reported gap follows), its
 * payload pattern(seq) whole. */
static int subscriber(void *arg)
{
	const struct sub_args *a = arg;
	kite_options o = {.bus = bus};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	struct kite_sub_options so = {.flags = a->reliable ? KITE_SUB_RELIABLE : 0};
	CHILD_CHECK(kite_subscribe_opts(k, "pool.>", &so) == 0, "subscribe");
	sh->ready = 1;
	uint64_t next = 1, deadline = mono_ms() + CHILD_MS;
	kite_event ev;
	while (mono_ms() < deadline) {
		int rc = kite_recv(k, &ev, 200);
		if (rc == -ETIMEDOUT)
			continue;
		CHILD_CHECK(rc == 0, "recv %d", rc);
		if (ev.type == KITE_MESSAGE) {
			if (ev.msg.seq != next || !pattern_ok(ev.msg.data, ev.msg.seq, ev.msg.len))
				sh->bad++;
			next = ev.msg.seq + 1;
			sh->received++;
			sh->next = next;
			sh->large_maps += large_mapped() == 1;
			if (a->nap_every && ev.msg.seq % a->nap_every == 0)
				nap_us(2000);
		} else if (ev.type == KITE_LOSS) {
			sh->lost += ev.lost;
			next += ev.lost;
			sh->next = next;
		} else if (ev.type == KITE_PUBLISHER_GONE) {
			sh->gone++;
			break;
		}
	}
	sh->finished = 1;
	kite_close(k);
	return 0;
}

static pid_t start_sub(struct sub_args *a)
{
	pid_t pid = child_start_ready(subscriber, a, &sh->ready, 30000);
	assert_true(pid > 0);
	return pid;
}

static kite *open_publisher(uint32_t slots, uint32_t slot_size)
{
	kite_options o = {.bus = bus, .ring_slots = slots, .slot_size = slot_size,
			  .reliable_wait_ms = UINT32_MAX, .reliable_deadline_ms = 30000};
	kite *k;
	assert_int_equal(kite_open(&k, &o), 0);
	return k;
}

static void wait_finished(void)
{
	uint64_t deadline = mono_ms() + 60000;
	while (!sh->finished && mono_ms() < deadline)
		nap_us(1000);
	assert_true(sh->finished);
	printf("# received %llu, lost %llu, bad %llu, held as a memfd %llu\n",
	       (unsigned long long)sh->received, (unsigned long long)sh->lost,
	       (unsigned long long)sh->bad, (unsigned long long)sh->large_maps);
}

static void publish_pattern(kite *k, uint64_t seq, uint64_t len)
{
	static uint8_t buf[2u << 20];
	assert_true(len <= sizeof buf);
	pattern(buf, seq, len);
	assert_int_equal(kite_publish(k, "pool.data", buf, len), (int64_t)seq);
}

/* Sizes at the edges of both rules, each through a reliable subscriber:
 * all arrive whole, and only those over the pool's share as a memfd. */
static void test_kite_sizes_at_edges(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("pool_edges"));
	uint32_t inl = ki_ring_inline_max(K_SLOTS, K_SLOT_SIZE);
	uint64_t share = ki_ring_pool_msg_max(K_SLOTS, K_SLOT_SIZE);
	const uint64_t sizes[] = {0, 1, inl - 1, inl, inl + 1, share - 1, share,
				  share + 1, share + 4096, 1u << 20};
	const int n = sizeof sizes / sizeof *sizes, rounds = 20;
	struct sub_args a = {1, 0};
	start_sub(&a);
	kite *k = open_publisher(K_SLOTS, K_SLOT_SIZE);
	uint64_t seq = 0;
	for (int round = 0; round < rounds; round++)
		for (int i = 0; i < n; i++)
			publish_pattern(k, ++seq, sizes[i]);
	kite_close(k);
	wait_finished();
	assert_int_equal(sh->bad, 0);
	assert_int_equal(sh->lost, 0);
	assert_int_equal(sh->received, (uint64_t)n * rounds);
	assert_int_equal(sh->large_maps, 3 * rounds); /* share + 1 and beyond */
}

/* Default rings (8 MiB pool): 1 MiB messages to a reliable subscriber that
 * naps every fourth message: the pool wraps 16 times, nothing is lost. */
static void test_kite_reliable_1mib_slow_subscriber(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("pool_rel"));
	struct sub_args a = {1, 4};
	start_sub(&a);
	kite *k = open_publisher(0, 0);
	const uint64_t n = 128;
	for (uint64_t seq = 1; seq <= n; seq++)
		publish_pattern(k, seq, 1u << 20);
	kite_close(k);
	wait_finished();
	assert_int_equal(sh->bad, 0);
	assert_int_equal(sh->lost, 0);
	assert_int_equal(sh->received, n);
	assert_int_equal(sh->large_maps, 0);
}

/* A radio subscriber stopped while 64 messages of 1 MiB go through an
 * 8 MiB pool: continued, it gets the last 8 whole and is told of the 56
 * written over, one by one. */
static void test_kite_radio_1mib_lapped_subscriber(void **state)
{
	(void)state;
	snprintf(bus, sizeof bus, "%s", test_bus("pool_radio"));
	struct sub_args a = {0, 0};
	pid_t sub = start_sub(&a);
	kite *k = open_publisher(0, 0);
	publish_pattern(k, 1, 1u << 20);
	uint64_t deadline = mono_ms() + 30000;
	while (sh->received < 1 && mono_ms() < deadline)
		nap_us(1000);
	assert_int_equal(sh->received, 1);
	assert_int_equal(kill(sub, SIGSTOP), 0);
	assert_true(wait_stopped(sub, 5000));
	for (uint64_t seq = 2; seq <= 65; seq++)
		publish_pattern(k, seq, 1u << 20);
	assert_int_equal(kill(sub, SIGCONT), 0);
	kite_close(k);
	wait_finished();
	assert_int_equal(sh->bad, 0);
	assert_int_equal(sh->lost, 56);
	assert_int_equal(sh->received, 1 + 8);
}

static int publish_until_killed(void *arg)
{
	(void)arg;
	kite_options o = {.bus = bus, .reliable_wait_ms = UINT32_MAX};
	kite *k;
	CHILD_CHECK(kite_open(&k, &o) == 0, "open");
	static uint8_t buf[1u << 20];
	for (uint64_t seq = 1;; seq++) {
		pattern(buf, seq, sizeof buf);
		int64_t rc = kite_publish(k, "pool.data", buf, sizeof buf);
		CHILD_CHECK(rc == (int64_t)seq, "publish %lld", (long long)rc);
	}
	return 0;
}

/* SIGKILLed while it writes 1 MiB messages (most of its time is the copy
 * into the pool): whole messages only, every gap reported, then GONE. */
static void test_kite_publisher_killed_mid_message(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		memset(sh, 0, sizeof *sh);
		char name[32];
		snprintf(name, sizeof name, "pool_kill%d", round);
		snprintf(bus, sizeof bus, "%s", test_bus(name));
		struct sub_args a = {round == 1, 0};
		start_sub(&a);
		pid_t pub = child_start(publish_until_killed, NULL);
		assert_true(pub > 0);
		uint64_t deadline = mono_ms() + 30000;
		while (sh->received < 20 + 10 * (uint64_t)round && mono_ms() < deadline)
			nap_us(200);
		nap_us(300 * (unsigned)round + 77);
		assert_int_equal(kill(pub, SIGKILL), 0);
		assert_int_equal(child_wait(pub, 10000), 128 + SIGKILL);
		wait_finished();
		assert_int_equal(sh->bad, 0);
		assert_int_equal(sh->gone, 1);
		assert_true(sh->received >= 20);
		/* Every seq before the last it heard of: delivered or reported. */
		assert_int_equal(sh->received + sh->lost, sh->next - 1);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule),
		cmocka_unit_test(test_every_size_and_wrap),
		cmocka_unit_test(test_lapped_loses_exactly),
		cmocka_unit_test(test_race_never_torn),
		cmocka_unit_test(test_pool_floor_keeps_slow_reader_whole),
		cmocka_unit_test(test_lying_pool_references),
		T(test_kite_sizes_at_edges),
		T(test_kite_reliable_1mib_slow_subscriber),
		T(test_kite_radio_1mib_lapped_subscriber),
		T(test_kite_publisher_killed_mid_message),
	};
	if (getenv("KITE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KITE_TEST_FILTER"));
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
