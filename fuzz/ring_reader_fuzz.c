/* Fuzz target: the subscriber's packed-ring reader over a ring image the
 * input describes (8 x 64 = 512 bytes of records, then the 2 KiB
 * large-message pool). The reader must return within a bounded number of
 * steps per call, never move its sequence back, copy no more than its own
 * inline maximum (a pool payload: the pool's share), count every loss, and
 * read nothing outside the image (ASan: the image and the copy buffer are
 * allocated at their exact sizes).
 *
 * Input: byte 0 is a mode ('0'-relative bits: 1 honest records are written
 * over the poured bytes, 2 the limit is near 2^64, 4 the reader starts at
 * (1, 0) instead of the input's start, 8 the hint's seq is near 2^63);
 * bytes 1-8 the limit, 9-16 the hint's seq, 17-24 the hint's position,
 * 25-32 the reader's first seq, 33-40 its position, 41 how many honest
 * records; the rest is poured over the records cyclically. Mode bit 32
 * ('P' and up): the reader joins with a replay instead (ki_ring_replay from
 * the ring's first record to target = the input's start, last_n = the
 * hint's position, since_ns = the start position), the replay index and
 * its generation taken from the poured bytes: it must start at a seq of
 * the ring (>= 1), count as lost only what lies past target, and read on
 * under the same rules. Mode bit 128 (0xb0 and up): it joins as a
 * subscriber does without replay instead (ki_ring_seek from the ring's
 * first record to target = the input's start, the index poured as for a
 * replay): a ring gone round sends it to the index's oldest record or the
 * hint, never before target, every seq it skips from target on counted.
 * Mode bit 64 ('p' and up): every other honest
 * record is a pool message (REC_POOL), and the pool limit is then the
 * input's limit where that is odd (12 honest records if the input is too
 * short to say). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define SLOTS 8
#define SLOT_SIZE 64
#define READS 64
#define DATA_AT 42

const char *const fuzz_seeds[] = {
	"1", "3", "5", "7", "f", "d",
	"5\x40\x02\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00"
	"\x80\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x00\x00\x00\x06zzzzzzzz",
	"0\xff\xff\xff\xff\xff\xff\xff\xff\x09\x00\x00\x00\x00\x00\x00\x00"
	"\x08\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00",
	"q", "s", "u", "p", "u\x03", "u\x01\x10", "w\x02\x04",
	"Q", "S\x00\x04", "U\x40\x02\x00\x00\x00\x00\x00\x00\x05",
	"\xb1\x00\x04\x00\x00\x00\x00\x00\x00\x05", "\xb5", "\xf1\x00\x06",
	"9\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x01\x01\x01\x01\x01\x01",
	"4\x00\x02\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
	"\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
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
	uint32_t cap = ki_ring_inline_max(SLOTS, SLOT_SIZE);
	uint64_t pool_max = ki_ring_pool_msg_max(SLOTS, SLOT_SIZE);
	uint8_t *image = aligned_alloc(64, bytes);
	uint8_t *buf = malloc(ki_ring_read_max(SLOTS, SLOT_SIZE));
	if (!image || !buf) {
		free(image);
		free(buf);
		return 0;
	}
	unsigned mode = size ? (unsigned)(data[0] - '0') : 0;
	uint64_t limit = u64_at(data, size, 1), hint_seq = u64_at(data, size, 9);
	uint64_t hint_pos = u64_at(data, size, 17), start = u64_at(data, size, 25);
	uint64_t start_pos = u64_at(data, size, 33);
	unsigned honest = size > 41 ? data[41] % 32 : (mode & 64) ? 12 : 0;
	if (mode & 2)
		limit = UINT64_MAX - (limit & 1023);
	if (mode & 8)
		hint_seq = RING_SEQ_END - (hint_seq & 15);
	if (mode & 4) {
		start = 1;
		start_pos = 0;
	}
	/* A proper header, then the records (and maybe more) from the input. */
	struct ring_writer w;
	ki_ring_writer_init(&w, image, SLOTS, SLOT_SIZE, 1, "fuzz.ring", 0);
	memset(image + RING_HEADER_SIZE, 0, bytes - RING_HEADER_SIZE);
	if (size > DATA_AT)
		for (size_t i = 0; i < bytes - RING_HEADER_SIZE; i++)
			image[RING_HEADER_SIZE + i] = data[DATA_AT + i % (size - DATA_AT)];
	if (mode & 1)
		for (unsigned i = 0; i < honest; i++) {
			if ((mode & 64) && (i & 1)) {
				uint64_t len = cap + 1 + i * 37 % (pool_max - cap), at;
				memset(ki_ring_pool_claim(&w, len, &at), (int)i, len);
				ki_ring_pool_commit(&w, at, len, 0, i);
				continue;
			}
			ki_ring_write(&w, NULL, 0, data, (uint32_t)(i * 5 % (cap + 1) % (size + 1)),
				      0, i);
		}
	struct ring_header *h = (struct ring_header *)image;
	if ((mode & 64) && (limit & 1))
		atomic_store(&h->pool_limit, limit);
	atomic_store(&h->limit, limit);
	atomic_store(&h->hint_seq, hint_seq);
	atomic_store(&h->hint_pos, hint_pos);
	atomic_store(&h->hint_gen, (mode & 16) ? 1 : 2);
	if (ki_ring_header_check(image, SLOTS, SLOT_SIZE, "fuzz.ring"))
		__builtin_trap();

	struct ring_reader r;
	if (mode & (32 | 128)) {
		atomic_store(&h->index_gen, u64_at(data, size, DATA_AT) & 3);
		for (unsigned i = 0; i < RING_SEGMENTS; i++) {
			atomic_store(&h->index[i].seq, u64_at(data, size, DATA_AT + 8 + 16 * i));
			atomic_store(&h->index[i].pos, u64_at(data, size, DATA_AT + 16 + 16 * i));
		}
	}
	if (mode & 128) {
		ki_ring_reader_init(&r, image, SLOTS, SLOT_SIZE, 1, 0);
		uint64_t lost = ki_ring_seek(&r, start);
		if (r.next == 0 || (r.next < RING_SEQ_END &&
				    (r.next < start || lost != r.next - start)))
			__builtin_trap();
	} else if (mode & 32) {
		ki_ring_reader_init(&r, image, SLOTS, SLOT_SIZE, 1, 0);
		uint64_t lost = ki_ring_replay(&r, start, hint_pos, start_pos);
		if (r.next == 0 || (r.next < RING_SEQ_END &&
				    lost != (r.next > start ? r.next - start : 0)))
			__builtin_trap();
	} else {
		ki_ring_reader_init(&r, image, SLOTS, SLOT_SIZE, start, start_pos);
	}
	for (int i = 0; i < READS; i++) {
		struct ring_record rec;
		uint64_t before = r.next;
		enum ring_result res = ki_ring_read(&r, buf, &rec);
		if (res == RING_EMPTY) {
			if (r.next != before && r.next != RING_SEQ_END)
				__builtin_trap();
			if (!ki_ring_pending(&r))
				break;
			continue;
		}
		if (r.next <= before) /* the reader only ever moves forward */
			__builtin_trap();
		if (res == RING_MESSAGE) {
			if (rec.seq != before || r.next != before + 1 ||
			    (rec.flags & ~REC_KNOWN_FLAGS) || (rec.flags & REC_PAD) ||
			    (!(rec.flags & (REC_LARGE | REC_POOL)) && rec.meta_len + rec.len > cap) ||
			    ((rec.flags & REC_POOL) && (rec.meta_len || rec.len > pool_max)))
				__builtin_trap();
		} else if (res == RING_LOST) {
			if (rec.lost == 0 || r.next != before + rec.lost)
				__builtin_trap();
		} else {
			__builtin_trap();
		}
	}
	free(image);
	free(buf);
	return 0;
}
