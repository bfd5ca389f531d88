/* One LAN stream's sequence accounting: in-order delivery through a small
 * reorder window, duplicates and late arrivals told apart and counted,
 * gaps declared lost after the reorder time or when the window overflows. */
#include "lan_stream.h"

#include <stdlib.h>
#include <string.h>

void ki_lan_msg_free(struct lan_msg *m)
{
	/* m may lie in its own block: emptied before that is freed. */
	void *p = m->block ? m->block : m->data;
	m->data = NULL;
	m->block = NULL;
	free(p);
}

static size_t window(const struct lan_stream *s)
{
	return s->window ? s->window : LAN_REORDER_WINDOW;
}

static struct lan_msg *slot(struct lan_stream *s, uint64_t seq)
{
	return s->window ? &s->wide[seq % s->window] : &s->held[seq % LAN_REORDER_WINDOW];
}

static const struct lan_msg *slot_at(const struct lan_stream *s, uint64_t seq)
{
	return slot((struct lan_stream *)(uintptr_t)s, seq);
}

void ki_lan_stream_widen(struct lan_stream *s, size_t slots, size_t *budget)
{
	s->window_max = slots;
	s->slots_budget = budget;
}

/* Double the window, moving what is held (all of it lies within
 * [next, next + old window), so no two of it share a new slot): 0, or -1
 * if it may not or cannot. */
static int grow(struct lan_stream *s)
{
	size_t old = window(s), slots = old * 2;
	if (slots > s->window_max || !s->slots_budget || *s->slots_budget < slots)
		return -1;
	struct lan_msg *wide = calloc(slots, sizeof *wide);
	if (!wide)
		return -1;
	struct lan_msg *from = s->window ? s->wide : s->held;
	for (size_t i = 0; i < old; i++)
		if (from[i].data)
			wide[from[i].seq % slots] = from[i];
	if (s->window)
		*s->slots_budget += s->window;
	else
		memset(s->held, 0, sizeof s->held);
	*s->slots_budget -= slots;
	free(s->wide);
	s->wide = wide;
	s->window = slots;
	return 0;
}

/* next has been delivered or lost: move on by one. */
static void advance(struct lan_stream *s, int delivered)
{
	s->delivered_mask = (s->delivered_mask << 1) | (delivered ? 1u : 0u);
	s->next++;
}

/* n messages of bytes more held (n < 0: fewer), in the stream's count and
 * the handle's. */
static void held_change(struct lan_stream *s, long n, long bytes)
{
	s->nheld += (size_t)n;
	s->held_bytes += (size_t)bytes;
	if (s->held_total) {
		s->held_total->msgs += (size_t)n;
		s->held_total->bytes += (size_t)bytes;
	}
}

/* Deliver the held messages that now come next, in order. */
static void deliver_ready(struct lan_stream *s, const struct lan_sink *out)
{
	for (;;) {
		struct lan_msg *h = slot(s, s->next);
		if (!h->data || h->seq != s->next)
			break;
		struct lan_msg m = *h;
		memset(h, 0, sizeof *h);
		held_change(s, -1, -(long)m.len);
		advance(s, 1);
		s->delivered++;
		out->message(out->ctx, s, &m);
	}
}

/* The last sequence anything is known of: held or announced. (Every held
 * sequence is at most held_max; one below next was delivered.) */
static uint64_t known_end(const struct lan_stream *s)
{
	uint64_t end = s->announced;
	if (s->nheld && s->held_max > end)
		end = s->held_max;
	return end;
}

size_t ki_lan_stream_missing(const struct lan_stream *s, struct lan_seq_range *out,
			     size_t max)
{
	uint64_t end = known_end(s);
	size_t n = 0;
	if (!s->started || max == 0)
		return 0;
	for (uint64_t q = s->next; q <= end; q++) {
		const struct lan_msg *h = slot_at(s, q);
		if (h->data && h->seq == q)
			continue;
		if (n && out[n - 1].last + 1 == q) {
			out[n - 1].last = q;
		} else if (n == max) {
			break;
		} else {
			out[n].first = out[n].last = q;
			n++;
		}
		/* Past the window nothing is held: the rest is one run. */
		if (q >= s->next + window(s)) {
			out[n - 1].last = end;
			break;
		}
	}
	return n;
}

/* Declare the gap at next lost, up to the next held message (or up to
 * `upto`, whichever comes first), then deliver what follows it. */
static void skip_gap(struct lan_stream *s, uint64_t upto, const struct lan_sink *out)
{
	uint64_t n = 0;
	while (s->next <= upto) {
		if (!s->nheld) {
			/* Nothing held: the rest of the gap in one step (an
			 * announced sequence may lie far ahead). */
			uint64_t rest = upto - s->next + 1;
			s->delivered_mask = rest >= 64 ? 0 : s->delivered_mask << rest;
			s->next = upto + 1;
			n += rest;
			break;
		}
		struct lan_msg *h = slot(s, s->next);
		if (h->data && h->seq == s->next)
			break;
		advance(s, 0);
		n++;
	}
	if (n) {
		s->lost += n;
		out->loss(out->ctx, s, n);
	}
	deliver_ready(s, out);
}

/* Start the gap's clock if there is one: it exists since the first held
 * message behind it arrived (or, with none held, since now). */
static void note_gap(struct lan_stream *s, uint64_t now_ns)
{
	if (s->next > known_end(s)) {
		s->gap_since_ns = 0;
		return;
	}
	if (s->gap_since_ns)
		return;
	uint64_t since = now_ns ? now_ns : 1;
	for (uint64_t q = s->next; q <= s->held_max && q < s->next + window(s); q++) {
		const struct lan_msg *h = slot(s, q);
		if (h->data && h->seq == q && h->arrived_ns && h->arrived_ns < since)
			since = h->arrived_ns;
	}
	s->gap_since_ns = since;
}

void ki_lan_stream_begin(struct lan_stream *s, uint64_t seq)
{
	if (!s->started) {
		/* A late joiner hears the stream from here on. */
		s->started = 1;
		s->next = seq;
	}
}

int ki_lan_stream_heard_start(uint64_t arrived_ns, uint32_t age_ms, uint64_t since_ns)
{
	if (age_ms == LAN_AGE_MAX || since_ns >= arrived_ns)
		return 0;
	uint64_t age_ns = (uint64_t)age_ms * 1000000u;
	return arrived_ns - since_ns > age_ns + age_ns / 1000 + LAN_START_MARGIN_NS;
}

int ki_lan_stream_first(struct lan_stream *s, const struct lan_frame *f, uint64_t arrived_ns,
			uint64_t since_ns)
{
	if (s->started)
		return 0;
	if (f->flags & LAN_FLAG_REPAIR)
		return -1;
	if (f->has_age && ki_lan_stream_heard_start(arrived_ns, f->age_ms, since_ns))
		ki_lan_stream_begin(s, 1);
	return 0;
}

int ki_lan_stream_take(struct lan_stream *s, struct lan_msg *m, uint64_t now_ns,
		    uint64_t reorder_ns, const struct lan_sink *out)
{
	s->last_heard_ns = now_ns;
	ki_lan_stream_begin(s, m->seq);
	if (m->seq < s->next) {
		ki_lan_stream_behind(s, m->seq);
		ki_lan_msg_free(m);
		return 0;
	}
	/* Beyond the window: the oldest gaps cannot wait any longer. (Nothing
	 * held: one step, however far a hostile sequence jumps.) */
	while (s->next + window(s) <= m->seq && grow(s) == 0)
		;
	if (s->next + window(s) <= m->seq) {
		while (s->next + window(s) <= m->seq)
			skip_gap(s, m->seq - window(s), out);
		s->gap_since_ns = 0; /* note_gap below: the next gap's age */
	}
	if (m->seq == s->next && !s->nheld && m->data) {
		/* The next one, nothing waiting: straight on (the common case,
		 * without a trip through the window). */
		if (m->seq > s->held_max)
			s->held_max = m->seq;
		advance(s, 1);
		s->delivered++;
		out->message(out->ctx, s, m);
		note_gap(s, now_ns);
		ki_lan_stream_tick(s, now_ns, reorder_ns, out);
		return 1;
	}
	struct lan_msg *h = slot(s, m->seq);
	if (h->data && h->seq == m->seq) {
		s->duplicates++;
		ki_lan_msg_free(m);
		return 0;
	}
	if (!m->data) /* an empty message still needs a mark */
		m->data = malloc(1);
	if (!m->data) {
		/* No memory to hold it: it is lost, and counted so. */
		s->lost++;
		out->loss(out->ctx, s, 1);
		return 0;
	}
	*h = *m;
	h->arrived_ns = now_ns;
	m->data = NULL;
	m->block = NULL;
	if (h->seq > s->held_max)
		s->held_max = h->seq;
	held_change(s, 1, (long)h->len);
	deliver_ready(s, out);
	note_gap(s, now_ns);
	ki_lan_stream_tick(s, now_ns, reorder_ns, out);
	return 1;
}

void ki_lan_stream_behind(struct lan_stream *s, uint64_t seq)
{
	uint64_t back = s->next - 1 - seq;
	if (back < LAN_HISTORY && (s->delivered_mask >> back) & 1)
		s->duplicates++;
	else
		s->late++; /* already counted lost (or before we joined) */
}

void ki_lan_stream_announce(struct lan_stream *s, uint64_t seq, uint64_t now_ns,
			 uint64_t reorder_ns, const struct lan_sink *out)
{
	s->last_heard_ns = now_ns;
	if (!s->started) {
		/* Joined while it was idle: nothing of before is ours to count
		 * (seq 0: it has sent nothing yet, its first message is ours). */
		s->started = 1;
		s->next = seq + 1;
	}
	if (seq > s->announced)
		s->announced = seq;
	note_gap(s, now_ns);
	ki_lan_stream_tick(s, now_ns, reorder_ns, out);
}

uint64_t ki_lan_stream_tick(struct lan_stream *s, uint64_t now_ns, uint64_t reorder_ns,
			 const struct lan_sink *out)
{
	while (s->gap_since_ns) {
		uint64_t due = s->gap_since_ns + reorder_ns;
		if (now_ns < due)
			return due - now_ns;
		skip_gap(s, known_end(s), out);
		/* A further gap behind the delivered run has its own age. */
		s->gap_since_ns = 0;
		note_gap(s, now_ns);
	}
	return UINT64_MAX;
}

void ki_lan_stream_flush(struct lan_stream *s, const struct lan_sink *out)
{
	if (!s->started)
		return; /* nothing heard whole yet: no sequence to call lost */
	uint64_t end = known_end(s);
	while (s->next <= end)
		skip_gap(s, end, out);
	s->gap_since_ns = 0;
}

void ki_lan_stream_restart(struct lan_stream *s, const struct lan_sink *out)
{
	ki_lan_stream_flush(s, out);
	ki_lan_stream_clear(s);
	s->started = 0;
	s->next = s->announced = s->held_max = s->delivered_mask = 0;
}

void ki_lan_stream_clear(struct lan_stream *s)
{
	for (size_t i = 0; i < LAN_REORDER_WINDOW; i++) {
		ki_lan_msg_free(&s->held[i]);
	}
	for (size_t i = 0; i < s->window; i++)
		ki_lan_msg_free(&s->wide[i]);
	free(s->wide);
	if (s->window && s->slots_budget)
		*s->slots_budget += s->window;
	s->wide = NULL;
	s->window = 0;
	held_change(s, -(long)s->nheld, -(long)s->held_bytes);
}
