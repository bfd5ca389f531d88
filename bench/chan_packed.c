/* chan_packed.c — the packed floor of the local-channel benchmark: records
 * of an 8-byte commit word plus payload laid end to end in a shared mmap'd
 * file (rounded to 8 bytes, so small messages share cache lines), a
 * single producer and busy-polling readers, nothing else: no discovery,
 * identity, validation beyond a length check, or wake-ups.
 *
 * A reader learns that a record is complete from the record itself: its
 * commit word (lap number and length) is stored last, with release, so the
 * producer never stores a shared head per message. The producer stores a
 * zero commit word where the next record goes before it commits this one,
 * so a reader never mistakes the previous lap's bytes for a record. Each
 * reader publishes its read position; the producer caches the slowest one
 * and reloads only when the ring looks full, so nothing is ever lost.
 *
 * Files in <where>: `data` (throughput; one producer, `subs` readers),
 * `ping` (pinger to every echoer) and `pong.<id>` (echoer id to pinger).
 */
#include "lib/chan_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PACKED_MAGIC 0x64656b6361702d6bull /* "k-packed" */
#define PACKED_DATA 4096                   /* records start here */
#define POS_FREE UINT64_MAX                /* reader slot not taken */
#define LEN_PAD 0xffffffffu                /* rest of the lap is unused */
#define WORD 8                             /* the commit word */

struct packed_hdr {
	uint64_t magic;
	uint64_t capacity; /* bytes of records, a power of two */
	alignas(64) _Atomic uint32_t claimed, ready;
	struct {
		alignas(64) _Atomic uint64_t pos; /* bytes consumed */
	} reader[CHAN_MAX_SUBS];
};
_Static_assert(sizeof(struct packed_hdr) <= PACKED_DATA, "header fits");

struct packed {
	struct packed_hdr *h;
	unsigned char *data;
	size_t map_len;
	uint64_t cap, mask;
	uint64_t pos;       /* producer: bytes written; reader: bytes read */
	uint64_t min_pos;   /* producer: slowest reader when last loaded */
	uint64_t lent_next; /* reader: pos after the record lent out */
	unsigned idx;       /* reader: its slot */
	int holding;        /* reader: a record is lent to the caller */
};

struct pt {
	const struct chan_args *a;
	struct packed out, in[CHAN_MAX_SUBS];
	unsigned nin, next_in;
	int held;
};

static int pfail(const char *what, const char *path)
{
	fprintf(stderr, "chan: packed: %s %s: %s\n", what, path, strerror(errno));
	return -1;
}

static uint64_t record_bytes(uint64_t len)
{
	return (WORD + len + 7) & ~7ull;
}

/* The commit word of the record at pos: its lap (so a word of the previous
 * lap never matches) and its length. */
static uint64_t commit_word(uint64_t cap, uint64_t pos, uint32_t len)
{
	return ((pos / cap + 1) << 32) | len;
}

static _Atomic uint64_t *word_at(struct packed *r, uint64_t pos)
{
	return (_Atomic uint64_t *)(void *)(r->data + (pos & r->mask));
}

static int pmap(struct packed *r, int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	r->h = p;
	r->map_len = len;
	r->data = (unsigned char *)p + PACKED_DATA;
	return 0;
}

/* As many bytes as today's bare ring holds (1024 slots, 16 for messages
 * over 64 KiB), rounded up to a power of two. */
static uint64_t capacity_for(size_t size)
{
	uint64_t want = (size > 65536 ? 16 : 1024) * record_bytes(size), cap = 4096;
	while (cap < want)
		cap <<= 1;
	return cap;
}

static int packed_create(struct packed *r, const struct chan_args *a,
			 const char *name)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", a->where, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	r->cap = capacity_for(a->size);
	r->mask = r->cap - 1;
	size_t len = PACKED_DATA + r->cap;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return pfail("create", tmp);
	if (ftruncate(fd, (off_t)len) != 0 || pmap(r, fd, len) != 0)
		return pfail("size or map", tmp);
	r->h->capacity = r->cap;
	for (unsigned i = 0; i < CHAN_MAX_SUBS; i++)
		atomic_init(&r->h->reader[i].pos, POS_FREE);
	r->h->magic = PACKED_MAGIC;
	if (rename(tmp, path) != 0)
		return pfail("rename", tmp);
	return 0;
}

static int packed_attach(struct packed *r, const struct chan_args *a,
			 const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", a->where, name);
	uint64_t deadline = chan_now_ns() + a->timeout * 1000000000ull;
	int fd;
	while ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno != ENOENT || chan_now_ns() > deadline)
			return pfail("open", path);
		usleep(1000);
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < PACKED_DATA ||
	    pmap(r, fd, (size_t)st.st_size) != 0)
		return pfail("map", path);
	r->cap = r->h->capacity;
	r->mask = r->cap - 1;
	if (r->h->magic != PACKED_MAGIC || r->cap < 4096 || (r->cap & r->mask) ||
	    PACKED_DATA + r->cap > r->map_len) {
		fprintf(stderr, "chan: packed: %s: bad header\n", path);
		return -1;
	}
	r->idx = atomic_fetch_add(&r->h->claimed, 1);
	if (r->idx >= CHAN_MAX_SUBS) {
		fprintf(stderr, "chan: packed: %s: too many readers\n", path);
		return -1;
	}
	/* Readers attach before the producer's first record (the harness
	 * waits for `ready`), so every reader starts at 0. */
	r->pos = 0;
	atomic_store_explicit(&r->h->reader[r->idx].pos, 0, memory_order_release);
	atomic_fetch_add(&r->h->ready, 1);
	return 0;
}

static uint64_t slowest_reader(struct packed *r)
{
	uint64_t min = r->pos;
	for (unsigned i = 0; i < CHAN_MAX_SUBS; i++) {
		uint64_t p = atomic_load_explicit(&r->h->reader[i].pos,
						  memory_order_acquire);
		if (p != POS_FREE && p < min)
			min = p;
	}
	return min;
}

/* Wait until bytes up to `end` (plus the next commit word) are free. */
static void wait_room(struct packed *r, uint64_t end)
{
	unsigned step = 0;
	while (end + WORD - r->min_pos > r->cap) {
		r->min_pos = slowest_reader(r);
		if (end + WORD - r->min_pos > r->cap)
			chan_pause(&step);
	}
}

static void packed_put(struct packed *r, const void *buf, uint32_t len)
{
	uint64_t size = record_bytes(len);
	uint64_t room = r->cap - (r->pos & r->mask);
	if (room < size) { /* the record would cross the end: pad the lap */
		wait_room(r, r->pos + room);
		atomic_store_explicit(word_at(r, r->pos + room), 0, memory_order_relaxed);
		atomic_store_explicit(word_at(r, r->pos),
				      commit_word(r->cap, r->pos, LEN_PAD),
				      memory_order_release);
		r->pos += room;
	}
	wait_room(r, r->pos + size);
	memcpy(r->data + (r->pos & r->mask) + WORD, buf, len);
	/* The next record's word reads "not yet" before this one commits. */
	atomic_store_explicit(word_at(r, r->pos + size), 0, memory_order_relaxed);
	atomic_store_explicit(word_at(r, r->pos), commit_word(r->cap, r->pos, len),
			      memory_order_release);
	r->pos += size;
}

static void packed_release(struct packed *r)
{
	if (r->holding) {
		r->pos = r->lent_next;
		atomic_store_explicit(&r->h->reader[r->idx].pos, r->pos,
				      memory_order_release);
		r->holding = 0;
	}
}

/* 1 with the next record lent in *m, 0 if none yet, -1 if its length is
 * impossible. */
static int packed_get(struct packed *r, struct chan_msg *m)
{
	for (;;) {
		uint64_t w = atomic_load_explicit(word_at(r, r->pos), memory_order_acquire);
		if (w >> 32 != r->pos / r->cap + 1)
			return 0;
		uint32_t len = (uint32_t)w;
		uint64_t room = r->cap - (r->pos & r->mask);
		if (len == LEN_PAD) {
			r->pos += room;
			continue;
		}
		if (record_bytes(len) > room) {
			fprintf(stderr, "chan: packed: record length %u\n", len);
			return -1;
		}
		m->data = r->data + (r->pos & r->mask) + WORD;
		m->len = len;
		m->seq = 0;
		r->lent_next = r->pos + record_bytes(len);
		r->holding = 1;
		return 1;
	}
}

static void *p_open(const struct chan_args *a)
{
	struct pt *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->a = a;
	t->held = -1;
	char name[32];
	int rc = 0;
	switch (a->role) {
	case ROLE_PUB:
		rc = packed_create(&t->out, a, "data");
		break;
	case ROLE_SUB:
		t->nin = 1;
		rc = packed_attach(&t->in[0], a, "data");
		break;
	case ROLE_PING:
		rc = packed_create(&t->out, a, "ping");
		for (unsigned i = 0; rc == 0 && i < a->subs; i++) {
			snprintf(name, sizeof name, "pong.%u", i);
			rc = packed_attach(&t->in[t->nin++], a, name);
		}
		break;
	default:
		snprintf(name, sizeof name, "pong.%u", a->id);
		rc = packed_create(&t->out, a, name);
		t->nin = 1;
		if (rc == 0)
			rc = packed_attach(&t->in[0], a, "ping");
		break;
	}
	return rc == 0 ? t : NULL;
}

static int p_send(void *p, const void *buf, size_t len)
{
	struct pt *t = p;
	if (record_bytes(len) + WORD > t->out.cap / 2)
		return -1;
	packed_put(&t->out, buf, (uint32_t)len);
	return 0;
}

static int p_recv(void *p, struct chan_msg *m, int timeout_ms, uint64_t *lost)
{
	struct pt *t = p;
	(void)lost; /* back-pressure: never lost */
	if (t->held >= 0) {
		packed_release(&t->in[t->held]);
		t->held = -1;
	}
	/* The clock is read only once nothing is ready (never for a poll):
	 * a clock_gettime per message (~28 ns on the benchmark VM) would be
	 * the harness's cost, not the transport's. */
	uint64_t until = 0;
	unsigned step = 0;
	for (;;) {
		for (unsigned k = 0; k < t->nin; k++) {
			unsigned i = (t->next_in + k) % t->nin;
			int rc = packed_get(&t->in[i], m);
			if (rc != 0) {
				t->held = rc > 0 ? (int)i : -1;
				t->next_in = i + 1;
				return rc;
			}
		}
		if (!chan_keep_waiting(&until, &step, timeout_ms))
			return 0;
	}
}

static int p_wait_subscribers(void *p, unsigned subs, int timeout_ms)
{
	struct pt *t = p;
	uint64_t until = chan_now_ns() + (uint64_t)timeout_ms * 1000000;
	while (atomic_load(&t->out.h->ready) < subs) {
		if (chan_now_ns() >= until)
			return -1;
		usleep(200);
	}
	return 0;
}

static void p_close(void *p)
{
	struct pt *t = p;
	if (t->out.h)
		munmap(t->out.h, t->out.map_len);
	for (unsigned i = 0; i < t->nin; i++)
		if (t->in[i].h)
			munmap(t->in[i].h, t->in[i].map_len);
	free(t);
}

static const struct chan_ops packed_ops = {
	.name = "packed",
	.open = p_open,
	.send = p_send,
	.recv = p_recv,
	.wait_subscribers = p_wait_subscribers,
	.close = p_close,
};

int main(int argc, char **argv)
{
	return chan_main(&packed_ops, argc, argv);
}
