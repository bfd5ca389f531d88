/* The ring's arithmetic in one process: one writer and one reader over a
 * malloc'd image (so ASan sees any read past its end), in-order delivery,
 * wrap-around, overrun with an exact count of what was lost, geometry and
 * header checks, and slots that lie. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "child.h"
#include "ring.h"

struct ring_fixture {
	void *base;
	size_t bytes;
	struct ring_writer w;
	struct ring_reader r;
	uint8_t *buf; /* exactly slot_size - RING_SLOT_HEADER bytes */
};

static void ring_setup(struct ring_fixture *f, uint32_t slots, uint32_t slot_size)
{
	assert_int_equal(ki_ring_geometry_valid(slots, slot_size, &f->bytes), 0);
	f->base = aligned_alloc(64, f->bytes); /* bytes: a multiple of 64 */
	assert_non_null(f->base);
	memset(f->base, 0, f->bytes); /* as a fresh memfd is */
	ki_ring_writer_init(&f->w, f->base, slots, slot_size, 42, "test.ring", 0);
	f->r = (struct ring_reader){.base = f->base, .slot_count = slots,
				    .slot_size = slot_size, .next = 1};
	f->buf = malloc(slot_size - RING_SLOT_HEADER);
	assert_non_null(f->buf);
}

static void ring_teardown(struct ring_fixture *f)
{
	free(f->base);
	free(f->buf);
}

/* Payload of message seq: len bytes derived from seq. */
static uint32_t fill_payload(uint8_t *p, uint64_t seq, uint32_t cap)
{
	uint32_t len = (uint32_t)(seq * 7 % (cap + 1));
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
	return len;
}

static void check_payload(const uint8_t *p, uint32_t len, uint64_t seq, uint32_t cap)
{
	uint8_t want[4096];
	assert_true(cap <= sizeof want);
	uint32_t wl = fill_payload(want, seq, cap);
	if (len != wl || memcmp(p, want, len))
		fail_msg("seq %llu: payload differs (len %u, want %u)",
			 (unsigned long long)seq, len, wl);
}

static uint64_t write_one(struct ring_fixture *f, uint32_t cap)
{
	uint8_t p[4096];
	uint64_t seq = f->w.head + 1;
	uint32_t len = fill_payload(p, seq, cap);
	assert_int_equal(ki_ring_write(&f->w, p, len, SLOT_INLINE, 0, seq * 1000), seq);
	return seq;
}

static void test_empty(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 64);
	struct ring_record rec;
	assert_int_equal(ki_ring_pending(&f.r), 0);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	assert_int_equal(f.r.next, 1);
	ring_teardown(&f);
}

static void test_in_order(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 16, 128);
	uint32_t cap = 128 - RING_SLOT_HEADER;
	for (int i = 0; i < 10; i++)
		write_one(&f, cap);
	struct ring_record rec;
	for (uint64_t seq = 1; seq <= 10; seq++) {
		assert_int_equal(ki_ring_pending(&f.r), 1);
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.seq, seq);
		assert_int_equal(rec.flags, SLOT_INLINE);
		assert_int_equal(rec.timestamp_ns, seq * 1000);
		check_payload(f.buf, rec.len, seq, cap);
	}
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	ring_teardown(&f);
}

static void test_wrap_around(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	uint32_t cap = 64 - RING_SLOT_HEADER;
	struct ring_record rec;
	/* Keep the reader within two slots of the writer for many laps. */
	for (uint64_t seq = 1; seq <= 20000; seq++) {
		write_one(&f, cap);
		if (seq % 2)
			continue;
		for (uint64_t s = seq - 1; s <= seq; s++) {
			assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
			assert_int_equal(rec.seq, s);
			check_payload(f.buf, rec.len, s, cap);
		}
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	}
	ring_teardown(&f);
}

/* Random write bursts and read bursts: every message is either received,
 * in order with its own payload, or counted lost, exactly once. A reader
 * never more than slot_count - 2 behind loses nothing. */
static void overrun_run(uint32_t slots, uint64_t seed)
{
	struct ring_fixture f;
	ring_setup(&f, slots, 128);
	uint32_t cap = 128 - RING_SLOT_HEADER;
	uint64_t rng = seed, received = 0, lost = 0, expect = 1;
	struct ring_record rec;
	for (int round = 0; round < 400; round++) {
		uint64_t writes = test_rand(&rng) % (3 * slots);
		uint64_t reads = test_rand(&rng) % (3 * slots);
		for (uint64_t i = 0; i < writes; i++)
			write_one(&f, cap);
		uint64_t behind = f.w.head + 1 - f.r.next;
		int may_lose = behind > slots - 2;
		for (uint64_t i = 0; i < reads; i++) {
			enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
			if (r == RING_EMPTY) {
				assert_int_equal(f.r.next, f.w.head + 1);
				break;
			}
			if (r == RING_LOST) {
				if (!may_lose)
					fail_msg("seed %llu: lost %llu while only %llu behind",
						 (unsigned long long)seed,
						 (unsigned long long)rec.lost,
						 (unsigned long long)behind);
				assert_true(rec.lost > 0);
				lost += rec.lost;
				expect += rec.lost;
				may_lose = 0; /* once caught up, no second loss this burst */
				continue;
			}
			assert_int_equal(r, RING_MESSAGE);
			if (rec.seq != expect)
				fail_msg("seed %llu: got seq %llu, expected %llu",
					 (unsigned long long)seed, (unsigned long long)rec.seq,
					 (unsigned long long)expect);
			check_payload(f.buf, rec.len, rec.seq, cap);
			expect++;
			received++;
		}
	}
	/* Drain. */
	for (;;) {
		enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
		if (r == RING_EMPTY)
			break;
		if (r == RING_LOST) {
			lost += rec.lost;
			expect += rec.lost;
		} else {
			assert_int_equal(rec.seq, expect);
			expect++;
			received++;
		}
	}
	if (received + lost != f.w.head)
		fail_msg("seed %llu: published %llu, received %llu + lost %llu",
			 (unsigned long long)seed, (unsigned long long)f.w.head,
			 (unsigned long long)received, (unsigned long long)lost);
	assert_true(lost > 0); /* the bursts are sized to overrun */
	assert_true(received > 0);
	ring_teardown(&f);
}

static void test_overrun_exact_count(void **state)
{
	(void)state;
	static const uint32_t geometry[] = {2, 4, 8, 16, 64, 256};
	for (size_t g = 0; g < sizeof geometry / sizeof *geometry; g++)
		for (uint64_t seed = 1; seed <= 25; seed++)
			overrun_run(geometry[g], seed * 0x9e3779b97f4a7c15ull + g);
}

static void test_len_at_slot_boundary(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 128);
	uint32_t cap = 128 - RING_SLOT_HEADER;
	uint8_t p[128];
	for (uint32_t i = 0; i < sizeof p; i++)
		p[i] = (uint8_t)(i + 1);
	struct ring_record rec;
	uint32_t lens[] = {0, 1, cap - 1, cap};
	for (size_t i = 0; i < 4; i++) {
		ki_ring_write(&f.w, p, lens[i], SLOT_INLINE, 0, 0);
		memset(f.buf, 0, cap);
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.len, lens[i]);
		assert_memory_equal(f.buf, p, lens[i]);
	}
	/* A large reference carries its length and id, no payload. */
	ki_ring_write(&f.w, NULL, 0xffffffffu, SLOT_LARGE, 77, 5);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
	assert_int_equal(rec.flags, SLOT_LARGE);
	assert_int_equal(rec.len, 0xffffffffu);
	assert_int_equal(rec.large_id, 77);
	ring_teardown(&f);
}

static void test_geometry_table(void **state)
{
	(void)state;
	static const struct {
		uint32_t slots, size;
		int ok;
	} t[] = {
		{2, 64, 1}, {1024, 2048, 1}, {RING_MAX_SLOTS, 64, 1},
		{2, RING_MAX_SLOT_SIZE, 1}, {8, 128, 1},
		{0, 64, 0}, {1, 64, 0}, {3, 64, 0}, {1000, 64, 0},
		{RING_MAX_SLOTS * 2, 64, 0}, {0x80000000u, 64, 0}, {0xffffffffu, 64, 0},
		{8, 0, 0}, {8, 32, 0}, {8, 96, 0}, {8, 100, 0}, {8, 65, 0},
		{8, RING_MAX_SLOT_SIZE + 64, 0}, {8, 0xffffffc0u, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		size_t bytes = 0;
		int rc = ki_ring_geometry_valid(t[i].slots, t[i].size, &bytes);
		if ((rc == 0) != t[i].ok)
			fail_msg("geometry %u x %u: got %d", t[i].slots, t[i].size, rc);
		if (t[i].ok)
			assert_int_equal(bytes, RING_HEADER_SIZE + (size_t)t[i].slots * t[i].size);
		else
			assert_int_equal(rc, -EBADMSG);
	}
	assert_int_equal(ki_ring_geometry_valid(8, 64, NULL), 0);
}

static void test_header_check(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 64);
	struct ring_header *h = f.base;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), 0);
	assert_int_equal(ki_ring_header_check(f.base, 16, 64, "test.ring"), -EBADMSG);
	assert_int_equal(ki_ring_header_check(f.base, 8, 128, "test.ring"), -EBADMSG);
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.rin"), -EBADMSG);
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring.x"), -EBADMSG);
	h->magic ^= 1;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), -EBADMSG);
	h->magic ^= 1;
	h->version = 2;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), -EBADMSG);
	h->version = RING_VERSION;
	h->header_size = 8192;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), -EBADMSG);
	h->header_size = RING_HEADER_SIZE;
	h->slot_count = 16;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), -EBADMSG);
	h->slot_count = 8;
	/* A channel field without its NUL must not be read past its end. */
	memset(h->channel, 'a', sizeof h->channel);
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, "test.ring"), -EBADMSG);
	h->channel[KITE_CHANNEL_MAX] = 0;
	assert_int_equal(ki_ring_header_check(f.base, 8, 64, h->channel), 0);
	ring_teardown(&f);
}

/* Slots and heads that lie: each read returns promptly, never copies more
 * than the reader's own slot capacity, and counts what it gave up. */
static void test_lying_slots(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 64);
	uint32_t cap = 64 - RING_SLOT_HEADER;
	struct ring_header *h = f.base;
	struct ring_record rec;
	write_one(&f, cap);
	struct slot_header *s1 = (struct slot_header *)((uint8_t *)f.base +
				 RING_HEADER_SIZE + 1 * 64);
	/* len beyond the slot. */
	atomic_store(&s1->len, cap + 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, 1);
	assert_int_equal(f.r.next, 2);
	/* An unknown flag. */
	write_one(&f, cap);
	struct slot_header *s2 = (struct slot_header *)((uint8_t *)s1 + 64);
	atomic_store(&s2->flags, 7);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, 1);
	/* A lock word stuck odd (a writer that died mid-write): the reader
	 * waits on it, counting nothing. */
	write_one(&f, cap);
	struct slot_header *s3 = (struct slot_header *)((uint8_t *)s2 + 64);
	atomic_store(&s3->seq2, 3 * 2 + 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	assert_int_equal(f.r.next, 3);
	/* A later lock word with a head that went back: no overrun to skip
	 * to, so that one slot is given up. */
	atomic_store(&s3->seq2, (3 + 8) * 2);
	atomic_store(&h->head, 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, 1);
	assert_int_equal(f.r.next, 4);
	/* A later lock word with a head far ahead: one loss up to the head,
	 * then nothing the slots can show. */
	struct slot_header *s4 = (struct slot_header *)((uint8_t *)s3 + 64);
	atomic_store(&s4->seq2, (4 + 8) * 2);
	atomic_store(&h->head, 1ull << 62);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_true(rec.lost > (1ull << 61));
	int empty = 0;
	for (int i = 0; i < 100 && !empty; i++) {
		enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
		assert_true(r == RING_LOST || r == RING_EMPTY);
		empty = r == RING_EMPTY;
	}
	assert_true(empty);
	assert_true(f.r.next > (1ull << 62) - 8 && f.r.next <= (1ull << 62) + 1);
	/* Heads beyond the sequence space end the stream. */
	for (uint32_t i = 0; i < 8; i++)
		atomic_store(&((struct slot_header *)((uint8_t *)f.base + RING_HEADER_SIZE +
						       i * 64))->seq2, UINT64_MAX - 1);
	atomic_store(&h->head, UINT64_MAX);
	for (int i = 0; i < 100; i++) {
		enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
		if (r == RING_MESSAGE)
			assert_true(rec.len <= cap);
	}
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	ring_teardown(&f);
}

/* Heads at the end of the sequence space: the reader never goes back and
 * runs out of things to report after a bounded number of reads, whatever
 * the slots say. */
static void test_head_at_the_end_of_time(void **state)
{
	(void)state;
	static const uint64_t heads[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 6,
					 UINT64_MAX - 7, UINT64_MAX - 100, 1ull << 63,
					 (1ull << 63) - 1, (1ull << 63) - 5, 1ull << 62};
	static const uint32_t geometry[] = {2, 8, 64};
	for (size_t g = 0; g < sizeof geometry / sizeof *geometry; g++)
		for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
			for (int valid = 0; valid < 2; valid++) {
				struct ring_fixture f;
				ring_setup(&f, geometry[g], 64);
				struct ring_header *h = f.base;
				/* Slots either never valid, or valid for the seqs
				 * just below the head (and for the wrap to 0). */
				for (uint32_t s = 0; s < geometry[g]; s++) {
					struct slot_header *sl = (struct slot_header *)
						((uint8_t *)f.base + RING_HEADER_SIZE + s * 64);
					uint64_t seq = heads[i] - ((heads[i] - s) & (geometry[g] - 1));
					atomic_store(&sl->seq2, valid ? 2 * seq : 12345);
					atomic_store(&sl->len, 0);
					atomic_store(&sl->flags, SLOT_INLINE);
				}
				atomic_store(&h->head, heads[i]);
				int steps = 0;
				struct ring_record rec;
				for (;;) {
					uint64_t before = f.r.next;
					enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
					if (r == RING_EMPTY)
						break;
					if (f.r.next <= before)
						fail_msg("head %llu, %u slots: next went from %llu to %llu",
							 (unsigned long long)heads[i], geometry[g],
							 (unsigned long long)before,
							 (unsigned long long)f.r.next);
					if (++steps > 2 * (int)geometry[g] + 4)
						fail_msg("head %llu, %u slots: no end of reports",
							 (unsigned long long)heads[i], geometry[g]);
				}
				ring_teardown(&f);
			}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_overrun_exact_count),
		cmocka_unit_test(test_len_at_slot_boundary),
		cmocka_unit_test(test_geometry_table),
		cmocka_unit_test(test_header_check),
		cmocka_unit_test(test_lying_slots),
		cmocka_unit_test(test_head_at_the_end_of_time),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
