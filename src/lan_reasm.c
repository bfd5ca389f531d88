/* Fragment reassembly with caps on size, memory, count and time. Each
 * partial reserves its whole message and its fragment map against the cap
 * before anything is allocated, so what a sender claims is what it may
 * use, never more than the cap. */
#include "lan_reasm.h"

#include <stdlib.h>
#include <string.h>

struct lan_partial {
	struct lan_reasm_key key;
	uint32_t total_len, frag_count, have;
	uint64_t first_ns, timestamp_ns;
	uint32_t pid;
	struct sockaddr_in from;
	size_t reserved; /* bytes it counts against the cap */
	uint8_t *map;    /* one bit per fragment */
	uint8_t *data;
};

void ki_lan_reasm_init(struct lan_reasm *r, uint32_t max_msg, size_t cap_bytes,
		    uint64_t timeout_ns)
{
	memset(r, 0, sizeof *r);
	r->max_msg = max_msg ? max_msg : LAN_REASM_MAX_MSG;
	r->cap_bytes = cap_bytes ? cap_bytes : LAN_REASM_CAP;
	r->timeout_ns = timeout_ns ? timeout_ns : LAN_REASM_TIMEOUT_NS;
}

static void drop(struct lan_reasm *r, size_t i)
{
	struct lan_partial *p = r->partials[i];
	r->bytes -= p->reserved;
	free(p->map);
	free(p->data);
	free(p);
	/* Keep arrival order: the oldest stays first. */
	memmove(&r->partials[i], &r->partials[i + 1],
		(r->npartials - i - 1) * sizeof *r->partials);
	r->npartials--;
}

/* Drop partial i unfinished, and say which message it was. */
static void discard(struct lan_reasm *r, size_t i, uint64_t now_ns)
{
	struct lan_reasm_key key = r->partials[i]->key;
	drop(r, i);
	if (r->discarded)
		r->discarded(r->discarded_ctx, &key, now_ns);
}

void ki_lan_reasm_free(struct lan_reasm *r)
{
	while (r->npartials)
		drop(r, r->npartials - 1);
}

static struct lan_partial *start(struct lan_reasm *r, uint64_t host,
				 const struct lan_frame *f,
				 const struct sockaddr_in *from, uint64_t now_ns)
{
	size_t map_len = ((size_t)f->frag_count + 7) / 8;
	size_t need = sizeof(struct lan_partial) + map_len + f->total_len;
	if (f->total_len > r->max_msg || need > r->cap_bytes) {
		r->too_big++;
		return NULL;
	}
	/* Make room: the oldest partials go first. */
	while (r->npartials && (r->npartials == LAN_REASM_PARTIALS ||
				r->bytes + need > r->cap_bytes)) {
		discard(r, 0, now_ns);
		r->evicted++;
	}
	struct lan_partial *p = calloc(1, sizeof *p);
	if (p) {
		p->map = calloc(map_len, 1);
		p->data = malloc(f->total_len);
	}
	if (!p || !p->map || !p->data) {
		if (p) {
			free(p->map);
			free(p->data);
		}
		free(p);
		r->evicted++; /* no memory: as if evicted at once */
		return NULL;
	}
	p->key.host = host;
	p->key.publisher = f->publisher;
	p->key.seq = f->seq;
	memcpy(p->key.channel, f->channel, sizeof p->key.channel);
	p->total_len = f->total_len;
	p->frag_count = f->frag_count;
	p->first_ns = now_ns;
	p->timestamp_ns = f->timestamp_ns;
	p->pid = f->pid;
	if (from)
		p->from = *from;
	p->reserved = need;
	r->bytes += need;
	r->partials[r->npartials++] = p;
	return p;
}

int ki_lan_reasm_add(struct lan_reasm *r, uint64_t host, const struct lan_frame *f,
		  const struct sockaddr_in *from, uint64_t now_ns, struct lan_msg *out)
{
	struct lan_partial *p = NULL;
	size_t i;
	for (i = 0; i < r->npartials; i++) {
		struct lan_partial *q = r->partials[i];
		if (q->key.seq == f->seq && q->key.publisher == f->publisher &&
		    q->key.host == host && strcmp(q->key.channel, f->channel) == 0) {
			p = q;
			break;
		}
	}
	if (!p) {
		p = start(r, host, f, from, now_ns);
		if (!p)
			return -1;
		i = r->npartials - 1;
	} else if (p->total_len != f->total_len || p->frag_count != f->frag_count) {
		r->inconsistent++;
		return -1;
	}
	uint32_t idx = f->frag_index;
	if (p->map[idx / 8] & (1u << (idx % 8))) {
		r->duplicates++;
		return -1;
	}
	/* The frame decoder checked that this fragment lies within the
	 * message and has exactly its size. */
	uint64_t at = ki_lan_fragment_offset(f->total_len, f->frag_count, idx);
	memcpy(p->data + at, f->payload, f->payload_len);
	p->map[idx / 8] |= (uint8_t)(1u << (idx % 8));
	if (++p->have < p->frag_count)
		return 0;
	*out = (struct lan_msg){
		.seq = p->key.seq,
		.timestamp_ns = p->timestamp_ns,
		.pid = p->pid,
		.len = p->total_len,
		.data = p->data,
		.from = p->from,
	};
	p->data = NULL;
	drop(r, i);
	r->completed++;
	return 1;
}

uint64_t ki_lan_reasm_expire(struct lan_reasm *r, uint64_t now_ns)
{
	while (r->npartials && now_ns - r->partials[0]->first_ns >= r->timeout_ns) {
		discard(r, 0, now_ns);
		r->expired++;
	}
	if (!r->npartials)
		return UINT64_MAX;
	return r->partials[0]->first_ns + r->timeout_ns - now_ns;
}
