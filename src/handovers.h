/* Internal: the layout of a handovers page (handovers.c), shared with the
 * tests that play a lying publisher. A header page of HO_HEADER_BYTES (one
 * bit per 4 KiB page of entries ever written), then one entry of
 * HO_ENTRY_BYTES per stream heads slot. */
#ifndef KITE_HANDOVERS_H
#define KITE_HANDOVERS_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

struct ho_entry {
	_Atomic uint64_t ring_id; /* 0: empty; written last, cleared first */
	uint64_t first_seq;       /* the subscriber's first seq of the stream */
	uint32_t channel_len;
	char channel[KITE_CHANNEL_MAX]; /* not terminated */
};

_Static_assert(sizeof(struct ho_entry) <= HO_ENTRY_BYTES, "entry size");
_Static_assert(HO_ENTRY_BYTES * 16 == 4096, "16 entries a page");

#define HO_ENTRY_PAGES ((size_t)HEADS_MAX / 16)
_Static_assert(HO_ENTRY_PAGES / 8 <= HO_HEADER_BYTES, "header bitmap");

/* The entry of heads slot `slot` in a page. */
static inline struct ho_entry *ki_ho_entry(uint8_t *page, uint32_t slot)
{
	return (struct ho_entry *)(page + HO_HEADER_BYTES + (size_t)slot * HO_ENTRY_BYTES);
}

#endif
