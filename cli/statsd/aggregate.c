/* The metric table and its per-interval aggregation.
 *
 * A family is one metric name of one kind (statsd keeps counters, gauges,
 * sets and timers in separate namespaces, and so do we); its key is the
 * name sanitised for Prometheus, so "a.b" and "a_b" are one family (the
 * first raw name seen is the one Graphite gets). A series is a family plus
 * one canonical tag set; the untagged series is cached in its family so an
 * untagged line costs one hash lookup. Metrics persist from their first
 * sample until exit, as statsd's gauges do; max_metrics bounds them.
 *
 * Percentiles are exact nearest-rank over the samples kept: rank
 * ceil(p/100 * n), so p99 of 1..100 is 99 and p100 is the maximum. A series
 * keeps up to max_samples samples per interval; beyond that it keeps a
 * uniform random reservoir (Algorithm R) of max_samples, so the percentiles
 * become estimates over a uniform sample, and every sample left out is
 * counted in kite_statsd_timer_samples_not_kept_total. count, sum, min, max
 * and mean always cover every sample. Quantiles stay those of the last
 * interval that had samples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "statsd.h"

/* ---- hashing ------------------------------------------------------- */

/* One 64x64->128 multiply folded to 64 bits per 8-byte word (the wyhash
 * idea): fast on short metric names, and well mixed for linear probing. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
	__extension__ unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t hash_bytes(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = seed ^ 0xa0761d6478bd642full;
	size_t len = n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = mum(h ^ w, 0xe7037ed1a0b428dbull);
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, s, n);
	h = mum(h ^ w, 0x8ebc6af09c88c6e3ull ^ len);
	return mum(h, 0x589965cc75374cc3ull);
}

/* Open addressing, linear probing, power-of-two capacity, no deletion
 * (metrics live until exit). Items are pointers; hashes are stored beside
 * them so a probe compares keys only on a full hash match. */
struct htab {
	uint64_t *hash;
	void **item;
	size_t cap, n;
};

static int htab_grow(struct htab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	uint64_t *nh = calloc(ncap, sizeof *nh);
	void **ni = calloc(ncap, sizeof *ni);
	if (!nh || !ni) {
		free(nh);
		free(ni);
		return -1;
	}
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->item[i])
			continue;
		size_t j = t->hash[i] & (ncap - 1);
		while (ni[j])
			j = (j + 1) & (ncap - 1);
		nh[j] = t->hash[i];
		ni[j] = t->item[i];
	}
	free(t->hash);
	free(t->item);
	t->hash = nh;
	t->item = ni;
	t->cap = ncap;
	return 0;
}

/* Make room for one more item whose probe for hash h ended at *slot (an
 * empty slot); after a growth the slot moves. 0 or -1 (out of memory). */
static int htab_reserve(struct htab *t, uint64_t h, size_t *slot)
{
	if (t->n * 2 < t->cap)
		return 0;
	if (htab_grow(t) < 0)
		return -1;
	for (*slot = h & (t->cap - 1); t->item[*slot]; *slot = (*slot + 1) & (t->cap - 1))
		;
	return 0;
}

static void htab_put(struct htab *t, size_t slot, uint64_t h, void *item)
{
	t->hash[slot] = h;
	t->item[slot] = item;
	t->n++;
}

/* ---- the table ------------------------------------------------------ */

struct dist {
	double *samples;
	size_t kept, cap;
	uint64_t seen;          /* samples this interval */
	double wcount, sum, min, max; /* this interval */
	double l_count, l_sum, l_min, l_max, l_mean, l_rate; /* last flush */
	double q[STATSD_MAX_PERCENTILES];
	double cum_count, cum_sum;
};

struct set {
	uint64_t *slot; /* member hashes; 0 = empty */
	size_t cap, n;
};

struct statsd_series {
	struct statsd_family *fam;
	struct statsd_series *next; /* in its family */
	double acc, last, total; /* counter: interval, last interval, total;
				    gauge: acc is the value; set: last */
	union {
		struct dist *dist;
		struct set *set;
	} u;
	uint32_t tags_len;
	bool updated, l_updated;
	bool flushed; /* output shows a series from its first flush on */
	char tags[]; /* canonical, NUL-terminated */
};

struct statsd_family {
	uint64_t hash;
	struct statsd_family *next; /* first-seen order */
	struct statsd_series *plain, *first, *last;
	uint32_t key_len;
	uint8_t kind;
	uint8_t suffix_len;  /* "_total" after the key of a counter, or 0 */
	bool prom;           /* holds its Prometheus name (no other family does) */
	char key[]; /* sanitised name [+ "_total"] NUL, raw name NUL */
};

/* Families and series live until exit: they come from a bump arena of
 * 1 MiB chunks (no per-object malloc header, nothing to free one by one). */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) char mem[];
};

struct statsd_table {
	uint64_t seed, rng;
	struct htab families, series;
	struct statsd_family *head, *tail;
	struct chunk *arena;
	size_t n_series;
	struct statsd_config cfg;
	double last_pct[STATSD_MAX_PERCENTILES];
	unsigned n_last_pct;
	double last_interval_s;
	struct statsd_health health;
};

static void *arena_alloc(struct statsd_table *t, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct chunk *c = t->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > (1u << 20) - sizeof *c ? n : (1u << 20) - sizeof *c;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->next = t->arena;
		c->used = 0;
		c->cap = cap;
		t->arena = c;
	}
	void *p = c->mem + c->used;
	c->used += n;
	return p;
}

struct statsd_table *statsd_table_new(uint64_t seed)
{
	struct statsd_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->seed = seed;
	t->rng = seed | 1;
	t->last_interval_s = 1;
	statsd_config_defaults(&t->cfg);
	return t;
}

static void free_series_data(struct statsd_series *s)
{
	if (s->fam->kind == STATSD_SET && s->u.set) {
		free(s->u.set->slot);
		free(s->u.set);
	} else if ((s->fam->kind == STATSD_TIMER || s->fam->kind == STATSD_HISTOGRAM) &&
		   s->u.dist) {
		free(s->u.dist->samples);
		free(s->u.dist);
	}
}

void statsd_table_free(struct statsd_table *t)
{
	if (!t)
		return;
	for (struct statsd_family *f = t->head; f; f = f->next)
		for (struct statsd_series *s = f->first; s; s = s->next)
			free_series_data(s);
	for (struct chunk *c = t->arena, *cn; c; c = cn) {
		cn = c->next;
		free(c);
	}
	free(t->families.hash);
	free(t->families.item);
	free(t->series.hash);
	free(t->series.item);
	free(t);
}

void statsd_table_configure(struct statsd_table *t, const struct statsd_config *c)
{
	t->cfg = *c;
}

struct statsd_health *statsd_table_health(struct statsd_table *t)
{
	return &t->health;
}

size_t statsd_table_series(const struct statsd_table *t)
{
	return t->n_series;
}

const double *statsd_table_percentiles(const struct statsd_table *t, unsigned *n)
{
	*n = t->n_last_pct;
	return t->last_pct;
}

static uint64_t rng_next(struct statsd_table *t)
{
	uint64_t x = t->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return t->rng = x;
}

static const char *raw_name(const struct statsd_family *f)
{
	return f->key + f->key_len + f->suffix_len + 1;
}

/* The family (kind, key), or NULL; *slot is where its probe ended. */
static struct statsd_family *find_family(struct statsd_table *t, unsigned kind,
					 const char *key, size_t key_len, uint64_t *hash,
					 size_t *slot)
{
	struct htab *ft = &t->families;
	uint64_t h = hash_bytes(t->seed ^ (uint64_t)kind, key, key_len);
	*hash = h;
	*slot = 0;
	if (!ft->cap)
		return NULL;
	for (size_t i = h & (ft->cap - 1);; i = (i + 1) & (ft->cap - 1)) {
		struct statsd_family *o = ft->item[i];
		*slot = i;
		if (!o)
			return NULL;
		if (ft->hash[i] == h && o->kind == kind && o->key_len == key_len &&
		    !memcmp(o->key, key, key_len))
			return o;
	}
}

static bool holds_prom_name(struct statsd_table *t, unsigned kind, const char *key,
			    size_t len)
{
	uint64_t h;
	size_t slot;
	struct statsd_family *o = find_family(t, kind, key, len, &h, &slot);
	return o && o->prom;
}

/* Is Prometheus name p (of a new family) free? Counters export key_total,
 * the other kinds their key, so p can be held by a non-counter named p, by
 * a counter named p (already ending in _total) or by a counter named p
 * without its _total. The collector's own kite_statsd_* stay clear. */
static bool prom_name_free(struct statsd_table *t, const char *p, size_t len)
{
	if (len >= 12 && !memcmp(p, "kite_statsd_", 12))
		return false;
	for (unsigned k = 0; k < STATSD_KINDS; k++)
		if (k != STATSD_COUNTER && holds_prom_name(t, k, p, len))
			return false;
	bool total = len >= 6 && !memcmp(p + len - 6, "_total", 6);
	return !total || (!holds_prom_name(t, STATSD_COUNTER, p, len) &&
			  !holds_prom_name(t, STATSD_COUNTER, p, len - 6));
}

static void init_series(struct statsd_series *s, struct statsd_family *f,
			const char *tags, size_t tags_len)
{
	memset(s, 0, sizeof *s);
	s->fam = f;
	s->tags_len = (uint32_t)tags_len;
	memcpy(s->tags, tags, tags_len);
	s->tags[tags_len] = 0;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
}

static struct statsd_series *new_series(struct statsd_table *t, struct statsd_family *f,
					const char *tags, size_t tags_len)
{
	struct statsd_series *s = arena_alloc(t, sizeof *s + tags_len + 1);
	if (s)
		init_series(s, f, tags, tags_len);
	return s;
}

/* A family and, in the same allocation, its untagged series when the
 * first sample has no tags (the common case). */
static struct statsd_family *new_family(struct statsd_table *t, uint64_t h,
					enum statsd_kind kind, const char *key,
					size_t key_len, const char *raw, size_t raw_len,
					bool with_plain)
{
	/* Prometheus counters end in _total (promtool insists). */
	size_t suffix = kind == STATSD_COUNTER &&
				!(key_len >= 6 && !memcmp(key + key_len - 6, "_total", 6))
			? 6 : 0;
	size_t fsize = (sizeof(struct statsd_family) + key_len + suffix + 1 + raw_len + 1 +
			15) & ~(size_t)15;
	struct statsd_family *f =
		arena_alloc(t, fsize + (with_plain ? sizeof(struct statsd_series) + 1 : 0));
	if (!f)
		return NULL;
	memset(f, 0, sizeof *f);
	f->hash = h;
	f->kind = (uint8_t)kind;
	f->key_len = (uint32_t)key_len;
	f->suffix_len = (uint8_t)suffix;
	memcpy(f->key, key, key_len);
	memcpy(f->key + key_len, "_total", suffix);
	f->key[key_len + suffix] = 0;
	char *r = f->key + key_len + suffix + 1;
	memcpy(r, raw, raw_len);
	r[raw_len] = 0;
	f->prom = prom_name_free(t, f->key, key_len + suffix);
	if (!f->prom)
		t->health.prometheus_conflicts++;
	if (with_plain) {
		f->plain = (struct statsd_series *)((char *)f + fsize);
		init_series(f->plain, f, "", 0);
	}
	return f;
}

static struct statsd_series *refuse(struct statsd_table *t)
{
	t->health.metrics_refused++;
	return NULL;
}

/* Find or create the series of sample s; NULL if refused (counted). */
static struct statsd_series *lookup(struct statsd_table *t, const struct statsd_sample *smp)
{
	char key[STATSD_MAX_NAME + 8];
	size_t key_len = statsd_prom_metric_name(smp->name, smp->name_len, key);
	uint64_t fh;
	size_t fi;
	struct statsd_family *f = find_family(t, smp->kind, key, key_len, &fh, &fi);
	if (f && smp->tags_len == 0 && f->plain)
		return f->plain;
	/* Every new series counts against max_metrics; refusals are counted. */
	bool full = t->n_series >= t->cfg.max_metrics;
	if (!f) {
		if (full || htab_reserve(&t->families, fh, &fi) < 0)
			return refuse(t);
		f = new_family(t, fh, smp->kind, key, key_len, smp->name, smp->name_len,
			       smp->tags_len == 0);
		if (!f)
			return refuse(t);
		htab_put(&t->families, fi, fh, f);
		if (t->tail)
			t->tail->next = f;
		else
			t->head = f;
		t->tail = f;
		if (f->plain) {
			t->n_series++;
			return f->plain;
		}
	}
	if (smp->tags_len == 0) {
		struct statsd_series *s = full ? NULL : new_series(t, f, "", 0);
		if (!s)
			return refuse(t);
		t->n_series++;
		return f->plain = s;
	}

	/* Tagged: key is (family, tags). */
	uint64_t sh = hash_bytes(f->hash, smp->tags, smp->tags_len);
	struct htab *st = &t->series;
	size_t si = 0;
	if (st->cap) {
		for (si = sh & (st->cap - 1);; si = (si + 1) & (st->cap - 1)) {
			struct statsd_series *o = st->item[si];
			if (!o)
				break;
			if (st->hash[si] == sh && o->fam == f && o->tags_len == smp->tags_len &&
			    !memcmp(o->tags, smp->tags, smp->tags_len))
				return o;
		}
	}
	if (full || htab_reserve(st, sh, &si) < 0)
		return refuse(t);
	struct statsd_series *s = new_series(t, f, smp->tags, smp->tags_len);
	if (!s)
		return refuse(t);
	htab_put(st, si, sh, s);
	t->n_series++;
	return s;
}

static void add_dist(struct statsd_table *t, struct statsd_series *s, double v, double rate)
{
	struct dist *d = s->u.dist;
	if (!d) {
		d = s->u.dist = calloc(1, sizeof *d);
		if (!d) {
			t->health.samples_not_kept++;
			return;
		}
	}
	if (d->seen == 0) {
		d->min = d->max = v;
	} else {
		if (v < d->min)
			d->min = v;
		if (v > d->max)
			d->max = v;
	}
	d->seen++;
	d->wcount += 1.0 / rate;
	d->sum += v;
	if (d->kept < t->cfg.max_samples) {
		if (d->kept == d->cap) {
			size_t ncap = d->cap ? d->cap * 2 : 16;
			if (ncap > t->cfg.max_samples)
				ncap = t->cfg.max_samples;
			double *ns = realloc(d->samples, ncap * sizeof *ns);
			if (!ns) {
				t->health.samples_not_kept++;
				return;
			}
			d->samples = ns;
			d->cap = ncap;
		}
		d->samples[d->kept++] = v;
	} else {
		/* Algorithm R: sample number seen replaces a random kept one
		 * with probability kept/seen. Either way one sample is out. */
		uint64_t j = rng_next(t) % d->seen;
		if (j < d->kept)
			d->samples[j] = v;
		t->health.samples_not_kept++;
	}
}

static void add_set(struct statsd_table *t, struct statsd_series *s, const char *m, size_t n)
{
	struct set *st = s->u.set;
	if (!st) {
		st = s->u.set = calloc(1, sizeof *st);
		if (!st) {
			t->health.set_members_refused++;
			return;
		}
	}
	/* Members are kept as 64-bit hashes: two members collide with
	 * probability about n^2 / 2^65, far below one in a billion for a
	 * million members. */
	uint64_t h = hash_bytes(t->seed ^ 0x5e75e75e75ull, m, n);
	if (h == 0)
		h = 1;
	if (st->cap) {
		for (size_t i = h & (st->cap - 1);; i = (i + 1) & (st->cap - 1)) {
			if (st->slot[i] == h)
				return;
			if (!st->slot[i])
				break;
		}
	}
	if (st->n >= t->cfg.max_set_members) {
		t->health.set_members_refused++;
		return;
	}
	if (st->n * 2 >= st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 16;
		uint64_t *ns = calloc(ncap, sizeof *ns);
		if (!ns) {
			t->health.set_members_refused++;
			return;
		}
		for (size_t i = 0; i < st->cap; i++) {
			if (!st->slot[i])
				continue;
			size_t j = st->slot[i] & (ncap - 1);
			while (ns[j])
				j = (j + 1) & (ncap - 1);
			ns[j] = st->slot[i];
		}
		free(st->slot);
		st->slot = ns;
		st->cap = ncap;
	}
	size_t i = h & (st->cap - 1);
	while (st->slot[i])
		i = (i + 1) & (st->cap - 1);
	st->slot[i] = h;
	st->n++;
}

void statsd_table_add(struct statsd_table *t, const struct statsd_sample *smp)
{
	t->health.tags_dropped += smp->tags_dropped;
	struct statsd_series *s = lookup(t, smp);
	if (!s)
		return;
	switch (smp->kind) {
	case STATSD_COUNTER:
		s->acc += smp->value / smp->rate;
		break;
	case STATSD_GAUGE:
		s->acc = smp->delta ? s->acc + smp->value : smp->value;
		break;
	case STATSD_SET:
		add_set(t, s, smp->member, smp->member_len);
		break;
	default:
		add_dist(t, s, smp->value, smp->rate);
		break;
	}
	s->updated = true;
}

void statsd_table_add_packet(struct statsd_table *t, const char *p, size_t n)
{
	char tagbuf[STATSD_MAX_TAG_BYTES + 1];
	struct statsd_sample smp;
	const char *end = p + n;
	t->health.packets++;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t len = (size_t)(le - p);
		if (len && p[len - 1] == '\r')
			len--;
		if (len) {
			t->health.lines++;
			enum statsd_bad b = statsd_parse_line(p, len, &smp, tagbuf);
			if (b == STATSD_OK)
				statsd_table_add(t, &smp);
			else
				t->health.bad_lines[b]++;
		}
		p = nl ? nl + 1 : end;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double statsd_percentile(const double *sorted, size_t n, double p)
{
	if (n == 0)
		return NAN;
	if (p <= 0)
		return sorted[0];
	/* rank = ceil(p/100 * n). p/100*n is inexact for some p (99.9 of
	 * 1000 gives 999.0000000000001): a excess below 1e-9 relative is
	 * rounding error, not a fraction of a rank. (No libm: the kite binary
	 * links libc only.) */
	double x = p / 100.0 * (double)n;
	if (x >= (double)n)
		return sorted[n - 1];
	size_t r = (size_t)x;
	if (x - (double)r > 1e-9 * (x > 1 ? x : 1))
		r++;
	if (r < 1)
		r = 1;
	return sorted[r - 1];
}

static void flush_dist(struct statsd_table *t, struct dist *d, double secs,
		       bool pct_changed)
{
	d->l_count = d->wcount;
	d->l_sum = d->sum;
	d->l_min = d->seen ? d->min : NAN;
	d->l_max = d->seen ? d->max : NAN;
	d->l_mean = d->seen ? d->sum / (double)d->seen : NAN;
	d->l_rate = d->wcount / secs;
	d->cum_count += d->wcount;
	d->cum_sum += d->sum;
	/* An interval without samples keeps the quantiles of the last one
	 * that had some, so a scrape between flushes is never NaN. */
	if (d->kept) {
		qsort(d->samples, d->kept, sizeof *d->samples, cmp_double);
		for (unsigned i = 0; i < t->n_last_pct; i++)
			d->q[i] = statsd_percentile(d->samples, d->kept, t->last_pct[i]);
	} else if (pct_changed) {
		for (unsigned i = 0; i < t->n_last_pct; i++)
			d->q[i] = NAN; /* old figures are for other percentiles */
	}
	d->seen = 0;
	d->kept = 0;
	d->wcount = d->sum = 0;
	/* A burst should not pin its memory for ever. */
	if (d->cap > 4096) {
		free(d->samples);
		d->samples = NULL;
		d->cap = 0;
	}
}

void statsd_table_flush(struct statsd_table *t, int64_t interval_ms)
{
	double secs = interval_ms > 0 ? (double)interval_ms / 1000.0 : 1.0;
	bool pct_changed = t->n_last_pct != t->cfg.n_percentiles ||
			   memcmp(t->last_pct, t->cfg.percentiles, sizeof t->last_pct);
	t->n_last_pct = t->cfg.n_percentiles;
	memcpy(t->last_pct, t->cfg.percentiles, sizeof t->last_pct);
	for (struct statsd_family *f = t->head; f; f = f->next) {
		for (struct statsd_series *s = f->first; s; s = s->next) {
			s->l_updated = s->updated;
			s->updated = false;
			s->flushed = true;
			switch (f->kind) {
			case STATSD_COUNTER:
				s->last = s->acc;
				s->total += s->acc;
				s->acc = 0;
				break;
			case STATSD_GAUGE:
				s->last = s->acc;
				break;
			case STATSD_SET:
				s->last = s->u.set ? (double)s->u.set->n : 0;
				if (s->u.set) {
					if (s->u.set->cap > 1024) {
						free(s->u.set->slot);
						s->u.set->slot = NULL;
						s->u.set->cap = 0;
					} else if (s->u.set->cap) {
						memset(s->u.set->slot, 0,
						       s->u.set->cap * sizeof *s->u.set->slot);
					}
					s->u.set->n = 0;
				}
				break;
			default:
				if (s->u.dist)
					flush_dist(t, s->u.dist, secs, pct_changed);
				break;
			}
		}
	}
	t->health.flushes++;
	t->last_interval_s = secs;
}

int statsd_table_each(struct statsd_table *t,
		      int (*fn)(void *arg, const struct statsd_view *v), void *arg)
{
	for (struct statsd_family *f = t->head; f; f = f->next) {
		for (struct statsd_series *s = f->first; s; s = s->next) {
			if (!s->flushed)
				continue;
			struct statsd_view v = {
				.kind = f->kind,
				.raw_name = raw_name(f),
				.prom_name = f->prom ? f->key : NULL,
				.tags = s->tags,
				.updated = s->l_updated,
			};
			switch (f->kind) {
			case STATSD_COUNTER:
				v.value = s->last;
				v.total = s->total;
				v.rate = s->last / t->last_interval_s;
				break;
			case STATSD_GAUGE:
				v.value = s->last;
				break;
			case STATSD_SET:
				v.value = s->last;
				break;
			default: {
				static const double nans[STATSD_MAX_PERCENTILES] = {
					NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN,
					NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
				const struct dist *d = s->u.dist;
				if (!d) {
					v.min = v.max = v.mean = NAN;
					v.quantiles = nans;
					break;
				}
				v.count = d->l_count;
				v.sum = d->l_sum;
				v.min = d->l_min;
				v.max = d->l_max;
				v.mean = d->l_mean;
				v.rate = d->l_rate;
				v.quantiles = d->q;
				v.cum_count = d->cum_count;
				v.cum_sum = d->cum_sum;
			}
			}
			int r = fn(arg, &v);
			if (r)
				return r;
		}
	}
	return 0;
}
