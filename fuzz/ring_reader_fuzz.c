/* Fuzz target: the subscriber's ring reader over a ring image the input
 * describes (8 slots of 64 bytes). The reader must return within a bounded
 * number of steps per call, only ever move forward, copy no more than its
 * own slot capacity, and read nothing outside the image (ASan: the image
 * and the copy buffer are allocated at their exact sizes).
 *
 * Input: byte 0 is a mode ('0'-relative bits: 1 slots carry lock words that
 * match the head, 2 the head is small, 4 the reader starts near the head,
 * 8 the head is near 2^64); bytes 1-8 the head, 9-16 the reader's next;
 * the rest is poured over the slots, header included, cyclically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define SLOTS 8
#define SLOT_SIZE 64
#define READS 64

const char *const fuzz_seeds[] = {
	"1", "3", "7", "f",
	"3AAAAAAAABAAAAAAAxxxxxxxx",
	"7\x05zzzzzzz\x01zzzzzzz\x20\x01\x01\x01\x01\x01\x01\x01\x40\x01\x01\x01",
	"9\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x01\x01\x01\x01\x01\x01",
	"0\xff\xff\xff\xff\xff\xff\xff\x7f\x01\x01\x01\x01\x01\x01\x01\x01",
	"3\x10\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
	NULL,
};

static uint64_t u64_at(const uint8_t *d, size_t size, size_t at)
{
	uint64_t v = 0;
	for (size_t i = 0; i < 8; i++)
		v |= (uint64_t)(at + i < size ? d[at + i] : 0) << (8 * i);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t bytes;
	if (ki_ring_geometry_valid(SLOTS, SLOT_SIZE, &bytes))
		__builtin_trap();
	uint8_t *image = aligned_alloc(64, bytes);
	uint8_t *buf = malloc(SLOT_SIZE - RING_SLOT_HEADER);
	if (!image || !buf) {
		free(image);
		free(buf);
		return 0;
	}
	unsigned mode = size ? (unsigned)(data[0] - '0') : 0;
	uint64_t head = u64_at(data, size, 1), next = u64_at(data, size, 9);
	if (mode & 2)
		head &= 31;
	if (mode & 8)
		head = UINT64_MAX - (head & 15);
	if (mode & 4)
		next = head - (next & 15);
	/* A proper header, then the slots (and maybe more) from the input. */
	struct ring_writer w;
	ki_ring_writer_init(&w, image, SLOTS, SLOT_SIZE, 1, "fuzz.ring", 0);
	memset(image + RING_HEADER_SIZE, 0, bytes - RING_HEADER_SIZE);
	if (size > 17)
		for (size_t i = 0; i < bytes - RING_HEADER_SIZE; i++)
			image[RING_HEADER_SIZE + i] = data[17 + i % (size - 17)];
	struct ring_header *h = (struct ring_header *)image;
	if (mode & 1)
		for (uint64_t s = head - SLOTS + 1; s != head + 1; s++) {
			struct slot_header *sl = (struct slot_header *)(image +
				RING_HEADER_SIZE + (s % SLOTS) * SLOT_SIZE);
			atomic_store(&sl->seq2, 2 * s);
		}
	atomic_store(&h->head, head);
	if (ki_ring_header_check(image, SLOTS, SLOT_SIZE, "fuzz.ring"))
		__builtin_trap();

	struct ring_reader r = {image, SLOTS, SLOT_SIZE, next};
	for (int i = 0; i < READS; i++) {
		struct ring_record rec;
		uint64_t before = r.next;
		enum ring_result res = ki_ring_read(&r, buf, &rec);
		if (res == RING_EMPTY)
			break;
		if (r.next <= before) /* the reader only ever moves forward */
			__builtin_trap();
		if (res == RING_MESSAGE) {
			if (rec.seq != before ||
			    (SLOT_KIND(rec.flags) == SLOT_INLINE && rec.len > SLOT_SIZE - RING_SLOT_HEADER) ||
			    (SLOT_KIND(rec.flags) != SLOT_INLINE && SLOT_KIND(rec.flags) != SLOT_LARGE) ||
			    (rec.flags & ~(SLOT_ORIGIN | SLOT_LARGE)))
				__builtin_trap();
		} else if (res == RING_LOST) {
			if (rec.lost == 0)
				__builtin_trap();
		} else {
			__builtin_trap();
		}
		(void)ki_ring_pending(&r);
	}
	free(image);
	free(buf);
	return 0;
}
