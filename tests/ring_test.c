/* The packed ring's arithmetic in one process: one writer and one reader
 * over a malloc'd image (so ASan sees any read past its end, and the copy
 * buffer is exactly the inline maximum), in-order delivery, record
 * boundaries and wrap-around at every size near the edges, any start
 * sequence, metadata blocks, overrun with an exact count of what was lost,
 * geometry and header checks, and records, limits and hints that lie. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "ring.h"

struct ring_fixture {
	void *base;
	size_t bytes;
	uint32_t cap; /* inline maximum */
	struct ring_writer w;
	struct ring_reader r;
	uint8_t *buf; /* exactly cap bytes */
};

static void ring_setup_at(struct ring_fixture *f, uint32_t slots, uint32_t slot_size,
			  uint64_t start)
{
	assert_int_equal(ki_ring_geometry_valid(slots, slot_size, &f->bytes), 0);
	f->base = aligned_alloc(64, f->bytes); /* bytes: a multiple of 64 */
	assert_non_null(f->base);
	memset(f->base, 0, f->bytes); /* as a fresh memfd is */
	ki_ring_writer_init(&f->w, f->base, slots, slot_size, 42, "test.ring", start - 1);
	ki_ring_reader_init(&f->r, f->base, slots, slot_size, start, 0);
	f->cap = ki_ring_inline_max(slots, slot_size);
	f->buf = malloc(f->cap);
	assert_non_null(f->buf);
}

static void ring_setup(struct ring_fixture *f, uint32_t slots, uint32_t slot_size)
{
	ring_setup_at(f, slots, slot_size, 1);
}

static void ring_teardown(struct ring_fixture *f)
{
	free(f->base);
	free(f->buf);
}

static struct ring_header *hdr(struct ring_fixture *f)
{
	return f->base;
}

static struct record_header *record_at_off(struct ring_fixture *f, uint64_t off)
{
	return (struct record_header *)((uint8_t *)f->base + RING_HEADER_SIZE + off);
}

static void fill_bytes(uint8_t *p, uint64_t seq, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
}

static void check_bytes(const uint8_t *p, uint32_t len, uint64_t seq, uint32_t want_len)
{
	uint8_t want[4096];
	assert_true(want_len <= sizeof want);
	fill_bytes(want, seq, want_len);
	if (len != want_len || memcmp(p, want, len))
		fail_msg("seq %llu: payload differs (len %u, want %u)",
			 (unsigned long long)seq, len, want_len);
}

/* Message seq's payload: (seq * 7) % (cap + 1) bytes derived from seq. */
static void check_payload(const uint8_t *p, uint32_t len, uint64_t seq, uint32_t cap)
{
	check_bytes(p, len, seq, (uint32_t)(seq * 7 % (cap + 1)));
}

static uint64_t write_len(struct ring_fixture *f, uint32_t len)
{
	uint8_t p[4096];
	uint64_t seq = f->w.head + 1;
	fill_bytes(p, seq, len);
	assert_int_equal(ki_ring_write(&f->w, NULL, 0, p, len, 0, seq * 1000), seq);
	return seq;
}

static uint64_t write_one(struct ring_fixture *f)
{
	return write_len(f, (uint32_t)((f->w.head + 1) * 7 % (f->cap + 1)));
}

static void expect_message(struct ring_fixture *f, uint64_t seq, uint32_t len)
{
	struct ring_record rec;
	assert_int_equal(ki_ring_pending(&f->r), 1);
	enum ring_result r = ki_ring_read(&f->r, f->buf, &rec);
	if (r != RING_MESSAGE)
		fail_msg("seq %llu len %u: read gave %d (lost %llu)", (unsigned long long)seq,
			 len, r, (unsigned long long)rec.lost);
	assert_int_equal(rec.seq, seq);
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.meta_len, 0);
	assert_int_equal(rec.timestamp_ns, seq * 1000);
	check_bytes(f->buf, rec.len, seq, len);
}

static void expect_empty(struct ring_fixture *f)
{
	struct ring_record rec;
	assert_int_equal(ki_ring_pending(&f->r), 0);
	assert_int_equal(ki_ring_read(&f->r, f->buf, &rec), RING_EMPTY);
}

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#else
#define ASAN_BUILD 0
#endif

/* Page faults this thread takes (not counting pages a system call made
 * exist); -1 if the kernel will not count them. */
static int fault_counter(void)
{
	struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE, .size = sizeof a,
				    .config = PERF_COUNT_SW_PAGE_FAULTS};
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t counted(int fd)
{
	uint64_t n = 0;
	assert_int_equal(read(fd, &n, sizeof n), (ssize_t)sizeof n);
	return n;
}

static uint64_t resident_bytes(int memfd)
{
	struct stat st;
	assert_int_equal(fstat(memfd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* In a new ring's first lap the publisher makes the pages ahead of it
 * exist a chunk at a time (ring.c, prefault) instead of faulting on each:
 * a ring written past its first 64 KiB takes about that chunk's 16 faults
 * in the whole lap (512 without), a quiet ring holds only the pages it was
 * written, a busy one at most a chunk more. */
static void test_first_lap_pages_made_ahead(void **state)
{
	(void)state;
	size_t bytes;
	assert_int_equal(ki_ring_geometry_valid(1024, 2048, &bytes), 0);
	int memfd = memfd_create("ring_test", MFD_CLOEXEC);
	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)bytes), 0);
	uint8_t *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	assert_true(base != MAP_FAILED);
	struct ring_writer w;
	ki_ring_writer_init(&w, base, 1024, 2048, 42, "test.ring", 0);
	int faults = fault_counter();
	if (faults < 0) {
		print_message("# perf_event_open: %s: fault count not checked\n",
			      strerror(errno));
	}
	uint8_t msg[64];
	memset(msg, 7, sizeof msg);
	uint64_t before = faults >= 0 ? counted(faults) : 0;
	/* Quiet: 40 KiB of records, nothing made ahead. */
	while (w.pos < 40 * 1024)
		ki_ring_write(&w, NULL, 0, msg, sizeof msg, 0, 1);
	assert_true(resident_bytes(memfd) <= RING_HEADER_SIZE + (w.pos + 4095) / 4096 * 4096);
	/* Busy: never more than a chunk past what was written. */
	while (w.pos < 300 * 1024)
		ki_ring_write(&w, NULL, 0, msg, sizeof msg, 0, 1);
	uint64_t res = resident_bytes(memfd);
	print_message("# written %llu KiB, resident %llu KiB\n",
		      (unsigned long long)w.pos / 1024, (unsigned long long)res / 1024);
	/* Made ahead: the chunk the writes are in exists to its end. */
	assert_true(res >= RING_HEADER_SIZE + (w.pos + 65535) / 65536 * 65536);
	assert_true(res <= RING_HEADER_SIZE + w.pos + 65536 + 4096);
	/* The rest of the first lap, and a little of the second. */
	while (w.pos < w.capacity + 65536)
		ki_ring_write(&w, NULL, 0, msg, sizeof msg, 0, 1);
	assert_int_equal(resident_bytes(memfd), bytes - ki_ring_pool_bytes(1024, 2048));
	if (faults >= 0) {
		uint64_t n = counted(faults) - before;
		print_message("# %llu page faults writing a 2 MiB ring's first lap\n",
			      (unsigned long long)n);
		/* (Under ASan its shadow of the ring takes a fault every 32
		 * KiB of it: 64 more.) */
		assert_true(n <= 16 + 8 + (ASAN_BUILD ? 64 : 0));
		close(faults);
	}
	munmap(base, bytes);
	close(memfd);
}

/* Bytes of the memfd's [from, to) that exist (SEEK_DATA / SEEK_HOLE). */
static uint64_t allocated_in(int fd, uint64_t from, uint64_t to)
{
	uint64_t n = 0;
	for (off_t at = (off_t)from; (uint64_t)at < to;) {
		off_t data = lseek(fd, at, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= to)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)to;
		n += ((uint64_t)hole < to ? (uint64_t)hole : to) - (uint64_t)data;
		at = hole;
	}
	return n;
}

static uint64_t page_up(uint64_t n)
{
	return (n + 4095) / 4096 * 4096;
}

/* 1 if this kernel makes pages exist on MADV_POPULATE_WRITE. */
static int populate_works(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	int ok = madvise(p, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
	munmap(p, 4096);
	return ok;
}

#define LAP_CHUNK (64u << 10) /* ring.c's PREFAULT_CHUNK */

/* One ring's first lap and a little more, through every kind of write a
 * publisher makes (inline records of seeded sizes up to the inline limit,
 * pool messages, claims committed shorter, claims never committed, pads at
 * the lap's end), read back byte-exact after each; after each, the pages
 * of records that exist are at most what was written (or claimed) plus
 * a chunk, and, where pages are made ahead (ahead = 1), every page up
 * to the end of the chunk it reached exists (a claim's whole room counts as written: the
 * caller may fill it before committing shorter). Returns 0 or the line of the first failure
 * (it runs in a child too, where cmocka's assertions may not be used). */
#define LAP_CHECK(cond)                                                           \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "# %ux%u, seq %llu: %s\n", slots, slot_size, \
				(unsigned long long)w.head, #cond);              \
			return __LINE__;                                         \
		}                                                                \
	} while (0)

static int first_lap_bounded(uint32_t slots, uint32_t slot_size, unsigned seed, int ahead)
{
	size_t bytes;
	if (ki_ring_geometry_valid(slots, slot_size, &bytes))
		return __LINE__;
	int fd = memfd_create("ring_test", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)bytes))
		return __LINE__;
	uint8_t *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return __LINE__;
	struct ring_writer w;
	struct ring_reader r;
	ki_ring_writer_init(&w, base, slots, slot_size, 42, "test.ring", 0);
	ki_ring_reader_init(&r, base, slots, slot_size, 1, 0);
	uint32_t inl = ki_ring_inline_max(slots, slot_size);
	uint64_t pool_max = ki_ring_pool_msg_max(slots, slot_size);
	uint8_t *buf = malloc(ki_ring_read_max(slots, slot_size));
	uint8_t *src = malloc(inl > pool_max ? inl : pool_max);
	if (!buf || !src)
		return __LINE__;
	uint64_t cap = w.capacity, reach = 0;
	while (w.pos < cap + 2 * LAP_CHUNK) {
		uint64_t seq = w.head + 1;
		unsigned kind = (unsigned)rand_r(&seed) % 16;
		/* Mostly small, now and then up to the limit. */
		uint32_t len = (unsigned)rand_r(&seed) % 4 ? (unsigned)rand_r(&seed) % 200
							   : (unsigned)rand_r(&seed) % (inl + 1);
		len = len > inl ? inl : len;
		fill_bytes(src, seq, len);
		if (kind == 0 && pool_max > inl) {
			len = inl + 1 + (uint32_t)((unsigned)rand_r(&seed) % (pool_max - inl));
			fill_bytes(src, seq, len);
			uint64_t pp;
			uint8_t *dst = ki_ring_pool_claim(&w, len, &pp);
			memcpy(dst, src, len);
			LAP_CHECK(ki_ring_pool_commit(&w, pp, len, 0, seq) == seq);
		} else if (kind == 1) {
			/* A claim never committed, its body filled: the next
			 * record goes where it was. */
			uint8_t *body = ki_ring_claim(&w, len);
			memset(body, 0xa5, len);
			uint64_t end = w.pos + RING_RECORD_HEADER + len + RING_ALIGN;
			reach = end > reach ? end : reach;
			continue;
		} else if (kind == 2) {
			/* A claim committed shorter than it asked (its room was
			 * the caller's to write: it counts as written). */
			uint8_t *body = ki_ring_claim(&w, len);
			uint64_t end = w.pos + RING_RECORD_HEADER + len + RING_ALIGN;
			reach = end > reach ? end : reach;
			memcpy(body, src, len / 2);
			LAP_CHECK(ki_ring_commit(&w, 0, len / 2, 0, seq) == seq);
			len /= 2;
		} else {
			LAP_CHECK(ki_ring_write(&w, NULL, 0, src, len, 0, seq) == seq);
		}
		reach = w.pos + RING_ALIGN > reach ? w.pos + RING_ALIGN : reach;
		struct ring_record rec;
		LAP_CHECK(ki_ring_read(&r, buf, &rec) == RING_MESSAGE);
		LAP_CHECK(rec.seq == seq && rec.len == len);
		fill_bytes(src, seq, len);
		LAP_CHECK(memcmp(buf + rec.meta_len, src, len) == 0);
		LAP_CHECK(ki_ring_read(&r, buf, &rec) == RING_EMPTY);
		/* The records' pages, first lap only (then they all exist). */
		uint64_t written = reach < cap ? reach : cap;
		uint64_t have = allocated_in(fd, RING_HEADER_SIZE, RING_HEADER_SIZE + cap);
		LAP_CHECK(have <= page_up(written) + LAP_CHUNK);
		if (!ahead) {
			LAP_CHECK(have <= page_up(written));
		} else if (written > LAP_CHUNK) {
			/* The whole chunk a write entered exists. */
			uint64_t want = (written + LAP_CHUNK - 1) / LAP_CHUNK * LAP_CHUNK;
			want = want < cap ? want : cap;
			LAP_CHECK(allocated_in(fd, RING_HEADER_SIZE, RING_HEADER_SIZE + want) == want);
		}
	}
	/* Made ahead (a ring written past its first chunk): all of it, pages
	 * under a pad at the first lap's end included. */
	if (ahead && cap > LAP_CHUNK)
		LAP_CHECK(allocated_in(fd, RING_HEADER_SIZE, RING_HEADER_SIZE + cap) == cap);
	/* Past the first lap, the next write stops making pages. */
	ki_ring_write(&w, NULL, 0, src, 1, 0, w.head + 1);
	LAP_CHECK(w.prefault_at == UINT64_MAX);
	free(buf);
	free(src);
	munmap(base, bytes);
	close(fd);
	return 0;
}

/* Geometries: the smallest ring, rings of one, two and three chunks, one
 * that is not a whole number of chunks (nor of pages), and the default. */
static const uint32_t lap_geometries[][2] = {
	{2, 64}, {1024, 64}, {16, 4096}, {64, 2048}, {128, 1536}, {512, 576}, {1024, 2048},
};

static void test_first_lap_bounded_every_write(void **state)
{
	(void)state;
	int ahead = populate_works();
	if (!ahead)
		print_message("# MADV_POPULATE_WRITE unsupported: nothing is made ahead\n");
	for (size_t g = 0; g < sizeof lap_geometries / sizeof *lap_geometries; g++)
		for (unsigned seed = 1; seed <= 3; seed++)
			assert_int_equal(first_lap_bounded(lap_geometries[g][0],
							   lap_geometries[g][1], seed, ahead), 0);
}

/* A kernel without MADV_POPULATE_WRITE (here: a seccomp filter makes it
 * fail with EINVAL): the publisher tries once a ring, then its writes
 * fault the pages in, nothing made ahead, nothing lost. */
static int lap_without_populate(void *arg)
{
	(void)arg;
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 23 /* MADV_POPULATE_WRITE */, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof filter / sizeof *filter, .filter = filter};
	CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "%s", strerror(errno));
	CHILD_CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "%s",
		    strerror(errno));
	CHILD_CHECK(!populate_works(), "the filter let MADV_POPULATE_WRITE through");
	for (size_t g = 0; g < sizeof lap_geometries / sizeof *lap_geometries; g++) {
		int line = first_lap_bounded(lap_geometries[g][0], lap_geometries[g][1], 5, 0);
		CHILD_CHECK(line == 0, "first_lap_bounded line %d", line);
	}
	return 0;
}

static void test_first_lap_without_populate(void **state)
{
	(void)state;
	pid_t pid = child_start(lap_without_populate, NULL);
	assert_true(pid > 0);
	assert_int_equal(child_wait(pid, 60000), 0);
}

static void test_empty(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 64);
	expect_empty(&f);
	assert_int_equal(f.r.next, 1);
	ring_teardown(&f);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* RING_STAMP_NOW (what kite_publish passes): the writer reads the clock
 * itself, between the payload's stores and the header's; the record is
 * stamped with the time of the write, whichever copy its size takes (word
 * by word up to 256 bytes, memcpy beyond). */
static void test_stamp_now(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 512);
	static const uint32_t lens[] = {0, 1, 7, 8, 63, 64, 255, 256, 257, 480};
	for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
		uint8_t p[512];
		uint64_t seq = f.w.head + 1;
		fill_bytes(p, seq, lens[i]);
		uint64_t t0 = realtime_ns();
		assert_int_equal(ki_ring_write(&f.w, NULL, 0, p, lens[i], 0, RING_STAMP_NOW), seq);
		uint64_t t1 = realtime_ns();
		struct ring_record rec;
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.seq, seq);
		assert_true(rec.timestamp_ns >= t0 && rec.timestamp_ns <= t1);
		check_bytes(f.buf, rec.len, seq, lens[i]);
	}
	ring_teardown(&f);
}

static void test_in_order(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 16, 128);
	for (int i = 0; i < 10; i++)
		write_one(&f);
	struct ring_record rec;
	for (uint64_t seq = 1; seq <= 10; seq++) {
		assert_int_equal(ki_ring_pending(&f.r), 1);
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.seq, seq);
		assert_int_equal(rec.flags, 0);
		assert_int_equal(rec.timestamp_ns, seq * 1000);
		check_payload(f.buf, rec.len, seq, f.cap);
	}
	expect_empty(&f);
	/* Small records share cache lines: ten of up to 96 bytes took no
	 * ring-sized slots, only their own size. */
	assert_true(f.w.pos <= 10 * (RING_RECORD_HEADER + 96 + 8));
	ring_teardown(&f);
}

/* Every length from 0 to the inline maximum, each written for several laps
 * with the reader right behind (every record then starts at every offset
 * its size allows, ends exactly at the end of the data, leaves a tail too
 * short for a header, or needs a pad), on geometries from the smallest. */
static void test_every_size_wraps(void **state)
{
	(void)state;
	static const struct { uint32_t slots, size; } g[] = {
		{2, 64}, {2, 128}, {4, 64}, {8, 64}, {2, 192}, {4, 320},
		/* Records of up to an eighth of the ring, several slots long. */
		{32, 64}, {16, 128}, {64, 64},
	};
	for (size_t i = 0; i < sizeof g / sizeof *g; i++) {
		struct ring_fixture f;
		ring_setup(&f, g[i].slots, g[i].size);
		for (uint32_t len = 0; len <= f.cap; len++) {
			uint64_t laps_end = f.w.pos + 3 * f.w.capacity + 64;
			while (f.w.pos < laps_end) {
				uint64_t seq = write_len(&f, len);
				expect_message(&f, seq, len);
				expect_empty(&f);
				assert_int_equal(f.r.pos, f.w.pos);
			}
		}
		/* Two sizes alternating: records of one end where the other's
		 * would not fit. (Not both unread: in the smallest rings two
		 * records and a pad are more than the ring holds.) */
		for (uint32_t a = 0; a <= f.cap; a += 3)
			for (uint32_t b = f.cap; b + 4 > f.cap && b <= f.cap; b--) {
				for (int n = 0; n < 6; n++) {
					expect_message(&f, write_len(&f, a), a);
					expect_message(&f, write_len(&f, b), b);
				}
				expect_empty(&f);
			}
		ring_teardown(&f);
	}
}

/* Reliable subscriptions: a reader kept exactly at the floor the writer
 * names before each write (reading only as far as it must) is never
 * overrun, at every size and across laps; the floor is never past the
 * writer, and is 0 exactly when the write raises no limit. */
static void test_reader_floor_is_enough(void **state)
{
	(void)state;
	static const struct { uint32_t slots, size; } g[] = {
		{2, 64}, {2, 128}, {4, 64}, {8, 64}, {2, 192}, {4, 320}, {16, 256},
	};
	for (size_t i = 0; i < sizeof g / sizeof *g; i++) {
		struct ring_fixture f;
		ring_setup(&f, g[i].slots, g[i].size);
		uint64_t unread = f.w.head + 1; /* the next seq the reader takes */
		uint32_t lens[4096];
		for (uint32_t len = 0; len <= f.cap; len++) {
			uint64_t laps_end = f.w.pos + 3 * f.w.capacity + 64;
			while (f.w.pos < laps_end) {
				uint64_t floor = ki_ring_reader_floor(&f.w, len);
				uint64_t pos0 = f.w.pos, limit0 = f.w.limit;
				assert_true(floor <= pos0);
				while (f.r.pos < floor) {
					expect_message(&f, unread, lens[unread % 4096]);
					unread++;
				}
				uint64_t seq = write_len(&f, len);
				lens[seq % 4096] = len;
				if (f.w.limit == limit0) {
					assert_int_equal(floor, 0);
				} else {
					uint64_t want = f.w.limit > f.w.capacity ? f.w.limit - f.w.capacity : 0;
					assert_int_equal(floor, want < pos0 ? want : pos0);
				}
			}
		}
		while (unread <= f.w.head) {
			expect_message(&f, unread, lens[unread % 4096]);
			unread++;
		}
		expect_empty(&f);
		ring_teardown(&f);
	}
}

/* A reader that keeps within half the ring of the writer, whatever the
 * sizes, loses nothing for many laps. */
static void test_wrap_around(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	for (uint64_t seq = 1; seq <= 20000; seq++) {
		write_one(&f);
		if (seq % 2)
			continue;
		for (uint64_t s = seq - 1; s <= seq; s++)
			expect_message(&f, s, (uint32_t)(s * 7 % (f.cap + 1)));
		expect_empty(&f);
	}
	ring_teardown(&f);
}

/* Any start sequence (a re-created ring continues an old stream). */
static void test_start_sequence(void **state)
{
	(void)state;
	static const uint64_t starts[] = {1, 2, 1000, 1ull << 40, RING_START_MAX - 5};
	for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
		struct ring_fixture f;
		ring_setup_at(&f, 4, 64, starts[i]);
		expect_empty(&f);
		for (int n = 0; n < 100; n++) {
			uint64_t seq = write_len(&f, (uint32_t)n % (f.cap + 1));
			assert_int_equal(seq, starts[i] + (uint64_t)n);
			expect_message(&f, seq, (uint32_t)n % (f.cap + 1));
		}
		ring_teardown(&f);
	}
	/* Starts no honest publisher offers end the stream at once. */
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	write_len(&f, 3);
	static const struct { uint64_t seq, pos; } bad[] = {
		{0, 0}, {RING_START_MAX, 0}, {UINT64_MAX, 0}, {1, 4}, {1, 1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct ring_reader r;
		struct ring_record rec;
		ki_ring_reader_init(&r, f.base, 4, 64, bad[i].seq, bad[i].pos);
		assert_int_equal(ki_ring_pending(&r), 0);
		assert_int_equal(ki_ring_read(&r, f.buf, &rec), RING_EMPTY);
	}
	ring_teardown(&f);
}

/* A subscriber told "your stream starts at target" walks there from the
 * ring's first record (position 0), through records of every size and
 * pads, on several geometries and start sequences: it then reads target,
 * nothing before it, nothing lost. */
static void test_seek_walks_to_start(void **state)
{
	(void)state;
	static const struct { uint32_t slots, size; uint64_t start; } g[] = {
		{2, 64, 1}, {4, 64, 1}, {8, 128, 1000}, {16, 256, 1ull << 40},
	};
	for (size_t i = 0; i < sizeof g / sizeof *g; i++) {
		struct ring_fixture f;
		ring_setup_at(&f, g[i].slots, g[i].size, g[i].start);
		/* Records written while nobody reads: less than a lap's worth. */
		uint64_t n = 0;
		while (f.w.pos + RING_RECORD_HEADER + f.cap + 8 < f.w.capacity) {
			write_one(&f);
			n++;
		}
		for (uint64_t k = 0; k <= n; k++) {
			uint64_t target = g[i].start + k;
			struct ring_reader r;
			ki_ring_reader_init(&r, f.base, g[i].slots, g[i].size, g[i].start, 0);
			assert_int_equal(ki_ring_seek(&r, target), 0);
			assert_int_equal(r.next, target);
			f.r = r;
			if (k < n)
				expect_message(&f, target,
					       (uint32_t)(target * 7 % (f.cap + 1)));
			else
				expect_empty(&f);
		}
		/* Seeking to where we already are, or behind it, moves nothing
		 * and counts what lies between as lost (a later ring's start). */
		assert_int_equal(ki_ring_seek(&f.r, f.r.next), 0);
		if (f.r.next > g[i].start)
			assert_int_equal(ki_ring_seek(&f.r, f.r.next - 1), 1);
		ring_teardown(&f);
	}
}

/* The ring went round since the publisher named target (a hand-over
 * queued behind a slow link): the walk takes the publisher's hint, counts
 * exactly the overwritten records from target on as lost, and reading
 * goes on from there in order. */
static void test_seek_past_overrun(void **state)
{
	(void)state;
	static const uint32_t slots[] = {2, 4, 16};
	for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
		struct ring_fixture f;
		ring_setup(&f, slots[i], 64);
		while (f.w.pos < 3 * f.w.capacity)
			write_one(&f);
		uint64_t target = 2;
		struct ring_reader r;
		ki_ring_reader_init(&r, f.base, slots[i], 64, 1, 0);
		uint64_t lost = ki_ring_seek(&r, target);
		assert_true(lost > 0);
		assert_int_equal(r.next, target + lost);
		f.r = r;
		for (uint64_t seq = r.next; seq <= f.w.head; seq++)
			expect_message(&f, seq, (uint32_t)(seq * 7 % (f.cap + 1)));
		expect_empty(&f);
		ring_teardown(&f);
	}
}

/* A late joiner named a target the ring still holds, but the ring went
 * round since its first record (position 0), and the publisher went on
 * into later segments before the joiner walked there (its hand-over took
 * a moment to be read): the walk starts at the oldest record the ring
 * holds (the replay index), not at the publisher's newest hint, so every
 * record from target on is read and none is counted lost. (It used to
 * restart at the hint and report up to a lap of records that were never
 * written over: a reliable subscriber, which the publisher was holding
 * back for, was told it lost them.) A target older than anything held
 * counts exactly the records no longer there. */
static uint64_t record_size_of(uint32_t len)
{
	return (RING_RECORD_HEADER + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

/* A ring of slots x 256 bytes gone round three times in 40-byte messages,
 * nobody reading. */
static void ring_setup_lapped(struct ring_fixture *f, uint32_t slots)
{
	ring_setup(f, slots, 256);
	while (f->w.pos < 3 * f->w.capacity)
		write_len(f, 40);
}

static void test_seek_lapped_ring_reads_what_it_holds(void **state)
{
	(void)state;
	static const uint32_t slots[] = {4, 16, 64};
	for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
		struct ring_fixture f;
		ring_setup_lapped(&f, slots[i]);
		/* Half a lap more: the hint is then well past the target. */
		uint64_t target = f.w.head + 1, at = f.w.pos;
		while (f.w.pos < at + f.w.capacity / 2)
			write_len(&f, 40);
		struct ring_reader r;
		ki_ring_reader_init(&r, f.base, slots[i], 256, 1, 0);
		assert_int_equal(ki_ring_seek(&r, target), 0);
		assert_int_equal(r.next, target);
		f.r = r;
		for (uint64_t seq = target; seq <= f.w.head; seq++)
			expect_message(&f, seq, 40);
		expect_empty(&f);
		/* A target a lap and more back: exactly what is gone is lost. */
		ki_ring_reader_init(&r, f.base, slots[i], 256, 1, 0);
		uint64_t old = f.w.head - 2 * (f.w.capacity / record_size_of(40));
		uint64_t lost = ki_ring_seek(&r, old);
		uint64_t held = f.w.head + 1 - r.next;
		assert_int_equal(old + lost, r.next);
		/* The oldest record held: no more than a segment beyond the
		 * oldest boundary a reader is not overrun at. */
		assert_true(held * record_size_of(40) + f.w.capacity / RING_SEGMENTS +
				    record_size_of(40) >=
			    f.w.capacity);
		ring_teardown(&f);
	}
}

/* The race of the test above: a writer (thread) that holds back for a
 * joiner as a publisher holds back for a reliable subscriber. It names a
 * target (its next seq) and stands still once writing more would overrun
 * the target's record, writing flat out until then; the joiner walks from
 * position 0 to the target meanwhile, while the writer is still moving.
 * However the walk and the writer's segments interleave, the target is
 * held, so the joiner must reach it with nothing lost. (A 4 KiB ring,
 * segments of 8 records: in a 1 KiB one, segments of 2, a writer thread
 * flat out can move the index between every two looks at it, 256 times
 * running, and the walk then takes the hint: a few lost in 2,000 joins,
 * about once in 20 runs.) */
struct held_join {
	struct ring_fixture f;
	_Atomic uint64_t target, hold_pos; /* 0: no target named yet */
	_Atomic int joined, done;
};

static void *held_writer(void *arg)
{
	struct held_join *j = arg;
	uint8_t p[64];
	memset(p, 7, sizeof p);
	for (int round = 0; round < 2000; round++) {
		/* A lap or two first, at a different offset each round. */
		for (int i = 0, n = 40 + round % 37; i < n; i++)
			ki_ring_write(&j->f.w, NULL, 0, p, 40, 0, 1);
		atomic_store(&j->hold_pos, j->f.w.pos);
		atomic_store(&j->target, j->f.w.head + 1);
		while (!atomic_load(&j->joined)) {
			if (ki_ring_reader_floor(&j->f.w, 40) > atomic_load(&j->hold_pos))
				continue; /* the joiner's record is in the way: wait */
			ki_ring_write(&j->f.w, NULL, 0, p, 40, 0, 1);
		}
		atomic_store(&j->target, 0);
		atomic_store(&j->joined, 0);
	}
	atomic_store(&j->done, 1);
	return NULL;
}

static void test_seek_while_writer_runs_to_the_hold(void **state)
{
	(void)state;
	struct held_join *j = calloc(1, sizeof *j);
	assert_non_null(j);
	ring_setup(&j->f, 16, 256);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, held_writer, j), 0);
	uint64_t joins = 0, lost = 0;
	while (!atomic_load(&j->done)) {
		uint64_t target = atomic_load(&j->target);
		if (!target)
			continue;
		struct ring_reader r;
		ki_ring_reader_init(&r, j->f.base, 16, 256, 1, 0);
		lost += ki_ring_seek(&r, target);
		if (r.next != target)
			lost++;
		joins++;
		atomic_store(&j->joined, 1);
		while (atomic_load(&j->target) == target && !atomic_load(&j->done))
			;
	}
	pthread_join(th, NULL);
	print_message("# %llu joins, %llu messages reported lost\n", (unsigned long long)joins,
		      (unsigned long long)lost);
	assert_int_equal(lost, 0);
	ring_teardown(&j->f);
	free(j);
}

/* A reliable joiner that asked for replay: the publisher, not yet told
 * where the joiner reads, holds back only for its live start (target),
 * and writes over the replayed records meanwhile, up to the hold. The
 * overrun reader must go on from the oldest record held, not from the
 * hint: every live message from target on is read, only replayed ones
 * are lost, and counted exactly. (It took the hint and skipped live
 * messages still held: published after kite_subscribe_opts() returned,
 * reported lost to a reliable subscriber.) */
static void test_replayed_overrun_keeps_live_start(void **state)
{
	(void)state;
	static const uint32_t slots[] = {4, 16, 64};
	for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) {
		struct ring_fixture f;
		ring_setup_lapped(&f, slots[i]);
		uint64_t target = f.w.head + 1, hold = f.w.pos;
		ki_ring_reader_init(&f.r, f.base, slots[i], 256, 1, 0);
		assert_int_equal(ki_ring_replay(&f.r, target, UINT64_MAX, 0), 0);
		uint64_t first = f.r.next;
		assert_true(first < target);
		/* The publisher runs to its hold before the reader reads. */
		while (ki_ring_reader_floor(&f.w, 40) <= hold && f.w.pos < hold + f.w.capacity)
			write_len(&f, 40);
		uint64_t lost = 0, expect = first;
		struct ring_record rec;
		for (;;) {
			enum ring_result res = ki_ring_read(&f.r, f.buf, &rec);
			if (res == RING_EMPTY)
				break;
			if (res == RING_LOST) {
				lost += rec.lost;
				expect += rec.lost;
				continue;
			}
			assert_int_equal(rec.seq, expect);
			check_bytes(f.buf, rec.len, rec.seq, 40);
			expect++;
		}
		assert_int_equal(expect, f.w.head + 1);
		/* Only replayed ones lost: the first read met a later lap. */
		assert_true(lost > 0);
		assert_true(first + lost <= target);
		ring_teardown(&f);
	}
}

/* A ring that does not hold what its offer named (target never written,
 * first record not the offered first seq) ends its stream instead of
 * delivering what came before target; a record that lies on the way costs
 * what a read would (a restart at the hint, counted), never a seq before
 * target. */
static void test_seek_liars(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	for (int i = 0; i < 5; i++)
		write_one(&f);
	struct ring_record rec;
	struct ring_reader r;
	ki_ring_reader_init(&r, f.base, 4, 64, 1, 0);
	assert_int_equal(ki_ring_seek(&r, 9), 0); /* beyond what was written */
	assert_int_equal(ki_ring_read(&r, f.buf, &rec), RING_EMPTY);
	assert_int_equal(ki_ring_pending(&r), 0);
	ki_ring_reader_init(&r, f.base, 4, 64, 7, 0); /* the ring starts at 1 */
	assert_int_equal(ki_ring_seek(&r, 9), 0);
	assert_int_equal(ki_ring_pending(&r), 0);
	atomic_store(&record_at_off(&f, 0)->len, 5000); /* past the ring */
	ki_ring_reader_init(&r, f.base, 4, 64, 1, 0);
	uint64_t lost = ki_ring_seek(&r, 3); /* as a read: to the hint, or the end */
	assert_true(r.next >= 3);
	if (r.next < RING_SEQ_END)
		assert_int_equal(lost, r.next - 3);
	ring_teardown(&f);
}

/* A metadata block in front of the payload travels with it. */
static void test_metadata_block(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 128);
	uint8_t meta[40], payload[96];
	for (size_t i = 0; i < sizeof meta; i++)
		meta[i] = (uint8_t)(0xa0 + i);
	fill_bytes(payload, 1, sizeof payload);
	for (uint16_t m = 0; m <= 40; m += 8) {
		uint32_t len = f.cap - m;
		uint64_t seq = ki_ring_write(&f.w, meta, m, payload, len, 0, 9);
		struct ring_record rec;
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
		assert_int_equal(rec.seq, seq);
		assert_int_equal(rec.meta_len, m);
		assert_int_equal(rec.len, len);
		assert_memory_equal(f.buf, meta, m);
		assert_memory_equal(f.buf + m, payload, len);
	}
	ring_teardown(&f);
}

/* Random write bursts and read bursts: every message is either received,
 * in order with its own payload, or counted lost, exactly once. A reader
 * whose position the writer's limit has not passed loses nothing. */
static void overrun_run(uint32_t slots, uint32_t slot_size, uint64_t seed)
{
	struct ring_fixture f;
	ring_setup(&f, slots, slot_size);
	uint64_t rng = seed, received = 0, lost = 0, expect = 1;
	struct ring_record rec;
	for (int round = 0; round < 400; round++) {
		uint64_t writes = test_rand(&rng) % (3 * slots);
		uint64_t reads = test_rand(&rng) % (3 * slots);
		for (uint64_t i = 0; i < writes; i++)
			write_one(&f);
		int may_lose = f.w.limit > f.r.pos + f.w.capacity;
		for (uint64_t i = 0; i < reads; i++) {
			enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
			if (r == RING_EMPTY) {
				assert_int_equal(f.r.next, f.w.head + 1);
				assert_int_equal(f.r.pos, f.w.pos);
				break;
			}
			if (r == RING_LOST) {
				if (!may_lose)
					fail_msg("seed %llu: lost %llu while not overrun",
						 (unsigned long long)seed,
						 (unsigned long long)rec.lost);
				assert_true(rec.lost > 0);
				lost += rec.lost;
				expect += rec.lost;
				may_lose = 0; /* restarted recently: not again this burst */
				continue;
			}
			assert_int_equal(r, RING_MESSAGE);
			if (rec.seq != expect)
				fail_msg("seed %llu: got seq %llu, expected %llu",
					 (unsigned long long)seed, (unsigned long long)rec.seq,
					 (unsigned long long)expect);
			check_payload(f.buf, rec.len, rec.seq, f.cap);
			expect++;
			received++;
		}
	}
	for (;;) { /* drain */
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
		for (uint64_t seed = 1; seed <= 25; seed++) {
			overrun_run(geometry[g], 64, seed * 0x9e3779b97f4a7c15ull + g);
			overrun_run(geometry[g], 128, seed * 0x2545f4914f6cdd1dull + g);
		}
}

/* The reader copies a record, then learns the writer had lapped it during
 * the copy: the copy is dropped and counted, never delivered. */
static void test_overrun_during_copy(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	uint64_t s1 = write_len(&f, f.cap);
	/* The writer announces a lap past record 1 (as it does just before it
	 * writes over it) without touching record 1's bytes yet. */
	struct ring_header *h = hdr(&f);
	uint64_t lap = f.w.capacity + f.w.segment;
	atomic_store(&h->hint_seq, s1 + 9);
	atomic_store(&h->hint_pos, f.w.pos + lap - f.w.segment);
	atomic_store(&h->hint_gen, 2);
	atomic_store(&h->limit, lap);
	struct ring_record rec;
	assert_int_equal(ki_ring_pending(&f.r), 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, 9);
	assert_int_equal(f.r.next, s1 + 9);
	ring_teardown(&f);
}

/* Overrun while the publisher is changing its hint (hint_gen odd): nothing
 * is ready, so a reader may sleep (a publisher that never finishes the hint
 * must not keep it awake); once the hint is whole the loss is exact. */
static void test_overrun_hint_being_changed(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 4, 64);
	uint64_t s1 = write_len(&f, 8);
	struct ring_header *h = hdr(&f);
	uint64_t lap = f.w.capacity + f.w.segment;
	atomic_store(&h->hint_gen, 7);
	atomic_store(&h->hint_seq, s1 + 5);
	atomic_store(&h->hint_pos, f.w.pos + lap - f.w.segment);
	atomic_store(&h->limit, lap);
	struct ring_record rec;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(ki_ring_pending(&f.r), 0);
		assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	}
	assert_int_equal(f.r.next, s1);
	atomic_store(&h->hint_gen, 8);
	assert_int_equal(ki_ring_pending(&f.r), 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
	assert_int_equal(rec.lost, 5);
	assert_int_equal(f.r.next, s1 + 5);
	ring_teardown(&f);
}

/* A writer thread laps a 512-byte ring as fast as it can while a reader
 * thread copies: every message delivered is the one its seq says (length
 * and every byte), never a mix of two laps, and delivered + lost is
 * exactly what was written. */
#define TORN_MESSAGES 400000

struct torn_run {
	struct ring_fixture f;
	_Atomic int done;
};

static uint32_t torn_len(uint64_t seq, uint32_t cap)
{
	return (uint32_t)(seq * 13 % (cap + 1));
}

static void *torn_writer(void *arg)
{
	struct torn_run *t = arg;
	uint8_t p[4096];
	for (uint64_t seq = 1; seq <= TORN_MESSAGES; seq++) {
		uint32_t len = torn_len(seq, t->f.cap);
		fill_bytes(p, seq, len);
		ki_ring_write(&t->f.w, NULL, 0, p, len, 0, seq);
		/* Slow enough that the reader keeps up now and then. */
		for (volatile int i = 0; i < (int)(seq % 64) * 8; i++)
			;
	}
	atomic_store(&t->done, 1);
	return NULL;
}

static void torn_round(void)
{
	struct torn_run t;
	atomic_init(&t.done, 0);
	ring_setup(&t.f, 4, 128);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, torn_writer, &t), 0);
	uint64_t received = 0, lost = 0, expect = 1, torn = 0;
	struct ring_record rec;
	for (;;) {
		int finished = atomic_load(&t.done);
		enum ring_result r = ki_ring_read(&t.f.r, t.f.buf, &rec);
		if (r == RING_EMPTY) {
			if (finished && !ki_ring_pending(&t.f.r))
				break;
			continue;
		}
		if (r == RING_LOST) {
			lost += rec.lost;
			expect += rec.lost;
			continue;
		}
		uint8_t want[4096];
		uint32_t len = torn_len(rec.seq, t.f.cap);
		fill_bytes(want, rec.seq, len);
		if (rec.seq != expect || rec.len != len || rec.timestamp_ns != rec.seq ||
		    memcmp(t.f.buf, want, len))
			torn++;
		expect = rec.seq + 1;
		received++;
	}
	pthread_join(th, NULL);
	print_message("# %d written: %llu delivered, %llu reported lost, %llu torn\n",
		      TORN_MESSAGES, (unsigned long long)received,
		      (unsigned long long)lost, (unsigned long long)torn);
	assert_int_equal(torn, 0);
	assert_int_equal(received + lost, TORN_MESSAGES);
	ring_teardown(&t.f);
}

static void test_concurrent_overrun_never_torn(void **state)
{
	(void)state;
	for (int round = 0; round < 4; round++)
		torn_round();
}

static void test_large_reference(void **state)
{
	(void)state;
	struct ring_fixture f;
	ring_setup(&f, 8, 64);
	struct ring_large ref = {77, 0xffffffffu};
	uint64_t seq = ki_ring_write(&f.w, NULL, 0, &ref, sizeof ref, REC_LARGE, 5);
	struct ring_record rec;
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_MESSAGE);
	assert_int_equal(rec.seq, seq);
	assert_int_equal(rec.flags, REC_LARGE);
	assert_int_equal(rec.len, 0xffffffffu);
	assert_int_equal(rec.large_id, 77);
	/* A reference to more than a message may hold is a lie. */
	ref.len = KITE_MSG_MAX + 1;
	ki_ring_write(&f.w, NULL, 0, &ref, sizeof ref, REC_LARGE, 5);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	assert_int_equal(f.r.next, RING_SEQ_END);
	ring_teardown(&f);
}

/* Replay (ki_ring_replay): where each record starts, by the layout rule
 * (records end to end, 8-aligned, a record that does not fit the rest of a
 * lap goes to the next lap's start, a tail too short for a header skipped),
 * kept by the test itself so the ring's own index is checked against it. */
struct replay_log {
	uint64_t first_seq;
	uint64_t n;
	uint64_t start[4096]; /* start[i]: position of record first_seq + i */
};

static uint64_t write_logged(struct ring_fixture *f, struct replay_log *log, uint32_t len)
{
	uint64_t size = (RING_RECORD_HEADER + len + 7) & ~7ull;
	uint64_t pos = f->w.pos, off = f->w.off;
	if (f->w.capacity - off < size)
		pos += f->w.capacity - off;
	uint64_t seq = write_len(f, len);
	assert_true(log->n < sizeof log->start / sizeof *log->start);
	assert_int_equal(seq, log->first_seq + log->n);
	log->start[log->n++] = pos;
	return seq;
}

/* The oldest seq a reader may still take: the first record starting at or
 * after limit - capacity (every record while position 0 is not overrun). */
static uint64_t oldest_held(struct ring_fixture *f, const struct replay_log *log)
{
	uint64_t limit = atomic_load(&hdr(f)->limit);
	uint64_t from = limit > f->w.capacity ? limit - f->w.capacity : 0;
	for (uint64_t i = 0; i < log->n; i++)
		if (log->start[i] >= from)
			return log->first_seq + i;
	return log->first_seq + log->n;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Replay from a ring after `count` records of `len` bytes: for N = 0, 1,
 * 2, what the ring holds, one more, and no limit, the reader starts at
 * max(target - N, oldest held) and reads every record from there to the
 * head, in order, whole. */
static void replay_case(uint32_t slots, uint32_t slot_size, uint64_t start,
			uint64_t count, int len_kind)
{
	struct ring_fixture f;
	static struct replay_log log;
	ring_setup_at(&f, slots, slot_size, start);
	log.first_seq = start;
	log.n = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t len = len_kind == 0 ? 0 : len_kind == 1 ? f.cap
				: (uint32_t)((start + i) * 7 % (f.cap + 1));
		write_logged(&f, &log, len);
	}
	uint64_t target = f.w.head + 1, held = oldest_held(&f, &log);
	uint64_t n_held = target - held;
	const uint64_t ns[] = {0, 1, 2, n_held, n_held + 1, UINT64_MAX};
	for (size_t j = 0; j < sizeof ns / sizeof *ns; j++) {
		struct ring_reader r;
		ki_ring_reader_init(&r, f.base, slots, slot_size, start, 0);
		assert_int_equal(ki_ring_replay(&r, target, ns[j], 0), 0);
		uint64_t want = ns[j] >= target - held ? held : target - ns[j];
		if (r.next != want)
			fail_msg("%u x %u, %llu records of kind %d, N %llu: starts at "
				 "%llu, want %llu (held from %llu, target %llu)", slots,
				 slot_size, (unsigned long long)count, len_kind,
				 (unsigned long long)ns[j], (unsigned long long)r.next,
				 (unsigned long long)want, (unsigned long long)held,
				 (unsigned long long)target);
		f.r = r;
		for (uint64_t seq = want; seq < target; seq++) {
			uint32_t len = len_kind == 0 ? 0 : len_kind == 1 ? f.cap
					: (uint32_t)(seq * 7 % (f.cap + 1));
			expect_message(&f, seq, len);
		}
		expect_empty(&f);
	}
	/* By time: records stamped at or after since_ns (seq * 1000 here),
	 * and both limits together: the later start wins. */
	for (uint64_t from = held > 2 ? held - 2 : 1; from <= target + 1; from++) {
		struct ring_reader r;
		ki_ring_reader_init(&r, f.base, slots, slot_size, start, 0);
		assert_int_equal(ki_ring_replay(&r, target, UINT64_MAX, from * 1000), 0);
		assert_int_equal(r.next, from > target ? target : max_u64(from, held));
		ki_ring_reader_init(&r, f.base, slots, slot_size, start, 0);
		assert_int_equal(ki_ring_replay(&r, target, 3, from * 1000), 0);
		assert_int_equal(r.next, from > target ? target
				 : max_u64(max_u64(from, held), target > 3 ? target - 3 : 0));
	}
	ring_teardown(&f);
}

static void test_replay_counts_at_edges(void **state)
{
	(void)state;
	static const struct { uint32_t slots, size; uint64_t start; } g[] = {
		{2, 64, 1}, {4, 64, 1}, {8, 128, 1000}, {16, 256, 1ull << 40}, {64, 64, 7},
	};
	for (size_t i = 0; i < sizeof g / sizeof *g; i++)
		for (int kind = 0; kind < 3; kind++) {
			/* Nothing, one, up to a lap and more: every count up to
			 * three laps of the smallest records. */
			uint64_t lap = (uint64_t)g[i].slots * g[i].size / RING_RECORD_HEADER;
			for (uint64_t count = 0; count <= 3 * lap + 2; count++)
				replay_case(g[i].slots, g[i].size, g[i].start, count, kind);
		}
}

/* After wrap-around the ring still gives back most of a lap: at least
 * everything written since the oldest boundary readers may take
 * (7 / 8 of the ring, less one record). */
static void test_replay_after_wrap_holds_most_of_a_lap(void **state)
{
	(void)state;
	struct ring_fixture f;
	static struct replay_log log;
	ring_setup(&f, 64, 64); /* 4 KiB: 128 records of 32 bytes a lap */
	log.first_seq = 1;
	log.n = 0;
	for (int i = 0; i < 1000; i++)
		write_logged(&f, &log, 8);
	struct ring_reader r;
	ki_ring_reader_init(&r, f.base, 64, 64, 1, 0);
	assert_int_equal(ki_ring_replay(&r, f.w.head + 1, UINT64_MAX, 0), 0);
	uint64_t replayed = f.w.head + 1 - r.next;
	print_message("# 4 KiB ring of 32-byte records: %llu of 128 replayed\n",
		      (unsigned long long)replayed);
	assert_true(replayed >= 128 * 7 / 8 - 1);
	assert_true(replayed <= 128);
	ring_teardown(&f);
}

/* A replay index that lies (entries out of the ring, unaligned, before the
 * ring's first seq, at or past the target, torn, pointing at garbage)
 * costs at most the replay: the reader falls back to the plain start or
 * walks only honest records, never delivers a seq before the ring's first
 * or at the wrong place, and never reads outside the ring (ASan). */
static void test_replay_index_liars(void **state)
{
	(void)state;
	for (int lie = 0; lie < 7; lie++) {
		struct ring_fixture f;
		ring_setup_at(&f, 4, 64, 100);
		for (int i = 0; i < 40; i++)
			write_len(&f, 8);
		struct ring_header *h = hdr(&f);
		uint64_t limit = atomic_load(&h->limit), cap = f.w.capacity;
		unsigned slot = (unsigned)((limit - cap) / f.w.segment % RING_SEGMENTS);
		switch (lie) {
		case 0: atomic_store(&h->index[slot].pos, limit + 8); break;
		case 1: atomic_store(&h->index[slot].pos, atomic_load(&h->index[slot].pos) + 3); break;
		case 2: atomic_store(&h->index[slot].seq, 5); break;
		case 3: atomic_store(&h->index[slot].seq, f.w.head + 5); break;
		case 4: atomic_store(&h->index_gen, 7); break; /* forever "changing" */
		case 5: atomic_store(&h->index[slot].seq, atomic_load(&h->index[slot].seq) - 1); break;
		case 6: atomic_store(&h->index[slot].pos, limit - cap - 8); break;
		}
		uint64_t target = f.w.head + 1;
		struct ring_reader r;
		ki_ring_reader_init(&r, f.base, 4, 64, 100, 0);
		uint64_t lost = ki_ring_replay(&r, target, UINT64_MAX, 0);
		f.r = r;
		if (r.next < RING_SEQ_END) {
			assert_true(r.next >= 100);
			assert_int_equal(lost, r.next > target ? r.next - target : 0);
			struct ring_record rec;
			enum ring_result res;
			uint64_t expect = r.next;
			while ((res = ki_ring_read(&f.r, f.buf, &rec)) != RING_EMPTY) {
				if (res == RING_LOST) {
					expect += rec.lost;
					continue;
				}
				assert_int_equal(rec.seq, expect);
				check_bytes(f.buf, rec.len, rec.seq, 8);
				expect++;
			}
		}
		ring_teardown(&f);
	}
}

/* A writer laps a small ring as fast as it can while readers join with a
 * replay and read: every message is whole and the one its seq says,
 * sequence numbers only go up, and every gap between two delivered
 * messages is exactly the loss reported between them. */
#define REPLAY_FLOOD_MESSAGES 300000

static void *replay_flooder(void *arg)
{
	struct torn_run *t = arg;
	uint8_t p[4096];
	for (uint64_t seq = 1; seq <= REPLAY_FLOOD_MESSAGES; seq++) {
		uint32_t len = torn_len(seq, t->f.cap);
		fill_bytes(p, seq, len);
		ki_ring_write(&t->f.w, NULL, 0, p, len, 0, seq);
	}
	atomic_store(&t->done, 1);
	return NULL;
}

static void test_replay_while_flooded(void **state)
{
	(void)state;
	struct torn_run t;
	atomic_init(&t.done, 0);
	ring_setup(&t.f, 8, 128);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, replay_flooder, &t), 0);
	uint64_t joins = 0, received = 0, lost = 0, torn = 0, gaps = 0;
	while (!atomic_load(&t.done)) {
		/* The offer names the head as the publisher saw it. */
		uint64_t target = __atomic_load_n(&t.f.w.head, __ATOMIC_RELAXED) + 1;
		struct ring_reader r;
		ki_ring_reader_init(&r, t.f.base, 8, 128, 1, 0);
		uint64_t first_lost = ki_ring_replay(&r, target, 20, 0);
		if (r.next >= RING_SEQ_END) {
			torn++; /* an honest ring never ends a replay */
			break;
		}
		joins++;
		lost += first_lost;
		uint64_t expect = r.next;
		struct ring_record rec;
		for (int i = 0; i < 200; i++) {
			enum ring_result res = ki_ring_read(&r, t.f.buf, &rec);
			if (res == RING_EMPTY)
				continue;
			if (res == RING_LOST) {
				lost += rec.lost;
				expect += rec.lost;
				gaps++;
				continue;
			}
			uint8_t want[4096];
			uint32_t len = torn_len(rec.seq, t.f.cap);
			fill_bytes(want, rec.seq, len);
			if (rec.seq != expect || rec.len != len || rec.timestamp_ns != rec.seq ||
			    memcmp(t.f.buf, want, len))
				torn++;
			expect = rec.seq + 1;
			received++;
		}
	}
	pthread_join(th, NULL);
	print_message("# %llu joins with replay under a flood: %llu delivered, %llu "
		      "lost in %llu gaps, %llu torn or out of order\n",
		      (unsigned long long)joins, (unsigned long long)received,
		      (unsigned long long)lost, (unsigned long long)gaps,
		      (unsigned long long)torn);
	assert_int_equal(torn, 0);
	assert_true(joins > 0);
	ring_teardown(&t.f);
}

static void test_geometry_table(void **state)
{
	(void)state;
	static const struct {
		uint32_t slots, size;
		int ok;
		uint64_t pool; /* the large-message pool after the records */
	} t[] = {
		{2, 64, 1, 512}, {1024, 2048, 1, 8 << 20}, {RING_MAX_SLOTS, 64, 1, 128 << 20},
		{2, RING_MAX_SLOT_SIZE, 1, 8 << 20}, {8, 128, 1, 4096},
		{1u << 16, 2048, 1, 128 << 20}, /* 128 MiB: inline 16 MiB, pool 32 */
		{1u << 17, 2048, 1, 0}, /* 256 MiB: the pool would add little */
		{1u << 18, 2048, 1, 0},
		{0, 64, 0, 0}, {1, 64, 0, 0}, {3, 64, 0, 0}, {1000, 64, 0, 0},
		{RING_MAX_SLOTS * 2, 64, 0, 0}, {0x80000000u, 64, 0, 0}, {0xffffffffu, 64, 0, 0},
		{8, 0, 0, 0}, {8, 32, 0, 0}, {8, 96, 0, 0}, {8, 100, 0, 0}, {8, 65, 0, 0},
		{8, RING_MAX_SLOT_SIZE + 64, 0, 0}, {8, 0xffffffc0u, 0, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		size_t bytes = 0;
		int rc = ki_ring_geometry_valid(t[i].slots, t[i].size, &bytes);
		if ((rc == 0) != t[i].ok)
			fail_msg("geometry %u x %u: got %d", t[i].slots, t[i].size, rc);
		if (t[i].ok)
			assert_int_equal(bytes, RING_HEADER_SIZE + (size_t)t[i].slots * t[i].size +
						       t[i].pool);
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
	h->version = 1; /* the slotted ring of before */
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

/* One lie in record 2 of a fresh ring; what the reader does next. */
typedef void (*lie_fn)(struct ring_fixture *f, struct record_header *r);

static void lie_len(struct ring_fixture *f, struct record_header *r)
{
	atomic_store(&r->len, f->cap + 1);
}
static void lie_len_huge(struct ring_fixture *f, struct record_header *r)
{
	(void)f;
	atomic_store(&r->len, 0xffffffffu);
	atomic_store(&r->meta_len, 0xffff);
}
static void lie_meta(struct ring_fixture *f, struct record_header *r)
{
	atomic_store(&r->meta_len, (uint16_t)(f->cap - atomic_load(&r->len) + 1));
}
static void lie_flags(struct ring_fixture *f, struct record_header *r)
{
	(void)f;
	atomic_store(&r->flags, 0x80);
}
static void lie_pad_large(struct ring_fixture *f, struct record_header *r)
{
	(void)f;
	atomic_store(&r->flags, REC_PAD | REC_LARGE);
}
static void lie_large_len(struct ring_fixture *f, struct record_header *r)
{
	(void)f;
	atomic_store(&r->flags, REC_LARGE); /* its payload is not 16 bytes */
}

static void test_lying_records(void **state)
{
	(void)state;
	static const lie_fn lies[] = {lie_len, lie_len_huge, lie_meta, lie_flags,
				      lie_pad_large, lie_large_len};
	for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
		for (int hint_ahead = 0; hint_ahead < 2; hint_ahead++) {
			struct ring_fixture f;
			ring_setup(&f, 8, 64);
			write_len(&f, 5);
			uint64_t pos2 = f.w.pos;
			write_len(&f, 9);
			lies[i](&f, record_at_off(&f, pos2));
			expect_message(&f, 1, 5);
			struct ring_record rec;
			if (!hint_ahead) {
				/* Nowhere to go: the stream ends, quietly. */
				assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
				assert_int_equal(f.r.next, RING_SEQ_END);
				expect_empty(&f);
			} else {
				/* The writer moved on a segment: the lie costs the
				 * messages up to its hint, counted. */
				while (f.w.limit <= f.w.segment * 2)
					write_len(&f, 9);
				uint64_t hint = atomic_load(&hdr(&f)->hint_seq);
				assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_LOST);
				assert_int_equal(rec.lost, hint - 2);
				for (uint64_t s = hint; s <= f.w.head; s++)
					expect_message(&f, s, 9);
				expect_empty(&f);
			}
			ring_teardown(&f);
		}
	}
}

/* Seq words, limits and hints that lie: each read returns promptly, the
 * reader never goes back, never copies more than its inline maximum, and
 * runs out of things to report. */
static void test_lying_limits_and_hints(void **state)
{
	(void)state;
	struct ring_fixture f;
	struct ring_record rec;
	/* A record whose seq word never comes (a writer that died mid-write):
	 * the reader waits on it, counting nothing. */
	ring_setup(&f, 8, 64);
	write_len(&f, 4);
	atomic_store(&record_at_off(&f, 0)->seq, 0);
	expect_empty(&f);
	assert_int_equal(f.r.next, 1);
	/* A limit far ahead and a hint behind: the stream ends. */
	atomic_store(&hdr(&f)->limit, UINT64_MAX);
	assert_int_equal(ki_ring_pending(&f.r), 1);
	assert_int_equal(ki_ring_read(&f.r, f.buf, &rec), RING_EMPTY);
	expect_empty(&f);
	ring_teardown(&f);

	static const uint64_t hints[] = {UINT64_MAX, UINT64_MAX - 1, 1ull << 63,
					 (1ull << 63) - 1, (1ull << 63) - 5, 1ull << 62, 3};
	static const uint64_t positions[] = {8, 12, 1ull << 40, UINT64_MAX - 7, 64 * 7 + 8};
	for (size_t i = 0; i < sizeof hints / sizeof *hints; i++)
		for (size_t p = 0; p < sizeof positions / sizeof *positions; p++) {
			ring_setup(&f, 8, 64);
			struct ring_header *h = hdr(&f);
			/* Every offset holds a seq word claiming the hint's seq,
			 * a little after it, or garbage. */
			for (uint64_t off = 0; off + RING_RECORD_HEADER <= f.w.capacity; off += 8) {
				struct record_header *r = record_at_off(&f, off);
				atomic_store(&r->seq, hints[i] + off % 3);
				atomic_store(&r->len, (uint32_t)off);
				atomic_store(&r->flags, off % 24 ? 0 : REC_PAD);
			}
			atomic_store(&h->hint_seq, hints[i]);
			atomic_store(&h->hint_pos, positions[p]);
			atomic_store(&h->limit, UINT64_MAX);
			int steps = 0;
			for (;;) {
				uint64_t before = f.r.next;
				enum ring_result r = ki_ring_read(&f.r, f.buf, &rec);
				if (r == RING_EMPTY && !ki_ring_pending(&f.r))
					break;
				if (r == RING_MESSAGE)
					assert_true(rec.len <= f.cap);
				if (r != RING_EMPTY && f.r.next <= before)
					fail_msg("hint %llu at %llu: next went from %llu to %llu",
						 (unsigned long long)hints[i],
						 (unsigned long long)positions[p],
						 (unsigned long long)before,
						 (unsigned long long)f.r.next);
				if (++steps > 64)
					fail_msg("hint %llu at %llu: no end of reports",
						 (unsigned long long)hints[i],
						 (unsigned long long)positions[p]);
			}
			ring_teardown(&f);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_first_lap_pages_made_ahead),
		cmocka_unit_test(test_first_lap_bounded_every_write),
		cmocka_unit_test(test_first_lap_without_populate),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_stamp_now),
		cmocka_unit_test(test_every_size_wraps),
		cmocka_unit_test(test_reader_floor_is_enough),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_start_sequence),
		cmocka_unit_test(test_seek_walks_to_start),
		cmocka_unit_test(test_seek_past_overrun),
		cmocka_unit_test(test_seek_lapped_ring_reads_what_it_holds),
		cmocka_unit_test(test_seek_while_writer_runs_to_the_hold),
		cmocka_unit_test(test_replayed_overrun_keeps_live_start),
		cmocka_unit_test(test_seek_liars),
		cmocka_unit_test(test_replay_counts_at_edges),
		cmocka_unit_test(test_replay_after_wrap_holds_most_of_a_lap),
		cmocka_unit_test(test_replay_index_liars),
		cmocka_unit_test(test_replay_while_flooded),
		cmocka_unit_test(test_metadata_block),
		cmocka_unit_test(test_overrun_exact_count),
		cmocka_unit_test(test_overrun_during_copy),
		cmocka_unit_test(test_overrun_hint_being_changed),
		cmocka_unit_test(test_concurrent_overrun_never_torn),
		cmocka_unit_test(test_large_reference),
		cmocka_unit_test(test_geometry_table),
		cmocka_unit_test(test_header_check),
		cmocka_unit_test(test_lying_records),
		cmocka_unit_test(test_lying_limits_and_hints),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
