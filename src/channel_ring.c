/* Per-channel ring sizes (kite_set_channel_ring): patterns with the ring
 * size of the channels they match, consulted whenever a ring is made. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Rings a subscriber would refuse to map are refused here, when asked. */
#define RING_BYTES_MAX (RING_ACCEPT_MAX / 2)

uint32_t ki_pub_ring_slots(const kite *k, const char *channel)
{
	for (size_t i = k->nring_rules; i-- > 0;)
		if (kite_pattern_match(k->ring_rules[i].pattern, channel))
			return k->ring_rules[i].slots;
	return k->opt.ring_slots;
}

/* The slots of a ring of `bytes`, or 0 if no valid geometry gives it. */
static uint32_t slots_for(const kite *k, size_t bytes)
{
	size_t slot = k->opt.slot_size;
	if (bytes % slot || bytes > RING_BYTES_MAX || bytes / slot > RING_MAX_SLOTS)
		return 0;
	uint32_t slots = (uint32_t)(bytes / slot);
	return ki_ring_geometry_valid(slots, (uint32_t)slot, NULL) ? 0 : slots;
}

static void remove_rule(kite *k, size_t i)
{
	memmove(&k->ring_rules[i], &k->ring_rules[i + 1],
		(k->nring_rules - i - 1) * sizeof *k->ring_rules);
	k->nring_rules--;
}

int kite_set_channel_ring(kite *k, const char *pattern, size_t bytes)
{
	int rc = ki_pattern_call_check(k, pattern);
	if (rc)
		return rc;
	uint32_t slots = bytes ? slots_for(k, bytes) : 0;
	if (bytes && !slots)
		return -EINVAL;
	kite_lock(k);
	/* The same pattern again: its new size is now the latest setting. */
	for (size_t i = 0; i < k->nring_rules; i++)
		if (!strcmp(k->ring_rules[i].pattern, pattern)) {
			remove_rule(k, i);
			break;
		}
	rc = 0;
	if (bytes && k->nring_rules == KITE_RING_RULES_MAX) {
		rc = -ENOSPC;
	} else if (bytes) {
		struct ring_rule *t = realloc(k->ring_rules,
					      (k->nring_rules + 1) * sizeof *t);
		if (!t) {
			rc = -ENOMEM;
		} else {
			k->ring_rules = t;
			snprintf(t[k->nring_rules].pattern, sizeof t->pattern, "%s", pattern);
			t[k->nring_rules++].slots = slots;
		}
	}
	kite_unlock(k);
	return rc;
}
