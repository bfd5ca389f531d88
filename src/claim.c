/* Zero-copy publish: kite_claim() hands out the body of the next record of
 * a channel's ring, the caller builds its message there, and kite_commit()
 * makes it visible (header, timestamp, seq word last) exactly as
 * kite_publish() would have; kite_abort() gives it up unpublished.
 *
 * While a claim is open the ring belongs to it: nothing else writes a
 * record there (kite_publish and a second claim get -EBUSY), and the idle
 * sweep does not release it, so the pointer stays valid. A publisher that
 * dies before committing leaves the record's seq word 0: readers never see
 * it, and its stream ends with what was committed. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* The ring of channel with an open claim, or NULL. With the state held. */
static struct pub_ring *claimed_ring(kite *k, const char *channel)
{
	struct pub_ring *r = k->last_pub;
	if (!r || strcmp(r->channel, channel))
		r = ki_pub_find(k, channel);
	return r && r->claimed ? r : NULL;
}

int kite_claim(kite *k, const char *channel, size_t len, void **data)
{
	if (data)
		*data = NULL;
	if (!k || !channel || !data)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	int locked = ki_app_enter(k), rc;
	struct pub_ring *r = ki_pub_ring_for(k, channel, &rc);
	if (r && r->claimed)
		rc = -EBUSY;
	else if (r && len > ki_ring_inline_max(r->w.slot_count, r->w.slot_size))
		rc = -EMSGSIZE; /* only a record of the ring itself (as publish decides) */
	else if (r && r->nrel) /* as kite_publish: room in every reliable reader */
		rc = ki_rel_wait(k, r, len, 0, 0, &locked);
	if (r && !rc) {
		*data = ki_ring_claim(&r->w, (uint32_t)len);
		r->claimed = (uint64_t)len + 1;
	}
	ki_app_exit(k, locked);
	return rc;
}

int64_t kite_commit(kite *k, const char *channel, size_t len)
{
	if (!k || !channel)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	int locked = ki_app_enter(k);
	struct pub_ring *r = claimed_ring(k, channel);
	int64_t rc = r ? 0 : KITE_ENOCLAIM;
	if (r && len >= r->claimed)
		rc = -EINVAL; /* more than was claimed: the claim stays open */
	if (!rc) {
		const void *body = ki_ring_claimed_body(&r->w);
		uint64_t stamp = k->lan ? ki_realtime_ns() : RING_STAMP_NOW; /* as publish() */
		uint64_t seq = ki_ring_commit(&r->w, 0, (uint32_t)len, 0, stamp);
		r->claimed = 0;
		ki_pub_committed(k, r, seq, stamp, body, len);
		rc = (int64_t)seq;
	}
	ki_app_exit(k, locked);
	return rc;
}

int kite_abort(kite *k, const char *channel)
{
	if (!k || !channel)
		return -EINVAL;
	if (ki_forked(k))
		return -ECHILD;
	int locked = ki_app_enter(k);
	struct pub_ring *r = claimed_ring(k, channel);
	if (r)
		r->claimed = 0; /* nothing was made visible: nothing to undo */
	ki_app_exit(k, locked);
	return r ? 0 : KITE_ENOCLAIM;
}
