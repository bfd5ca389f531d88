/* Who may take part in a channel: by default our own uid and root; more
 * through explicit uid/gid allow rules. Decided on SO_PEERCRED and
 * SO_PEERGROUPS, which the kernel fills in, never on what a peer claims. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "internal.h"

int ki_policy_allows(const kite *k, const struct peer *p, const char *channel,
		  char *why, size_t why_len)
{
	if (p->uid == k->euid || p->uid == 0)
		return 1;
	for (size_t i = 0; i < k->nrules; i++) {
		const struct allow_rule *r = &k->rules[i];
		if (!kite_pattern_match(r->pattern, channel))
			continue;
		if (!r->is_gid && r->id == p->uid)
			return 1;
		if (r->is_gid) {
			if (r->id == p->gid)
				return 1;
			for (int g = 0; g < p->ngroups; g++)
				if (r->id == p->groups[g])
					return 1;
		}
	}
	if (why)
		snprintf(why, why_len,
			 "pid %ld uid %u is not allowed on channel %s by pid %ld uid %u "
			 "(default: same uid or root; widen with kite_allow_uid/gid)",
			 (long)p->pid, (unsigned)p->uid, channel, (long)getpid(),
			 (unsigned)k->euid);
	return 0;
}

int ki_policy_may_share(const kite *k, const struct peer *p, const char *pattern)
{
	if (p->uid == k->euid || p->uid == 0)
		return 1;
	for (size_t i = 0; i < k->nrules; i++) {
		const struct allow_rule *r = &k->rules[i];
		int member = !r->is_gid ? r->id == p->uid : r->id == p->gid;
		for (int g = 0; r->is_gid && !member && g < p->ngroups; g++)
			member = r->id == p->groups[g];
		if (member && ki_patterns_overlap(r->pattern, pattern))
			return 1;
	}
	return 0;
}

const char *ki_peer_pattern_for(const struct peer *p, const char *channel)
{
	for (size_t i = 0; i < p->npatterns; i++)
		if (kite_pattern_match(p->patterns[i], channel))
			return p->patterns[i];
	return NULL;
}

static int add_rule(kite *k, const char *pattern, int is_gid, unsigned id)
{
	int rc = ki_pattern_call_check(k, pattern);
	if (rc)
		return rc;
	kite_lock(k);
	struct allow_rule *r = realloc(k->rules, (k->nrules + 1) * sizeof *r);
	if (!r) {
		kite_unlock(k);
		return -ENOMEM;
	}
	k->rules = r;
	r = &k->rules[k->nrules++];
	snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
	r->is_gid = is_gid;
	r->id = id;
	/* Peers already subscribed may now qualify for rings we refused, and
	 * patterns we refused outright may now be theirs. */
	for (struct peer *p = k->peers; p; p = p->next) {
		if (!p->hello || p->closing)
			continue;
		for (size_t i = 0; i < p->nrefused;) {
			const char *pat = p->refused[i];
			if (!ki_policy_may_share(k, p, pat)) {
				i++;
				continue;
			}
			if (ki_strlist_add(&p->patterns, &p->npatterns, pat) < 0)
				break;
			ki_strlist_remove(&p->refused, &p->nrefused, pat);
		}
		ki_pub_offer_rings(k, p, NULL);
	}
	/* Handles of users who were strangers until now were dialled only a
	 * few at a time at open: link the rest. */
	ki_peer_connect_existing(k);
	kite_unlock(k);
	return 0;
}

int kite_allow_uid(kite *k, const char *pattern, uid_t uid)
{
	return add_rule(k, pattern, 0, (unsigned)uid);
}

int kite_allow_gid(kite *k, const char *pattern, gid_t gid)
{
	return add_rule(k, pattern, 1, (unsigned)gid);
}
