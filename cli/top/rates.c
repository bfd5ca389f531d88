/* kite top: per-channel and per-subscriber figures, from the snapshot
 * just taken and the one before (rates and new losses are differences
 * between the two, matched by handle id, ring and publisher). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "view.h"

static const struct obs_pub *find_pub(const struct obs_handle *h, const char *channel)
{
	for (size_t i = 0; h && i < h->npubs; i++)
		if (!strcmp(h->pubs[i].channel, channel))
			return &h->pubs[i];
	return NULL;
}

static const struct obs_sub *find_sub(const struct obs_handle *h, uint64_t publisher,
				      const char *channel)
{
	for (size_t i = 0; h && i < h->nsubs; i++)
		if (h->subs[i].publisher == publisher && !strcmp(h->subs[i].channel, channel))
			return &h->subs[i];
	return NULL;
}

static struct view_channel *channel_of(struct view_figures *f, size_t *cap,
				       const char *channel)
{
	for (size_t i = 0; i < f->nch; i++)
		if (!strcmp(f->ch[i].channel, channel))
			return &f->ch[i];
	if (grow_array(&f->ch, cap, f->nch, sizeof *f->ch, 16))
		return NULL;
	struct view_channel *c = &f->ch[f->nch++];
	memset(c, 0, sizeof *c);
	snprintf(c->channel, sizeof c->channel, "%s", channel);
	return c;
}

static int add_publishers(struct view_figures *f, size_t *cap, const struct obs_bus *prev,
			  const struct obs_handle *h, double interval_s)
{
	const struct obs_handle *before = prev ? view_find(prev, h->id) : NULL;
	for (size_t j = 0; j < h->npubs; j++) {
		const struct obs_pub *p = &h->pubs[j];
		struct view_channel *c = channel_of(f, cap, p->channel);
		if (!c)
			return -ENOMEM;
		c->publishers++;
		c->published += p->head;
		c->bytes += p->bytes;
		const struct obs_pub *q = find_pub(before, p->channel);
		if (q && interval_s > 0 && p->head >= q->head)
			c->rate += (double)(p->head - q->head) / interval_s;
	}
	return 0;
}

static int add_readers(struct view_figures *f, size_t *cap, size_t *rcap,
		       const struct obs_bus *prev, const struct obs_bus *cur,
		       const struct obs_handle *h)
{
	const struct obs_handle *before = prev ? view_find(prev, h->id) : NULL;
	for (size_t j = 0; j < h->nsubs; j++) {
		const struct obs_sub *s = &h->subs[j];
		struct view_channel *c = channel_of(f, cap, s->channel);
		if (!c || grow_array(&f->rd, rcap, f->nrd, sizeof *f->rd, 16))
			return -ENOMEM;
		int first_of_handle = 1; /* count each subscriber once per channel */
		for (size_t i = 0; i < j; i++)
			first_of_handle &= strcmp(h->subs[i].channel, s->channel) != 0;
		c->subscribers += first_of_handle;
		const struct obs_handle *pub = view_find(cur, s->publisher);
		const struct obs_pub *ring = find_pub(pub, s->channel);
		struct view_reader *r = &f->rd[f->nrd++];
		memset(r, 0, sizeof *r);
		r->h = h;
		r->s = s;
		r->publisher_pid = pub ? pub->pid : 0;
		r->slots = ring ? ring->slots : 0;
		r->lagging = r->slots && s->lag * 2 > r->slots;
		if (prev) {
			const struct obs_sub *q = find_sub(before, s->publisher, s->channel);
			r->lost_new = !q ? s->lost : s->lost >= q->lost ? s->lost - q->lost : 0;
		}
		c->lost += s->lost;
		c->lost_new += r->lost_new;
		if (!c->slowest_pid || s->lag > c->max_lag) {
			c->max_lag = s->lag;
			c->slowest_pid = h->pid;
		}
	}
	return 0;
}

int view_figures(const struct obs_bus *prev, const struct obs_bus *cur,
		 double interval_s, struct view_figures *out)
{
	memset(out, 0, sizeof *out);
	out->interval_s = interval_s;
	size_t cap = 0, rcap = 0;
	for (size_t i = 0; i < cur->n; i++) {
		const struct obs_handle *h = &cur->h[i];
		if (add_publishers(out, &cap, prev, h, interval_s) ||
		    add_readers(out, &cap, &rcap, prev, cur, h)) {
			view_figures_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}

void view_figures_free(struct view_figures *f)
{
	free(f->ch);
	free(f->rd);
	memset(f, 0, sizeof *f);
}

static enum view_sort sort_key;

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a > b ? -1 : a < b; /* largest first */
}

static int by_channel(const void *a, const void *b)
{
	const struct view_channel *x = a, *y = b;
	int c = 0;
	if (sort_key == SORT_RATE)
		c = x->rate > y->rate ? -1 : x->rate < y->rate;
	else if (sort_key == SORT_LAG)
		c = cmp_u64(x->max_lag, y->max_lag);
	else if (sort_key == SORT_LOST)
		c = cmp_u64(x->lost_new, y->lost_new) ?: cmp_u64(x->lost, y->lost);
	return c ? c : strcmp(x->channel, y->channel);
}

static int by_reader(const void *a, const void *b)
{
	const struct view_reader *x = a, *y = b;
	int c = 0;
	if (sort_key == SORT_LOST)
		c = cmp_u64(x->lost_new, y->lost_new) ?: cmp_u64(x->s->lost, y->s->lost);
	else if (sort_key != SORT_NAME)
		c = cmp_u64(x->s->lag, y->s->lag);
	if (!c)
		c = strcmp(x->s->channel, y->s->channel);
	return c ? c : (x->h->pid > y->h->pid) - (x->h->pid < y->h->pid);
}

void view_sort(struct view_figures *f, enum view_sort key)
{
	sort_key = key;
	if (f->nch) /* (qsort of NULL is undefined, even for no element) */
		qsort(f->ch, f->nch, sizeof *f->ch, by_channel);
	if (f->nrd)
		qsort(f->rd, f->nrd, sizeof *f->rd, by_reader);
}
