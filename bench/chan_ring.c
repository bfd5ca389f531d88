/* chan_ring.c — the floor of the local-channel benchmark: a bare
 * single-producer ring in a shared mmap'd file, busy-polled, with nothing
 * else: no discovery, no identity, no validation beyond a length check, no
 * wake-ups. Each reader has its own tail; the producer waits (back-pressure)
 * while the slowest reader is a full ring behind, so nothing is ever lost.
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

#define RING_MAGIC 0x676e69722d657469ull /* "ite-ring" */
#define RING_DATA 4096                   /* slots start here */
#define TAIL_FREE UINT64_MAX             /* reader slot not taken */

struct ring_hdr {
	uint64_t magic;
	uint32_t slots, slot_size;
	alignas(64) _Atomic uint64_t head; /* messages published */
	alignas(64) _Atomic uint32_t claimed, ready;
	struct {
		alignas(64) _Atomic uint64_t tail; /* messages read */
	} reader[CHAN_MAX_SUBS];
};
_Static_assert(sizeof(struct ring_hdr) <= RING_DATA, "header fits");

struct ring {
	struct ring_hdr *h;
	unsigned char *slot0;
	size_t map_len;
	uint64_t mask, slot_size;
	uint64_t head, min_tail; /* producer's own copies */
	unsigned idx;            /* consumer: its reader slot */
	uint64_t tail;           /* consumer: messages read */
	uint64_t seen_head;      /* consumer: head when last loaded */
	int holding;             /* consumer: slot `tail` is lent to the caller */
};

struct rt {
	const struct chan_args *a;
	struct ring out, in[CHAN_MAX_SUBS];
	unsigned nin, next_in;
	int held; /* index in in[] of the ring whose slot is lent, or -1 */
};

static int rfail(const char *what, const char *path)
{
	fprintf(stderr, "chan: ring: %s %s: %s\n", what, path, strerror(errno));
	return -1;
}

static void ring_path(char *out, size_t n, const struct chan_args *a,
		      const char *name)
{
	snprintf(out, n, "%s/%s", a->where, name);
}

static int map(struct ring *r, int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	r->h = p;
	r->map_len = len;
	r->slot0 = (unsigned char *)p + RING_DATA;
	return 0;
}

/* Producer: create the file under a temporary name, then rename it into
 * place so a reader never sees a half-initialised header. */
static int ring_create(struct ring *r, const struct chan_args *a,
		       const char *name)
{
	char path[4096], tmp[4200];
	ring_path(path, sizeof path, a, name);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	uint64_t slots = a->size > 65536 ? 16 : 1024;
	r->slot_size = (a->size + 8 + 63) & ~(uint64_t)63;
	r->mask = slots - 1;
	size_t len = RING_DATA + slots * r->slot_size;
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return rfail("create", tmp);
	if (ftruncate(fd, (off_t)len) != 0 || map(r, fd, len) != 0)
		return rfail("size or map", tmp);
	r->h->slots = (uint32_t)slots;
	r->h->slot_size = (uint32_t)r->slot_size;
	for (unsigned i = 0; i < CHAN_MAX_SUBS; i++)
		atomic_init(&r->h->reader[i].tail, TAIL_FREE);
	r->h->magic = RING_MAGIC;
	if (rename(tmp, path) != 0)
		return rfail("rename", tmp);
	return 0;
}

/* Consumer: wait for the file, map it, take a reader slot. */
static int ring_attach(struct ring *r, const struct chan_args *a,
		       const char *name)
{
	char path[4096];
	ring_path(path, sizeof path, a, name);
	uint64_t deadline = chan_now_ns() + a->timeout * 1000000000ull;
	int fd;
	while ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno != ENOENT || chan_now_ns() > deadline)
			return rfail("open", path);
		usleep(1000);
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < RING_DATA ||
	    map(r, fd, (size_t)st.st_size) != 0)
		return rfail("map", path);
	r->mask = r->h->slots - 1;
	r->slot_size = r->h->slot_size;
	if (r->h->magic != RING_MAGIC || r->h->slots == 0 ||
	    (r->h->slots & r->mask) || r->slot_size < 72 ||
	    RING_DATA + (uint64_t)r->h->slots * r->slot_size > r->map_len) {
		fprintf(stderr, "chan: ring: %s: bad header\n", path);
		return -1;
	}
	r->idx = atomic_fetch_add(&r->h->claimed, 1);
	if (r->idx >= CHAN_MAX_SUBS) {
		fprintf(stderr, "chan: ring: %s: too many readers\n", path);
		return -1;
	}
	r->tail = atomic_load_explicit(&r->h->head, memory_order_acquire);
	r->seen_head = r->tail;
	atomic_store_explicit(&r->h->reader[r->idx].tail, r->tail,
			      memory_order_release);
	atomic_fetch_add(&r->h->ready, 1);
	return 0;
}

static uint64_t slowest_tail(struct ring *r)
{
	uint64_t min = r->head;
	for (unsigned i = 0; i < CHAN_MAX_SUBS; i++) {
		uint64_t t = atomic_load_explicit(&r->h->reader[i].tail,
						  memory_order_acquire);
		if (t != TAIL_FREE && t < min)
			min = t;
	}
	return min;
}

static void ring_put(struct ring *r, const void *buf, size_t len)
{
	unsigned step = 0;
	while (r->head - r->min_tail > r->mask) { /* full: wait for readers */
		r->min_tail = slowest_tail(r);
		if (r->head - r->min_tail > r->mask)
			chan_pause(&step);
	}
	unsigned char *slot = r->slot0 + (r->head & r->mask) * r->slot_size;
	uint64_t n = len;
	memcpy(slot, &n, 8);
	memcpy(slot + 8, buf, len);
	atomic_store_explicit(&r->h->head, ++r->head, memory_order_release);
}

static void ring_release(struct ring *r)
{
	if (r->holding) {
		atomic_store_explicit(&r->h->reader[r->idx].tail, ++r->tail,
				      memory_order_release);
		r->holding = 0;
	}
}

/* 1 with the next message lent in *m, 0 if the ring is empty, -1 if the
 * slot's length is impossible. */
static int ring_get(struct ring *r, struct chan_msg *m)
{
	if (r->seen_head == r->tail) { /* reload only when caught up */
		r->seen_head = atomic_load_explicit(&r->h->head,
						    memory_order_acquire);
		if (r->seen_head == r->tail)
			return 0;
	}
	const unsigned char *slot = r->slot0 + (r->tail & r->mask) * r->slot_size;
	uint64_t n;
	memcpy(&n, slot, 8);
	if (n > r->slot_size - 8) {
		fprintf(stderr, "chan: ring: slot length %llu\n",
			(unsigned long long)n);
		return -1;
	}
	m->data = slot + 8;
	m->len = n;
	m->seq = 0;
	r->holding = 1;
	return 1;
}

static void *r_open(const struct chan_args *a)
{
	struct rt *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->a = a;
	t->held = -1;
	char name[32];
	int rc = 0;
	switch (a->role) {
	case ROLE_PUB:
		rc = ring_create(&t->out, a, "data");
		break;
	case ROLE_SUB:
		t->nin = 1;
		rc = ring_attach(&t->in[0], a, "data");
		break;
	case ROLE_PING:
		rc = ring_create(&t->out, a, "ping");
		for (unsigned i = 0; rc == 0 && i < a->subs; i++) {
			snprintf(name, sizeof name, "pong.%u", i);
			rc = ring_attach(&t->in[t->nin++], a, name);
		}
		break;
	default:
		snprintf(name, sizeof name, "pong.%u", a->id);
		rc = ring_create(&t->out, a, name);
		t->nin = 1;
		if (rc == 0)
			rc = ring_attach(&t->in[0], a, "ping");
		break;
	}
	return rc == 0 ? t : NULL;
}

static int r_send(void *p, const void *buf, size_t len)
{
	struct rt *t = p;
	if (len > t->out.slot_size - 8)
		return -1;
	ring_put(&t->out, buf, len);
	return 0;
}

/* Busy-polls its input rings in turn; a timeout only bounds the spin. */
static int r_recv(void *p, struct chan_msg *m, int timeout_ms, uint64_t *lost)
{
	struct rt *t = p;
	(void)lost; /* back-pressure: never lost */
	if (t->held >= 0) {
		ring_release(&t->in[t->held]);
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
			int rc = ring_get(&t->in[i], m);
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

static int r_wait_subscribers(void *p, unsigned subs, int timeout_ms)
{
	struct rt *t = p;
	uint64_t until = chan_now_ns() + (uint64_t)timeout_ms * 1000000;
	while (atomic_load(&t->out.h->ready) < subs) {
		if (chan_now_ns() >= until)
			return -1;
		usleep(200);
	}
	return 0;
}

static void r_close(void *p)
{
	struct rt *t = p;
	if (t->out.h)
		munmap(t->out.h, t->out.map_len);
	for (unsigned i = 0; i < t->nin; i++)
		if (t->in[i].h)
			munmap(t->in[i].h, t->in[i].map_len);
	free(t);
}

static const struct chan_ops ring_ops = {
	.name = "ring",
	.open = r_open,
	.send = r_send,
	.recv = r_recv,
	.wait_subscribers = r_wait_subscribers,
	.close = r_close,
};

int main(int argc, char **argv)
{
	return chan_main(&ring_ops, argc, argv);
}
