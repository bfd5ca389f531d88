/* Subscribing: our patterns, sent to every peer; the rings publishers hand
 * us, checked (policy, seals, size, header) before they are mapped
 * read-only; large-message memfds kept until the slot naming them is read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"

int ki_sub_matches(const kite *k, const char *channel)
{
	return ki_strlist_any_match(k->patterns, k->npatterns, channel);
}

static struct sub_ring *find_sub(kite *k, const struct peer *p, uint64_t ring_id)
{
	for (size_t i = 0; i < k->nsubs; i++)
		if (k->subs[i]->peer == p && k->subs[i]->ring_id == ring_id &&
		    !k->subs[i]->unsubscribed)
			return k->subs[i];
	return NULL;
}

void ki_sub_ring_unmap(struct sub_ring *s)
{
	if (s->r.base)
		munmap((void *)(uintptr_t)s->r.base, s->bytes);
	s->r.base = NULL;
	for (int i = 0; i < s->nlarge; i++)
		close(s->large[i].fd);
	s->nlarge = 0;
}

void ki_sub_ring_free(struct sub_ring *s)
{
	ki_sub_ring_unmap(s);
	ki_sub_heads_unmap(s);
	free(s);
}

/* A ring of this stream its publisher released after an idle spell. */
static int released(const struct sub_ring *s)
{
	return s->retiring || s->dormant;
}

/* The live ring this publisher feeds us for channel. */
static struct sub_ring *find_channel(kite *k, const struct peer *p,
				     const char *channel)
{
	for (size_t i = 0; i < k->nsubs; i++)
		if (k->subs[i]->peer == p && !k->subs[i]->unsubscribed &&
		    !released(k->subs[i]) && !strcmp(k->subs[i]->channel, channel))
			return k->subs[i];
	return NULL;
}

/* The latest released ring of the stream (publisher, channel). */
static struct sub_ring *find_released(kite *k, uint64_t publisher,
				      const char *channel)
{
	struct sub_ring *last = NULL;
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *s = k->subs[i];
		if (s->publisher == publisher && !s->unsubscribed && released(s) &&
		    !strcmp(s->channel, channel) && (!last || s->ring_id > last->ring_id))
			last = s;
	}
	return last;
}

/* Any ring of the stream (publisher, channel) we still hold. */
static struct sub_ring *find_stream(kite *k, uint64_t publisher, const char *channel)
{
	for (size_t i = 0; i < k->nsubs; i++)
		if (k->subs[i]->publisher == publisher && !k->subs[i]->unsubscribed &&
		    !strcmp(k->subs[i]->channel, channel))
			return k->subs[i];
	return NULL;
}

struct sub_ring *ki_sub_successor(kite *k, const struct sub_ring *s)
{
	struct sub_ring *next = NULL;
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *t = k->subs[i];
		if (t->publisher == s->publisher && !t->unsubscribed &&
		    t->ring_id > s->ring_id && !strcmp(t->channel, s->channel) &&
		    (!next || t->ring_id < next->ring_id))
			next = t;
	}
	return next;
}

/* Tell a publisher why we do not take its ring (it named the channel to
 * us), and our application. */
static void refuse(kite *k, struct peer *p, const char *channel, const char *why)
{
	struct wire_msg r;
	ki_wire_init(&r, W_REFUSE);
	snprintf(r.text, sizeof r.text, "%s", channel);
	snprintf(r.reason, sizeof r.reason, "%s", why);
	ki_peer_send(k, p, &r);
	ki_refusal_event(k, p, channel, 0, "refused publisher: %s", why);
}

/* A ring of this publisher we read while its link was down, offered again:
 * the same memfd (its inode says so) carries on where we were. */
static int reattach(kite *k, struct peer *p, const struct wire_msg *m, int fd)
{
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *s = k->subs[i];
		if (!s->relinking || s->peer || s->unsubscribed ||
		    s->publisher != p->id || strcmp(s->channel, m->text))
			continue;
		struct stat st;
		s->relinking = 0;
		if (released(s)) {
			s->peer = p; /* the new ring carries its stream on */
			return 0;
		}
		if (s->ring_id < m->id && m->b > 1) {
			/* A later ring of the stream: ours was released while
			 * the link was down, and its W_RING_END was lost with
			 * it. Read ours to its end, then the new one. */
			s->peer = p;
			s->retiring = 1;
			s->end_seq = m->b - 1 < RING_START_MAX ? m->b - 1 : RING_START_MAX;
			ki_wake_self(k);
			return 0;
		}
		if (s->ring_id != m->id || fstat(fd, &st) < 0 || (uint64_t)st.st_ino != s->ino) {
			s->gone = 1; /* a new ring for the channel: this one ends */
			ki_wake_self(k);
			return 0;
		}
		s->peer = p;
		close(fd);
		ki_peer_send_wake(k, p);
		ki_pos_attach(k, p, s); /* its new link honours where we are */
		ki_wake_self(k);
		return 1;
	}
	return 0;
}

void ki_sub_join(struct sub_ring *s, uint64_t from)
{
	if (from >= RING_START_MAX)
		from = RING_START_MAX;
	/* Walk to from's record. If the ring starts after from (our stream
	 * began in an earlier ring we never got: its hand-over was lost with
	 * a cut link, and it was released since), or a later lap took from's
	 * record, what lies between is lost to us. */
	s->pending_lost = ki_ring_seek(&s->r, from);
}

/* The publisher made a new ring for a stream whose ring it released: read
 * on from where the old one ends (after it, if it is still being read),
 * with no new KITE_PUBLISHER_NEW. */
static void continue_stream(kite *k, struct sub_ring *s, struct sub_ring *before)
{
	s->announce = 0;
	if (before->dormant) {
		s->lost += before->lost; /* the stream's loss count goes on */
		before->lost = 0;
		ki_sub_join(s, before->r.next);
		/* A stream known from a release alone (adopt_released) may
		 * not have said NEW and its loss yet: the new ring says them. */
		s->announce = before->announce;
		s->pending_lost += before->pending_lost;
		before->unsubscribed = 1; /* freed by the next kite_recv() */
		k->retired = 1;
	} else {
		s->blocked = 1; /* joined once before is drained */
	}
}

/* Map the one page of a publisher's stream heads page (fd) holding entry
 * slot1 - 1, after the checks any ring gets. A page that fails them is not
 * used: the stream is then as if it had none. fd stays open. */
static void map_heads(struct sub_ring *s, int fd, uint64_t slot1)
{
	uint64_t slot = slot1 - 1;
	if (fd < 0 || !slot1 || slot >= HEADS_MAX || ki_shm_check(fd, SEALS_RING, HEADS_BYTES, 1))
		return;
	off_t page = (off_t)((slot * sizeof(uint64_t)) & ~(uint64_t)4095);
	void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, page);
	if (map == MAP_FAILED)
		return;
	ki_sub_heads_unmap(s);
	s->heads_page = map;
	s->head_index = (uint32_t)(slot % (4096 / sizeof(uint64_t)));
}

/* The first seq the publisher's offer gives us (0 from a liar: 1). */
static uint64_t start_seq(uint64_t a)
{
	if (!a)
		return 1;
	return a < RING_START_MAX ? a : RING_START_MAX;
}

/* What our patterns matching channel ask to replay: 1 and the largest
 * count (UINT64_MAX: none) and the earliest stamp (0: none) among them;
 * 0 if none asks for replay. */
static int replay_wanted(const kite *k, const char *channel, uint64_t *last_n,
			 uint64_t *since_ns)
{
	uint64_t n = 0, ms = 0;
	int any = 0;
	for (size_t i = 0; i < k->npatterns; i++) {
		const struct sub_replay *r = &k->pattern_replay[i];
		if ((!r->last_n && !r->last_ms) || !kite_pattern_match(k->patterns[i], channel))
			continue;
		any = 1;
		uint64_t pn = r->last_n ? r->last_n : UINT64_MAX;
		uint64_t pms = r->last_ms ? r->last_ms : UINT64_MAX;
		n = pn > n ? pn : n;
		ms = pms > ms ? pms : ms;
	}
	if (!any)
		return 0;
	uint64_t now = ki_realtime_ns();
	*last_n = n;
	*since_ns = ms == UINT64_MAX || ms * 1000000u >= now ? 0 : now - ms * 1000000u;
	return 1;
}

/* Did one of our patterns matching channel exist before the stream began
 * (born_ns, as its ring's header says)? Then we were subscribed all along,
 * and a ring that reaches us late was late: the link was being made while
 * we were stopped (SIGSTOP, a debugger) or starved past the publisher's
 * handshake_ms, and the publisher, to whom we were not there yet, offers
 * from its head. 0 (unknown, or a ring of an older libkite) never is, nor
 * a stamp on another clock than ours (born_clock: a publisher in another
 * time namespace, whose CLOCK_MONOTONIC is offset from ours by any amount
 * and would have us replay a stream begun before we subscribed). */
static int subscribed_before(const kite *k, const char *channel, uint64_t born_ns,
			     uint64_t born_clock)
{
	if (!born_ns || !born_clock || born_clock != k->clock_id)
		return 0;
	for (size_t i = 0; i < k->npatterns; i++)
		if (k->pattern_replay[i].made_ns < born_ns &&
		    kite_pattern_match(k->patterns[i], channel))
			return 1;
	return 0;
}

/* Room for one more record in k->subs; 0 or -ENOMEM. */
static int subs_room(kite *k)
{
	if (k->nsubs < k->subs_cap)
		return 0;
	size_t cap = k->subs_cap ? k->subs_cap * 2 : 8;
	struct sub_ring **t = realloc(k->subs, cap * sizeof *t);
	if (!t)
		return -ENOMEM;
	k->subs = t;
	k->subs_cap = cap;
	return 0;
}

/* A record's stream: the ring m names (its id and channel), fed by p. */
static void name_stream(struct sub_ring *s, struct peer *p, const struct wire_msg *m)
{
	snprintf(s->channel, sizeof s->channel, "%s", m->text);
	s->ring_id = m->id;
	s->publisher = p->id;
	s->peer = p;
	s->pid = p->pid;
	s->uid = p->uid;
	s->gid = p->gid;
}

int ki_sub_attach(kite *k, struct peer *p, const struct wire_msg *m)
{
	int fd = m->fds[0];
	size_t bytes;
	char why[WIRE_REASON_MAX + 1];
	if (kite_channel_valid(m->text) ||
	    ki_ring_geometry_valid(m->slot_count, m->slot_size, &bytes)) {
		close(fd);
		return -EPROTO;
	}
	if (ki_sub_matches(k, m->text) && reattach(k, p, m, fd))
		return 0;
	if (!ki_sub_matches(k, m->text) || find_sub(k, p, m->id) ||
	    find_channel(k, p, m->text)) {
		/* Crossed an unsubscribe, a duplicate, or a second ring for a
		 * channel this publisher already feeds us: not ours. */
		close(fd);
		return 0;
	}
	if (bytes > RING_ACCEPT_MAX) {
		snprintf(why, sizeof why, "ring of %zu bytes is over the %llu a "
			 "subscriber maps", bytes, (unsigned long long)RING_ACCEPT_MAX);
		refuse(k, p, m->text, why);
		close(fd);
		return 0;
	}
	if (!ki_policy_allows(k, p, m->text, why, sizeof why)) {
		refuse(k, p, m->text, why);
		close(fd);
		return 0;
	}
	const void *base = NULL;
	struct sub_ring *s = NULL;
	struct stat st;
	if (ki_shm_check(fd, SEALS_RING, bytes, 1) || fstat(fd, &st) < 0 ||
	    !(base = ki_shm_map(fd, bytes, 0)) ||
	    ki_ring_header_check(base, m->slot_count, m->slot_size, m->text) ||
	    !(s = calloc(1, sizeof *s)))
		goto bad;
	if (subs_room(k))
		goto bad;
	/* The application may still be reading msg_buf: kite_recv grows it. */
	if (ki_ring_read_max(m->slot_count, m->slot_size) > k->msg_buf_want)
		k->msg_buf_want = ki_ring_read_max(m->slot_count, m->slot_size);
	close(fd);
	name_stream(s, p, m);
	s->bytes = bytes;
	s->ino = (uint64_t)st.st_ino;
	/* The ring's first record is at position 0; we walk from there to
	 * our own start. A start no honest publisher sends ends the stream. */
	ki_ring_reader_init(&s->r, base, m->slot_count, m->slot_size, m->b, 0);
	struct sub_ring *before = find_released(k, p->id, m->text);
	uint64_t last_n, since_ns;
	/* Replay only the first ring of a stream we get: a later one carries
	 * on from where its predecessor ended, and one that takes over from
	 * a ring of this publisher we still hold (a link made again) must not
	 * deliver what that ring did. A stream that began after we
	 * subscribed we take from its start, which is all a replay could
	 * give and more: what its ring no longer holds is reported lost.
	 * Not from a publisher that refused us: we were let in only now. */
	int first_ring = !before && !find_stream(k, p->id, m->text);
	const volatile struct ring_header *h = base;
	if (first_ring && !p->refused_us &&
	    subscribed_before(k, m->text, h->stream_born_ns, h->stream_clock)) {
		/* All the ring holds, as a replay of everything would give
		 * (from the oldest record if it went round), and every
		 * message before the first of those lost. */
		uint64_t beyond = ki_ring_replay(&s->r, start_seq(m->a), UINT64_MAX, 0);
		s->pending_lost = s->r.next < RING_SEQ_END ? s->r.next - 1 : beyond;
	} else if (first_ring && replay_wanted(k, m->text, &last_n, &since_ns))
		s->pending_lost = ki_ring_replay(&s->r, start_seq(m->a), last_n, since_ns);
	else
		ki_sub_join(s, start_seq(m->a));
	/* KITE_PUBLISHER_NEW comes from the ring's own state, before its
	 * first message: no queue can overflow and drop it. */
	s->announce = 1;
	if (m->nfds == 2)
		map_heads(s, m->fds[1],
			  *(const volatile uint32_t *)&((const struct ring_header *)base)->heads_slot);
	if (before)
		continue_stream(k, s, before);
	k->subs[k->nsubs++] = s;
	ki_peer_send_wake(k, p);
	ki_pos_attach(k, p, s);
	ki_wake_self(k);
	return 0;
bad:
	if (base)
		munmap((void *)(uintptr_t)base, bytes);
	free(s);
	close(fd);
	ki_event_push(k, KITE_REFUSED, m->text, p->id, p->pid, p->uid, p->gid, 0, 0,
		   "rejected a ring from pid %ld: bad size, seals or header",
		   (long)p->pid);
	return 0;
}

void ki_sub_store_large(kite *k, struct peer *p, const struct wire_msg *m)
{
	struct sub_ring *s = find_sub(k, p, m->id);
	if (!s) {
		close(m->fds[0]);
		return;
	}
	if (s->nlarge == LARGE_KEEP) {
		/* Keep the newest: the oldest belongs to a slot we were overrun on. */
		int oldest = 0;
		for (int i = 1; i < s->nlarge; i++)
			if (s->large[i].large_id < s->large[oldest].large_id)
				oldest = i;
		close(s->large[oldest].fd);
		s->large[oldest] = s->large[--s->nlarge];
	}
	s->large[s->nlarge].large_id = m->a;
	s->large[s->nlarge].fd = m->fds[0];
	s->nlarge++;
}

void ki_sub_detach_peer(kite *k, struct peer *p, int gone)
{
	int any = 0;
	for (size_t i = 0; i < k->nsubs; i++)
		if (k->subs[i]->peer == p) {
			k->subs[i]->peer = NULL;
			k->subs[i]->gone = gone;
			k->subs[i]->relinking = !gone;
			any = 1;
		}
	if (any)
		ki_wake_self(k);
}

void ki_sub_gone_by_id(kite *k, uint64_t publisher)
{
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *s = k->subs[i];
		if (s->relinking && !s->peer && s->publisher == publisher) {
			s->relinking = 0;
			s->gone = 1;
		}
	}
	ki_wake_self(k);
}

/* Map the one page of the publisher's stream heads page that holds this
 * stream's entry (slot_count - 1), after the checks any ring gets. A page
 * that fails them is not used: the stream is then as if it had none. */
static void take_heads(struct sub_ring *s, const struct wire_msg *m)
{
	if (m->nfds != 1)
		return;
	map_heads(s, m->fds[0], m->slot_count);
	close(m->fds[0]);
}

void ki_sub_heads_unmap(struct sub_ring *s)
{
	if (s->heads_page)
		munmap((void *)(uintptr_t)s->heads_page, 4096);
	s->heads_page = NULL;
}

uint64_t ki_sub_stream_head(const struct sub_ring *s)
{
	if (!s->heads_page)
		return 0;
	const _Atomic uint64_t *h = (const _Atomic uint64_t *)s->heads_page + s->head_index;
	uint64_t v = atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)h, memory_order_acquire);
	return v < RING_START_MAX ? v : RING_START_MAX; /* a liar's, bounded */
}

/* A ring of this publisher whose link broke, named by an idle release said
 * again to the re-made link: the ring itself, or else our latest earlier
 * ring of its channel (the hand-over of the one released went with a link
 * dropped unread: its stream is ours all the same). */
static struct sub_ring *relinking_stream(kite *k, const struct peer *p,
					 const struct wire_msg *m)
{
	struct sub_ring *earlier = NULL;
	for (size_t i = 0; i < k->nsubs; i++) {
		struct sub_ring *t = k->subs[i];
		if (!t->relinking || t->peer || t->unsubscribed || t->publisher != p->id)
			continue;
		if (t->ring_id == m->id)
			return t;
		if (t->ring_id < m->id && !strcmp(t->channel, m->text) &&
		    (!earlier || t->ring_id > earlier->ring_id))
			earlier = t;
	}
	return earlier;
}

/* Any record of the stream (publisher, channel) we still keep. */
static int knows_stream(const kite *k, uint64_t publisher, const char *channel)
{
	for (size_t i = 0; i < k->nsubs; i++)
		if (k->subs[i]->publisher == publisher && !k->subs[i]->unsubscribed &&
		    !strcmp(k->subs[i]->channel, channel))
			return 1;
	return 0;
}

/* An idle release of a ring of a stream we never had any ring of: every
 * hand-over went with a link dropped unread (two links made at once, one
 * kept), or the channel was first published while our link was down. Ours
 * all the same if we asked for its channel and take it from p: a dormant
 * record, as if we had read up to its first seq (m->a) and the ring was
 * then released. It says KITE_PUBLISHER_NEW and its messages m->a..m->b
 * lost; the stream's next ring carries it on (continue_stream), or the
 * heads page and KITE_PUBLISHER_GONE end it. NULL if it is not ours. */
static struct sub_ring *adopt_released(kite *k, struct peer *p, const struct wire_msg *m)
{
	char why[WIRE_REASON_MAX + 1];
	struct sub_ring *s;
	if (kite_channel_valid(m->text) || !ki_sub_matches(k, m->text) ||
	    knows_stream(k, p->id, m->text))
		return NULL;
	if (!ki_policy_allows(k, p, m->text, why, sizeof why)) {
		refuse(k, p, m->text, why);
		return NULL;
	}
	if (subs_room(k) || !(s = calloc(1, sizeof *s)))
		return NULL;
	name_stream(s, p, m);
	s->dormant = 1;
	s->announce = 1;
	/* A liar's numbers are bounded: they spoil its own stream only. */
	uint64_t first = m->a < RING_START_MAX ? m->a : RING_START_MAX;
	uint64_t last = m->b < RING_START_MAX ? m->b : RING_START_MAX;
	s->r.next = first;
	if (last >= first) {
		s->pending_lost = last + 1 - first;
		s->r.next = last + 1;
	}
	k->subs[k->nsubs++] = s;
	ki_wake_self(k);
	return s;
}

void ki_sub_adopt_lost(kite *k, const struct peer *who, const char *channel,
		       uint64_t ring_id, uint64_t first, uint64_t head)
{
	struct sub_ring *s;
	/* A stream we hold a ring of reports its own end (its heads page). */
	if (knows_stream(k, who->id, channel) || subs_room(k) || !(s = calloc(1, sizeof *s)))
		return;
	snprintf(s->channel, sizeof s->channel, "%s", channel);
	s->ring_id = ring_id;
	s->publisher = who->id;
	s->pid = who->pid;
	s->uid = who->uid;
	s->gid = who->gid;
	/* Dormant and gone: poll_once says NEW, the loss, then GONE. */
	s->dormant = 1;
	s->gone = 1;
	s->announce = 1;
	s->pending_lost = head + 1 - first;
	s->r.next = head + 1;
	k->subs[k->nsubs++] = s;
	ki_wake_self(k);
}

void ki_sub_ring_end(kite *k, struct peer *p, const struct wire_msg *m)
{
	struct sub_ring *s = find_sub(k, p, m->id);
	if (!m->a) {
		if (m->nfds == 1)
			close(m->fds[0]);
		if (s) {
			s->peer = NULL;
			s->gone = 1;
			ki_wake_self(k);
		}
		return;
	}
	/* Released after an idle spell: also said again to a re-made link
	 * whose ring was released meanwhile, so it is not taken for ended. */
	if (!s && (s = relinking_stream(k, p, m))) {
		s->relinking = 0;
		s->peer = p;
	}
	if (!s)
		s = adopt_released(k, p, m);
	if (!s) {
		if (m->nfds == 1)
			close(m->fds[0]);
		return;
	}
	take_heads(s, m);
	/* Dormant, it has been read to its end: what a later ring held (to
	 * m->b) is reported lost when the stream's next ring joins it, or from
	 * the heads page if its publisher goes first. Else it is read to its
	 * end, and what lies beyond, to m->b, is lost. */
	if (s->dormant)
		return;
	s->retiring = 1;
	s->end_seq = m->b < RING_START_MAX ? m->b : RING_START_MAX;
	ki_wake_self(k);
}

/* Send a pattern change to every linked peer; returns how many acks to
 * expect. */
static uint64_t broadcast_pattern(kite *k, uint16_t type, const char *pattern,
				  uint64_t token, int reliable)
{
	uint64_t sent = 0;
	for (struct peer *p = k->peers; p; p = p->next) {
		if (!p->hello || p->closing || p->send_dead)
			continue;
		/* Only a peer that could publish to us here is waited for. */
		int wait = token && ki_policy_may_share(k, p, pattern);
		struct wire_msg m;
		ki_wire_init(&m, type);
		m.id = wait ? token : 0;
		m.a = reliable ? 1 : 0;
		snprintf(m.text, sizeof m.text, "%s", pattern);
		if (ki_peer_send(k, p, &m) == 0 && wait) {
			p->acks_pending++;
			sent++;
		}
	}
	return sent;
}

/* Our patterns, each with when it was subscribed (k->pattern_gen keeps
 * step with k->patterns): a re-made link tells old from new. */
static int pattern_add(kite *k, const char *pattern, struct sub_replay replay)
{
	uint64_t *g = realloc(k->pattern_gen, (k->npatterns + 1) * sizeof *g);
	if (!g)
		return -ENOMEM;
	k->pattern_gen = g;
	struct sub_replay *r = realloc(k->pattern_replay, (k->npatterns + 1) * sizeof *r);
	if (!r)
		return -ENOMEM;
	k->pattern_replay = r;
	int rc = ki_strlist_add(&k->patterns, &k->npatterns, pattern);
	if (rc > 0) {
		g[k->npatterns - 1] = ++k->sub_gen;
		replay.made_ns = ki_monotonic_ns();
		r[k->npatterns - 1] = replay;
	}
	return rc;
}

static int pattern_remove(kite *k, const char *pattern)
{
	for (size_t i = 0; i < k->npatterns; i++)
		if (!strcmp(k->patterns[i], pattern)) {
			/* ki_strlist_remove moves the last into i: so do we. */
			k->pattern_gen[i] = k->pattern_gen[k->npatterns - 1];
			k->pattern_replay[i] = k->pattern_replay[k->npatterns - 1];
			return ki_strlist_remove(&k->patterns, &k->npatterns, pattern);
		}
	return 0;
}

static int subscribe(kite *k, const char *pattern, int reliable, struct sub_replay replay)
{
	int rc = ki_pattern_call_check(k, pattern);
	if (rc)
		return rc;
	kite_lock(k);
	if (ki_strlist_find(k->patterns, k->npatterns, pattern)) {
		/* Again: a no-op, unless it asks for the other delivery. */
		rc = ki_strlist_find(k->reliable, k->nreliable, pattern) == reliable ? 0
										      : -EEXIST;
		kite_unlock(k);
		return rc;
	}
	rc = k->npatterns < KITE_PATTERNS_MAX ? pattern_add(k, pattern, replay) : -ENOSPC;
	if (rc > 0 && reliable && ki_strlist_add(&k->reliable, &k->nreliable, pattern) < 0) {
		pattern_remove(k, pattern);
		rc = -ENOMEM;
	}
	if (rc <= 0) {
		kite_unlock(k);
		return rc;
	}
	if ((rc = ki_lan_subscribe(k, pattern)) < 0) {
		pattern_remove(k, pattern);
		ki_strlist_remove(&k->reliable, &k->nreliable, pattern);
		kite_unlock(k);
		return rc;
	}
	/* Wait until every publisher there now has answered, so that what it
	 * publishes after kite_subscribe() returns reaches us. */
	k->pending_acks += broadcast_pattern(k, W_SUB, pattern, ++k->next_token, reliable);
	if (reliable)
		ki_pos_attach_matching(k, pattern);
	struct timespec deadline;
	ki_deadline_after_ms(&deadline, k->opt.handshake_ms);
	while (k->pending_acks &&
	       pthread_cond_timedwait(&k->cond, &k->lock, &deadline) != ETIMEDOUT)
		;
	kite_unlock(k);
	return 0;
}

int kite_subscribe(kite *k, const char *pattern)
{
	return subscribe(k, pattern, 0, (struct sub_replay){.last_n = 0});
}

int kite_subscribe_opts(kite *k, const char *pattern, const struct kite_sub_options *o)
{
	if (!o)
		return kite_subscribe(k, pattern);
	if ((o->flags & ~KITE_SUB_RELIABLE) || o->reserved32)
		return -EINVAL;
	for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
		if (o->reserved[i])
			return -EINVAL;
	return subscribe(k, pattern, (o->flags & KITE_SUB_RELIABLE) != 0,
			 (struct sub_replay){.last_n = o->last_n, .last_ms = o->last_ms});
}

int kite_unsubscribe(kite *k, const char *pattern)
{
	int rc = ki_pattern_call_check(k, pattern);
	if (rc)
		return rc;
	kite_lock(k);
	if (!pattern_remove(k, pattern)) {
		kite_unlock(k);
		return KITE_ENOTSUB;
	}
	broadcast_pattern(k, W_UNSUB, pattern, 0, 0);
	if (ki_strlist_remove(&k->reliable, &k->nreliable, pattern))
		k->retired = 1; /* rings it alone made reliable: radio */
	ki_lan_unsubscribe(k, pattern);
	for (size_t i = 0; i < k->nsubs; i++)
		if (!ki_sub_matches(k, k->subs[i]->channel)) {
			k->subs[i]->unsubscribed = 1;
			k->retired = 1;
		}
	kite_unlock(k);
	return 0;
}
