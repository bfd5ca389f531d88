/* The packer's slots: plain bookkeeping, no system calls. */
#include "lan_pack.h"

#include <errno.h>
#include <stdlib.h>

int ki_lan_pack_init(struct lan_packer *p, size_t max_datagram)
{
	*p = (struct lan_packer){.max_datagram = max_datagram};
	p->buf = malloc(LAN_PACK_SLOTS * max_datagram);
	return p->buf ? 0 : -ENOMEM;
}

void ki_lan_pack_free(struct lan_packer *p)
{
	free(p->buf);
	p->buf = NULL;
}

uint8_t *ki_lan_pack_room(struct lan_packer *p, uint32_t group, size_t n, uint64_t now_ns)
{
	if (n > p->max_datagram)
		return NULL;
	unsigned open = p->used ? p->used - 1 : 0;
	if (!p->used || p->group[open] != group || p->len[open] + n > p->max_datagram) {
		if (p->used == LAN_PACK_SLOTS)
			return NULL;
		open = p->used++;
		p->group[open] = group;
		p->len[open] = 0;
		p->frames[open] = 0;
	}
	if (open == 0 && p->len[0] == 0)
		p->since_ns = now_ns;
	return p->buf + (size_t)open * p->max_datagram + p->len[open];
}

void ki_lan_pack_commit(struct lan_packer *p, size_t n)
{
	p->len[p->used - 1] += n;
	p->frames[p->used - 1]++;
}

void ki_lan_pack_sent(struct lan_packer *p)
{
	p->used = 0;
}

unsigned ki_lan_pack_runs(const struct lan_packer *p, unsigned from, int segmented,
			  struct lan_pack_run *out)
{
	unsigned n = 0;
	for (unsigned i = from; i < p->used; i++) {
		if (!p->len[i])
			continue; /* opened, its frame never written */
		struct lan_pack_run *r = n ? &out[n - 1] : NULL;
		size_t seg = r ? p->len[r->first] : 0;
		if (segmented && r && p->group[i] == p->group[r->first] &&
		    r->first + r->count == i && p->len[i - 1] == seg && p->len[i] <= seg &&
		    r->bytes + p->len[i] <= LAN_PACK_SEGMENTED_MAX) {
			r->count++;
			r->frames += p->frames[i];
			r->bytes += p->len[i];
			continue;
		}
		out[n++] = (struct lan_pack_run){i, 1, p->frames[i], p->len[i]};
	}
	return n;
}
