/* Zero-copy publish: kite_claim() hands out the body of the next record of
 * a channel's ring, or for a message longer than a record takes inline,
 * room in the ring's pool; the caller builds its message there, and
 * kite_commit() makes it visible (header, timestamp, seq word last; for the
 * pool, the record naming the payload) exactly as kite_publish() would
 * have; kite_abort() gives it up unpublished.
 *
 * While a claim is open the ring belongs to it: nothing else writes a
 * record there (kite_publish and a second claim get -EBUSY), and the idle
 * sweep does not release it, so the pointer stays valid. The room is taken
 * at claim time, as kite_publish takes it: the ring's (or pool's) limit is
 * raised before the caller writes a byte, so a radio reader that far
 * behind counts its loss then, and reliable readers are waited for then.
 * A publisher that dies before committing leaves no record (the seq word
 * where it goes stays 0): readers never see it, and its stream ends with
 * what was committed. A message too long for the pool goes in a memfd of
 * its own, made from a finished copy: that cannot be claimed. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* The ring of channel with an open claim, or NULL. With the state held. */
static struct pub_ring *claimed_ring(kite *k, const char *channel)
{
	struct pub_ring *r = k->last_pub;
	if (!r || !ki_pub_same_channel(r, channel))
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
	enum pub_place place = r && !rc ? ki_pub_place(r, len, 0) : PUB_MEMFD;
	if (r && !rc && place == PUB_MEMFD)
		rc = -EMSGSIZE; /* a record or the pool only (as publish decides) */
	else if (r && !rc) /* as kite_publish: room in every reliable reader */
		rc = ki_pub_make_room(k, r, place, len, &locked);
	if (r && !rc) {
		r->claim_pool_pos = UINT64_MAX;
		*data = place == PUB_INLINE
				? ki_ring_claim(&r->w, (uint32_t)len)
				: ki_ring_pool_claim(&r->w, len, &r->claim_pool_pos);
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
		uint64_t stamp = ki_stamp_now(&k->stamp); /* as publish() */
		uint64_t seq;
		const void *body;
		if (r->claim_pool_pos == UINT64_MAX) {
			body = ki_ring_claimed_body(&r->w);
			seq = ki_ring_commit(&r->w, 0, (uint32_t)len, 0, stamp);
		} else {
			body = ki_ring_pool_payload(&r->w, r->claim_pool_pos);
			seq = ki_ring_pool_commit(&r->w, r->claim_pool_pos, len, 0, stamp);
		}
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
		r->claimed = 0; /* nothing was made visible: nothing to undo (pool
				   room claimed stays spent: its limit was told) */
	ki_app_exit(k, locked);
	return r ? 0 : KITE_ENOCLAIM;
}
