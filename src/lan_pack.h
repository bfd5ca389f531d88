/* Packing small LAN messages several to a datagram, and datagrams several
 * to a sendmmsg: a publisher in a burst appends frames to an open
 * datagram; a datagram that cannot take the next frame (full, or another
 * group) is closed and the next one opened, up to LAN_PACK_SLOTS; the
 * caller sends them all when the slots run out, when the oldest frame has
 * waited its bound, or when the publisher goes idle. */
#ifndef KITE_LAN_PACK_H
#define KITE_LAN_PACK_H

#include <stddef.h>
#include <stdint.h>

#define LAN_PACK_SLOTS 16

struct lan_packer {
	uint8_t *buf;           /* LAN_PACK_SLOTS x max_datagram */
	size_t max_datagram;
	size_t len[LAN_PACK_SLOTS];
	unsigned frames[LAN_PACK_SLOTS];
	uint32_t group[LAN_PACK_SLOTS];
	unsigned used;          /* datagrams with frames; the last is open */
	uint64_t since_ns;      /* when the oldest waiting frame came */
};

int ki_lan_pack_init(struct lan_packer *p, size_t max_datagram);
void ki_lan_pack_free(struct lan_packer *p);

/* Where a frame of n bytes for group goes (at most max_datagram), or NULL
 * when every slot is taken: send them (ki_lan_pack_sent) first. The frame
 * is counted once written, by ki_lan_pack_commit. */
uint8_t *ki_lan_pack_room(struct lan_packer *p, uint32_t group, size_t n, uint64_t now_ns);
void ki_lan_pack_commit(struct lan_packer *p, size_t n);

/* Datagram i (i < used) for sending, and the packer emptied after. */
static inline const uint8_t *ki_lan_pack_datagram(const struct lan_packer *p, unsigned i)
{
	return p->buf + (size_t)i * p->max_datagram;
}
void ki_lan_pack_sent(struct lan_packer *p);

/* The largest UDP payload: a segmented send carries at most this. */
#define LAN_PACK_SEGMENTED_MAX 65507

/* A run of datagrams that can leave in one segmented (UDP_SEGMENT) send:
 * slots first .. first + count - 1, one group, every one but the last of
 * the first one's length (the kernel cuts at that length), the last no
 * longer, LAN_PACK_SEGMENTED_MAX bytes in all at most. */
struct lan_pack_run {
	unsigned first, count, frames;
	size_t bytes;
};

/* Cut slots from .. used - 1 into such runs, in order (segmented = 0:
 * one datagram a run); how many (at most LAN_PACK_SLOTS). */
unsigned ki_lan_pack_runs(const struct lan_packer *p, unsigned from, int segmented,
			  struct lan_pack_run *out);

#endif
