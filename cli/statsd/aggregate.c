/* The metric table and its per-interval aggregation.
 *
 * A family is one metric name of one kind (statsd keeps counters, gauges,
 * sets and timers in separate namespaces, and so do we); its key is the
 * name as statsd cleans it for Graphite (statsd_graphite_name), so "a.b",
 * "a_b" and "a-b" are three families, as in statsd, and "a b" and "a_b"
 * one. Its Prometheus names (a summary has NAME, NAME_sum and NAME_count)
 * are derived from that key; a family any of whose Prometheus names another
 * family already exports, or that would start with kite_statsd_, is left
 * out of /metrics and counted (the first one seen keeps the names), so the
 * page never holds two families of one name. A series is a family plus
 * one canonical tag set; the untagged series is cached in its family so an
 * untagged line costs one hash lookup. Metrics persist from their first
 * sample until they are idle for expire (counters, timers, histograms,
 * sets) or expire_gauges (gauges), counted in whole flush intervals; then
 * they go, and their memory is used again. max_metrics bounds them.
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

/* Open addressing, linear probing, power-of-two capacity, deletion by
 * backward shift (htab_delete). Items are pointers; hashes are stored beside
 * them so a probe compares keys only on a full hash match. */
struct htab {
	uint32_t *hash; /* the low half of each item's hash: its home slot and a
			   filter before keys are compared (cap <= 2^32) */
	void **item;
	size_t cap, n;
};

static int htab_grow(struct htab *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024;
	uint32_t *nh = calloc(ncap, sizeof *nh);
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
	t->hash[slot] = (uint32_t)h;
	t->item[slot] = item;
	t->n++;
}

/* ---- the table ------------------------------------------------------ */

struct dist {
	double *samples;
	size_t kept, cap;
	uint64_t seen;          /* samples this interval */
	double wcount, sum, sumsq, min, max; /* this interval */
	/* last flush */
	double l_count, l_sum, l_sumsq, l_min, l_max, l_mean, l_rate, l_median, l_std;
	struct statsd_pct *pct; /* n_pct figures, one per percentile */
	unsigned n_pct;
	unsigned n_bkt;         /* timer histogram buckets (0: none) */
	double cum_count, cum_sum;
	/* n_bkt samples per bucket this interval (bound i-1 < v <= bound i),
	 * then n_bkt cumulative counts since start (v <= bound i) */
	double *bkt;
};

struct set {
	uint64_t *slot; /* member hashes; 0 = empty */
	size_t cap, n;
};

struct statsd_series {
	struct statsd_family *fam;
	struct statsd_series *next; /* in its family */
	double acc, last; /* counter: interval, last interval; gauge: acc is
			     the value; set: last */
	union {               /* by kind: */
		double total;     /* counter: total since start */
		struct dist *dist;/* timer, histogram */
		struct set *set;  /* set */
	} u;
	uint32_t seen_at;    /* the flush (t->flush_no) of its last sample */
	uint16_t tags_len;   /* at most STATSD_MAX_TAG_BYTES */
	bool updated : 1, l_updated : 1;
	bool flushed : 1;    /* output shows a series from its first flush on */
	bool in_family : 1;  /* allocated with its family (the first, untagged) */
	bool epoch : 1;      /* == t->epoch: closed at the last flush's boundary
				(a flush is swept a slice at a time; one bit is
				enough, as a flush ends before the next begins) */
	char tags[]; /* canonical, NUL-terminated */
};

struct statsd_family {
	struct statsd_family *next; /* first-seen order */
	struct statsd_series *first, *last;
	uint32_t born;       /* t->families_made when it was made: a walk shows
				only families older than itself, so a family
				that expires and comes back under the same
				name never shows twice on one page */
	uint16_t key_len;    /* at most STATSD_MAX_NAME */
	uint8_t kind;
	bool prom : 1;       /* holds its Prometheus names (no other family does) */
	bool with_plain : 1; /* an untagged series shares its allocation */
	bool plain_live : 1; /* ... and is in the table (found without a hash
				lookup; any other untagged series is in the
				series table under the tags "") */
	char key[];          /* the Graphite name, NUL-terminated */
};

/* Families and series come from a bump arena of 1 MiB chunks (no
 * per-object malloc header); an expired one goes to a free list of its
 * size (8-byte classes), where the next of that size is taken from. */
#define ARENA_CLASSES 256 /* blocks up to 2 KiB; families and series are smaller */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) char mem[];
};

struct statsd_table {
	uint64_t seed, rng;
	/* Families hash by their Prometheus base name (every family that
	 * shares it is in the same probe run), so the families that could
	 * export a given Prometheus name are found without a table of their
	 * own; series by family and tags. */
	struct htab families, series;
	struct statsd_family *head, *tail;
	struct chunk *arena;
	size_t arena_bytes;
	void *free_blocks[ARENA_CLASSES];
	size_t n_series;
	uint32_t flush_no;   /* flushes so far: the interval now open */
	uint32_t families_made;
	bool epoch;          /* flips at each flush's boundary (series.epoch) */
	/* The flush being swept: the interval it closes, its figures' scale,
	 * and the sweep's place (fam NULL: not started; last: the last series
	 * of fam it kept; fprev: the family before fam). */
	struct {
		bool active;
		uint32_t at;
		double secs;
		bool pct_changed;
		struct statsd_family *fam, *fprev;
		struct statsd_series *last;
	} sweep;
	struct statsd_cursor *cursors; /* open cursors, for expiry to mend */
	struct statsd_config cfg;
	double last_pct[STATSD_MAX_PERCENTILES];
	unsigned n_last_pct;
	double last_interval_s;
	double bounds_ms[STATSD_MAX_BUCKETS]; /* cfg.buckets in milliseconds */
	struct statsd_health health;
};

static void *arena_alloc(struct statsd_table *t, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	size_t k = n / 8;
	if (k < ARENA_CLASSES && t->free_blocks[k]) {
		void *p = t->free_blocks[k];
		memcpy(&t->free_blocks[k], p, sizeof(void *));
		return p;
	}
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
		t->arena_bytes += sizeof *c + cap;
	}
	void *p = c->mem + c->used;
	c->used += n;
	return p;
}

/* Give back a block of n bytes (as asked of arena_alloc) for reuse. */
static void arena_free(struct statsd_table *t, void *p, size_t n)
{
	size_t k = ((n + 7) & ~(size_t)7) / 8;
	if (k >= ARENA_CLASSES)
		return; /* cannot happen (see ARENA_CLASSES); kept until exit */
	memcpy(p, &t->free_blocks[k], sizeof(void *));
	t->free_blocks[k] = p;
}

size_t statsd_table_bytes(const struct statsd_table *t)
{
	return t->arena_bytes + (t->families.cap + t->series.cap) * (sizeof(uint32_t) +
								      sizeof(void *));
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
		free(s->u.dist->pct);
		free(s->u.dist->bkt);
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
	for (unsigned i = 0; i < c->n_buckets; i++)
		t->bounds_ms[i] = c->buckets[i] * 1000.0;
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

const double *statsd_table_buckets(const struct statsd_table *t, unsigned *n)
{
	*n = t->cfg.n_buckets;
	return t->cfg.buckets;
}

static uint64_t rng_next(struct statsd_table *t)
{
	uint64_t x = t->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return t->rng = x;
}

/* Prometheus name number i of family f into out (STATSD_PROM_NAME_MAX
 * bytes): counters export NAME_total (NAME when it already ends so), gauges
 * and sets NAME, summaries NAME, NAME_sum and NAME_count, and hold
 * NAME_bucket too (a timer under --timer-histogram exports it), so the
 * names a family holds never depend on options; NAME is the family's base
 * name (statsd_prom_metric_name of its Graphite name). Its length, or 0
 * when f has no name number i. */
static size_t prom_name(const struct statsd_family *f, unsigned i, char *out)
{
	static const char *const summary[] = {"", "_sum", "_count", "_bucket"};
	unsigned n = f->kind == STATSD_TIMER || f->kind == STATSD_HISTOGRAM ? 4 : 1;
	if (i >= n)
		return 0;
	size_t len = statsd_prom_metric_name(f->key, f->key_len, out);
	const char *suffix = summary[i];
	if (f->kind == STATSD_COUNTER &&
	    !(len >= 6 && !memcmp(out + len - 6, "_total", 6)))
		suffix = "_total";
	size_t sl = strlen(suffix);
	memcpy(out + len, suffix, sl + 1);
	return len + sl;
}

static uint64_t base_hash(const struct statsd_table *t, const char *base, size_t n)
{
	return hash_bytes(t->seed, base, n);
}

/* The family (kind, key) whose base name hashes to h, or NULL; *slot is
 * where its probe ended. */
static struct statsd_family *find_family(struct statsd_table *t, unsigned kind,
					 const char *key, size_t key_len, uint64_t h,
					 size_t *slot)
{
	struct htab *ft = &t->families;
	*slot = 0;
	if (!ft->cap)
		return NULL;
	for (size_t i = h & (ft->cap - 1);; i = (i + 1) & (ft->cap - 1)) {
		struct statsd_family *o = ft->item[i];
		*slot = i;
		if (!o)
			return NULL;
		if (ft->hash[i] == (uint32_t)h && o->kind == kind && o->key_len == key_len &&
		    !memcmp(o->key, key, key_len))
			return o;
	}
}

/* Does a family holding its Prometheus names export p? Its base name is p,
 * or p without "_sum", "_count", "_bucket" (a summary or histogram) or
 * "_total" (a counter). */
static bool prom_name_taken(struct statsd_table *t, const char *p, size_t len)
{
	static const char *const cut[] = {"", "_sum", "_count", "_bucket", "_total"};
	struct htab *ft = &t->families;
	if (!ft->cap)
		return false;
	for (unsigned k = 0; k < sizeof cut / sizeof cut[0]; k++) {
		size_t cl = strlen(cut[k]);
		if (len <= cl || memcmp(p + len - cl, cut[k], cl))
			continue;
		uint64_t h = base_hash(t, p, len - cl);
		for (size_t i = h & (ft->cap - 1); ft->item[i]; i = (i + 1) & (ft->cap - 1)) {
			struct statsd_family *o = ft->item[i];
			if (ft->hash[i] != (uint32_t)h || !o->prom)
				continue;
			char name[STATSD_PROM_NAME_MAX];
			size_t n;
			for (unsigned x = 0; (n = prom_name(o, x, name)); x++)
				if (n == len && !memcmp(name, p, len))
					return true;
		}
	}
	return false;
}

/* May f have its Prometheus names? Not when another family holds one of
 * them, nor when one would be the collector's own kite_statsd_*. */
static bool prom_names_free(struct statsd_table *t, const struct statsd_family *f)
{
	char name[STATSD_PROM_NAME_MAX];
	size_t len;
	for (unsigned i = 0; (len = prom_name(f, i, name)); i++)
		if ((len >= 12 && !memcmp(name, "kite_statsd_", 12)) ||
		    prom_name_taken(t, name, len))
			return false;
	return true;
}

static void init_series(const struct statsd_table *t, struct statsd_series *s,
			struct statsd_family *f, const char *tags, size_t tags_len)
{
	memset(s, 0, sizeof *s);
	s->fam = f;
	s->epoch = t->epoch; /* nothing of an earlier interval to close */
	s->tags_len = (uint16_t)tags_len;
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
		init_series(t, s, f, tags, tags_len);
	return s;
}

/* Bytes of a family without, and with, the untagged series it may hold. */
static size_t family_head_bytes(size_t key_len)
{
	return (sizeof(struct statsd_family) + key_len + 1 + 7) & ~(size_t)7;
}

static size_t family_bytes(size_t key_len, bool with_plain)
{
	return family_head_bytes(key_len) + (with_plain ? sizeof(struct statsd_series) + 1 : 0);
}

/* The untagged series in f's allocation (f->with_plain). */
static struct statsd_series *inline_series(struct statsd_family *f)
{
	return (struct statsd_series *)((char *)f + family_head_bytes(f->key_len));
}

/* Put f's own untagged series (again) in its list. */
static struct statsd_series *live_inline(const struct statsd_table *t,
					 struct statsd_family *f)
{
	struct statsd_series *s = inline_series(f);
	init_series(t, s, f, "", 0);
	s->in_family = true;
	f->plain_live = true;
	return s;
}

/* A family and, in the same allocation, its untagged series when the
 * first sample has no tags (the common case). */
static struct statsd_family *new_family(struct statsd_table *t,
					enum statsd_kind kind, const char *key,
					size_t key_len, bool with_plain)
{
	struct statsd_family *f = arena_alloc(t, family_bytes(key_len, with_plain));
	if (!f)
		return NULL;
	memset(f, 0, sizeof *f);
	f->kind = (uint8_t)kind;
	f->key_len = (uint16_t)key_len;
	f->born = ++t->families_made;
	memcpy(f->key, key, key_len);
	f->key[key_len] = 0;
	f->with_plain = with_plain;
	f->prom = prom_names_free(t, f);
	if (!f->prom)
		t->health.prometheus_conflicts++;
	if (with_plain)
		live_inline(t, f);
	return f;
}

static struct statsd_series *refuse(struct statsd_table *t)
{
	t->health.metrics_refused++;
	return NULL;
}

/* A series hashes by its family's address and its tags. */
static uint64_t series_hash(const struct statsd_table *t, const struct statsd_family *f,
			    const char *tags, size_t n)
{
	return hash_bytes(t->seed ^ (uint64_t)(uintptr_t)f, tags, n);
}

/* Find or create the series of sample s; NULL if refused (counted). */
static struct statsd_series *lookup(struct statsd_table *t, const struct statsd_sample *smp)
{
	char clean[STATSD_MAX_NAME + 1], base[STATSD_PROM_NAME_MAX];
	const char *key = smp->name;
	size_t key_len = smp->name_len;
	if (!smp->name_clean) {
		key_len = statsd_graphite_name(smp->name, smp->name_len, clean);
		key = clean;
	}
	uint64_t fh = base_hash(t, base, statsd_prom_metric_name(key, key_len, base));
	size_t fi;
	struct statsd_family *f = find_family(t, smp->kind, key, key_len, fh, &fi);
	if (f && smp->tags_len == 0 && f->plain_live)
		return inline_series(f);
	/* Every new series counts against max_metrics; refusals are counted. */
	bool full = t->n_series >= t->cfg.max_metrics;
	if (!f) {
		if (full || htab_reserve(&t->families, fh, &fi) < 0)
			return refuse(t);
		f = new_family(t, smp->kind, key, key_len, smp->tags_len == 0);
		if (!f)
			return refuse(t);
		htab_put(&t->families, fi, fh, f);
		if (t->tail)
			t->tail->next = f;
		else
			t->head = f;
		t->tail = f;
		if (f->plain_live) {
			t->n_series++;
			return inline_series(f);
		}
	}
	if (smp->tags_len == 0 && f->with_plain && !f->plain_live) {
		/* its own untagged series expired: back in its place */
		if (full)
			return refuse(t);
		t->n_series++;
		return live_inline(t, f);
	}

	/* Tagged (or an untagged series of a family first seen tagged): key
	 * is (family, tags). */
	uint64_t sh = series_hash(t, f, smp->tags, smp->tags_len);
	struct htab *st = &t->series;
	size_t si = 0;
	if (st->cap) {
		for (si = sh & (st->cap - 1);; si = (si + 1) & (st->cap - 1)) {
			struct statsd_series *o = st->item[si];
			if (!o)
				break;
			if (st->hash[si] == (uint32_t)sh && o->fam == f && o->tags_len == smp->tags_len &&
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

/* Count v (milliseconds, weight w) in the first bucket whose bound holds
 * it; above every bound it is in +Inf alone, which is the count. */
static void add_bucket(struct statsd_table *t, struct dist *d, double v, double w)
{
	unsigned n = t->cfg.n_buckets;
	if (d->n_bkt != n) {
		/* Buckets are fixed at start (a reload keeps them): this is
		 * the first sample of the series. */
		free(d->bkt);
		d->bkt = n ? calloc(2 * (size_t)n, sizeof *d->bkt) : NULL;
		d->n_bkt = d->bkt ? n : 0;
		if (!d->bkt)
			return;
	}
	unsigned lo = 0, hi = n; /* first bound >= v, by bisection */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (t->bounds_ms[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n)
		d->bkt[lo] += w;
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
	if (s->fam->kind == STATSD_TIMER)
		add_bucket(t, d, v, 1.0 / rate);
	d->sum += v;
	d->sumsq += v * v;
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

static inline void settle_series(struct statsd_table *t, struct statsd_series *s);

void statsd_table_add(struct statsd_table *t, const struct statsd_sample *smp)
{
	t->health.tags_dropped += smp->tags_dropped;
	struct statsd_series *s = lookup(t, smp);
	if (!s)
		return;
	settle_series(t, s);
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
	s->seen_at = t->flush_no;
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

size_t statsd_percentile_rank(size_t n, double p)
{
	if (n == 0)
		return 0;
	if (p <= 0)
		return 1;
	/* rank = ceil(p/100 * n). p/100*n is inexact for some p (99.9 of
	 * 1000 gives 999.0000000000001): a excess below 1e-9 relative is
	 * rounding error, not a fraction of a rank. (No libm: the kite binary
	 * links libc only.) */
	double x = p / 100.0 * (double)n;
	if (x >= (double)n)
		return n;
	size_t r = (size_t)x;
	if (x - (double)r > 1e-9 * (x > 1 ? x : 1))
		r++;
	return r < 1 ? 1 : r;
}

double statsd_percentile(const double *sorted, size_t n, double p)
{
	return n ? sorted[statsd_percentile_rank(n, p) - 1] : NAN;
}

/* Square root by Newton's method: the kite binary links libc alone, no
 * libm. One step from any positive guess lands at or above the root; from
 * there the steps fall monotonically, so the loop ends when one does not. */
static double root(double x)
{
	if (!(x > 0) || isinf(x))
		return x > 0 ? x : 0;
	uint64_t b;
	double r;
	memcpy(&b, &x, sizeof b);
	b = (b >> 1) + (0x3ffull << 51); /* halve the exponent: a close guess */
	memcpy(&r, &b, sizeof r);
	r = 0.5 * (r + x / r);
	for (int i = 0; i < 64; i++) {
		double n = 0.5 * (r + x / r);
		if (!(n < r))
			break;
		r = n;
	}
	return r;
}

/* The figures statsd computes for a timer, over the interval's samples:
 * sum, sum_squares, mean and std (population) over every sample; median
 * (the middle sample, or the mean of the two middle ones) and, per
 * percentile p, the nearest-rank value (rank r = ceil(p/100 * n)) with the
 * count, sum and sum of squares of the r smallest samples, over the
 * samples kept (all of them up to max_samples). */
static void flush_dist(struct statsd_table *t, struct dist *d, double secs,
		       bool pct_changed)
{
	d->l_count = d->wcount;
	d->l_sum = d->sum;
	d->l_sumsq = d->sumsq;
	d->l_min = d->seen ? d->min : NAN;
	d->l_max = d->seen ? d->max : NAN;
	d->l_mean = d->seen ? d->sum / (double)d->seen : NAN;
	d->l_rate = d->wcount / secs;
	d->cum_count += d->wcount;
	d->cum_sum += d->sum;
	double below = 0;
	for (unsigned i = 0; i < d->n_bkt; i++) {
		below += d->bkt[i];
		d->bkt[d->n_bkt + i] += below;
		d->bkt[i] = 0;
	}
	if (d->n_pct != t->n_last_pct) {
		struct statsd_pct *np = realloc(d->pct, t->n_last_pct * sizeof *np + 1);
		if (!np) {
			/* No figures this time, rather than figures mislabelled. */
			free(d->pct);
			d->pct = NULL;
			d->n_pct = 0;
		} else {
			d->pct = np;
			d->n_pct = t->n_last_pct;
			pct_changed = true;
		}
	}
	/* An interval without samples keeps the quantiles of the last one
	 * that had some, so a scrape between flushes is never NaN. */
	if (d->kept) {
		size_t n = d->kept;
		double *v = d->samples;
		qsort(v, n, sizeof *v, cmp_double);
		d->l_median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
		if (n == d->seen) {
			/* Every sample is here: two passes, as statsd does. */
			double diffs = 0;
			for (size_t k = 0; k < n; k++)
				diffs += (v[k] - d->l_mean) * (v[k] - d->l_mean);
			d->l_std = root(diffs / (double)n);
		} else {
			d->l_std = root(d->sumsq / (double)d->seen - d->l_mean * d->l_mean);
		}
		/* Percentiles ascend in no particular order: one running sum
		 * per percentile would be as long; n_pct is at most 16. */
		for (unsigned i = 0; i < d->n_pct; i++) {
			double p = t->last_pct[i];
			double x = statsd_percentile(v, n, p);
			size_t r = statsd_percentile_rank(n, p);
			double sum = 0, sq = 0;
			for (size_t k = 0; k < r; k++) {
				sum += v[k];
				sq += v[k] * v[k];
			}
			d->pct[i] = (struct statsd_pct){x, (double)r, sum, sq};
		}
	} else {
		d->l_median = d->l_std = NAN;
		if (pct_changed)
			for (unsigned i = 0; i < d->n_pct; i++)
				d->pct[i] = (struct statsd_pct){NAN, NAN, NAN, NAN};
	}
	d->seen = 0;
	d->kept = 0;
	d->wcount = d->sum = d->sumsq = 0;
	/* A burst should not pin its memory for ever. */
	if (d->cap > 4096) {
		free(d->samples);
		d->samples = NULL;
		d->cap = 0;
	}
}

/* Take item out of an open-addressing table whose probe for it starts at
 * hash h; later items of the probe run move back so no probe stops short
 * (backward-shift deletion: no tombstones). */
static void htab_delete(struct htab *ht, uint64_t h, const void *item)
{
	size_t i = h & (ht->cap - 1);
	while (ht->item[i] != item)
		i = (i + 1) & (ht->cap - 1);
	for (size_t j = (i + 1) & (ht->cap - 1); ht->item[j]; j = (j + 1) & (ht->cap - 1)) {
		size_t home = ht->hash[j] & (ht->cap - 1);
		/* j's item may fill the hole at i if its home is not in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			ht->item[i] = ht->item[j];
			ht->hash[i] = ht->hash[j];
			i = j;
		}
	}
	ht->item[i] = NULL;
	ht->hash[i] = 0;
	ht->n--;
}

/* Series s of its family (after prev in the family's list, or first) is
 * leaving: a cursor whose last series it was goes back to prev (NULL: the
 * family's start), so its walk goes on with what followed s. A cursor in
 * s's family goes no further than the family's present end: s may come
 * back, appended to the family, and the walk may have met it already. */
static void mend_cursors_series(struct statsd_table *t, const struct statsd_series *s,
				struct statsd_series *prev)
{
	for (struct statsd_cursor *c = t->cursors; c; c = c->next_open) {
		if (c->fam != s->fam)
			continue;
		if (!c->capped) {
			c->capped = true;
			c->cap = s->fam->last;
		}
		if (c->cap == s)
			c->cap = prev;
		if (c->last == s)
			c->last = prev;
	}
}

/* Family f (after fprev, or the head) is leaving: a cursor in it goes to
 * the end of fprev, which it has passed (NULL: before the head). */
static void mend_cursors_family(struct statsd_table *t, const struct statsd_family *f,
				struct statsd_family *fprev)
{
	for (struct statsd_cursor *c = t->cursors; c; c = c->next_open)
		if (c->fam == f) {
			/* fprev's series that expire and come back would be
			 * appended: capped, so it is not walked again. */
			c->fam = fprev;
			c->last = c->cap = fprev ? fprev->last : NULL;
			c->capped = fprev != NULL;
			c->fam_started = true;
		}
}

/* Series s of its family (after prev in the family's list, or first) has
 * been idle past its time: out of the tables, its memory to the free lists. */
static void expire_series(struct statsd_table *t, struct statsd_series *s,
			  struct statsd_series *prev)
{
	struct statsd_family *f = s->fam;
	mend_cursors_series(t, s, prev);
	if (prev)
		prev->next = s->next;
	else
		f->first = s->next;
	if (f->last == s)
		f->last = prev;
	if (s->in_family)
		f->plain_live = false;
	else
		htab_delete(&t->series, series_hash(t, f, s->tags, s->tags_len), s);
	free_series_data(s);
	if (!s->in_family)
		arena_free(t, s, sizeof *s + s->tags_len + 1);
	t->n_series--;
	t->health.series_expired++;
}

/* A family left without series goes too; its Prometheus names are free
 * for the next family that wants them. */
static void expire_family(struct statsd_table *t, struct statsd_family *f,
			  struct statsd_family *prev)
{
	mend_cursors_family(t, f, prev);
	if (prev)
		prev->next = f->next;
	else
		t->head = f->next;
	if (t->tail == f)
		t->tail = prev;
	char base[STATSD_PROM_NAME_MAX];
	htab_delete(&t->families,
		    base_hash(t, base, statsd_prom_metric_name(f->key, f->key_len, base)), f);
	arena_free(t, f, family_bytes(f->key_len, f->with_plain));
}

/* Idle limits per kind, in whole flush intervals (at least one); 0: never. */
static void idle_limits(const struct statsd_table *t, uint32_t limit[STATSD_KINDS])
{
	for (unsigned k = 0; k < STATSD_KINDS; k++) {
		int64_t ms = k == STATSD_GAUGE ? t->cfg.expire_gauges_ms : t->cfg.expire_ms;
		int64_t fl = t->cfg.flush_ms > 0 ? t->cfg.flush_ms : 1;
		limit[k] = ms <= 0 ? 0 : (uint32_t)((ms + fl - 1) / fl > UINT32_MAX / 2
							 ? UINT32_MAX / 2 : (ms + fl - 1) / fl);
	}
}

/* Has s been idle past its limit at the end of interval `at`? A series
 * seen after `at` (a sample came while the flush was being swept) is not. */
static bool idle_past(const struct statsd_series *s, uint32_t at, uint32_t limit)
{
	/* modulo 2^32, as flush numbers wrap */
	return limit && (int32_t)(at - s->seen_at) >= (int32_t)limit;
}

/* Close s's interval at the boundary of the flush being swept: its figures
 * become those output shows, its accumulators start the next interval. */
static void close_series(struct statsd_table *t, struct statsd_series *s)
{
	s->epoch = t->epoch;
	s->l_updated = s->updated;
	s->updated = false;
	s->flushed = true;
	switch (s->fam->kind) {
	case STATSD_COUNTER:
		s->last = s->acc;
		s->u.total += s->acc;
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
				memset(s->u.set->slot, 0, s->u.set->cap * sizeof *s->u.set->slot);
			}
			s->u.set->n = 0;
		}
		break;
	default:
		if (s->u.dist)
			flush_dist(t, s->u.dist, t->sweep.secs, t->sweep.pct_changed);
		break;
	}
}

/* Before s is read or written: if the flush being swept has not reached
 * it yet, close its interval now, so what it held at the boundary is what
 * the flush shows and what comes after counts in the next interval. */
static inline void settle_series(struct statsd_table *t, struct statsd_series *s)
{
	if (s->epoch != t->epoch)
		close_series(t, s);
}

void statsd_table_flush_begin(struct statsd_table *t, int64_t interval_ms)
{
	if (t->sweep.active)
		statsd_table_flush_step(t, SIZE_MAX);
	double secs = interval_ms > 0 ? (double)interval_ms / 1000.0 : 1.0;
	t->sweep.pct_changed = t->n_last_pct != t->cfg.n_percentiles ||
			       memcmp(t->last_pct, t->cfg.percentiles, sizeof t->last_pct);
	t->n_last_pct = t->cfg.n_percentiles;
	memcpy(t->last_pct, t->cfg.percentiles, sizeof t->last_pct);
	t->sweep.active = true;
	t->sweep.at = t->flush_no;
	t->sweep.secs = secs;
	t->sweep.fam = t->sweep.fprev = NULL;
	t->sweep.last = NULL;
	/* The boundary: every series not touched from here on is closed
	 * where it stands, by the sweep or by settle_series. */
	t->epoch = !t->epoch;
	t->health.flushes++;
	t->flush_no++;
	t->last_interval_s = secs;
}

bool statsd_table_flush_step(struct statsd_table *t, size_t max_series)
{
	if (!t->sweep.active)
		return true;
	uint32_t limit[STATSD_KINDS];
	idle_limits(t, limit);
	uint32_t at = t->sweep.at;
	if (!t->sweep.fam)
		t->sweep.fam = t->head;
	for (size_t n = 0; t->sweep.fam && n < max_series;) {
		struct statsd_family *f = t->sweep.fam;
		struct statsd_series *s = t->sweep.last ? t->sweep.last->next : f->first;
		if (s) {
			n++;
			if (idle_past(s, at, limit[f->kind])) {
				expire_series(t, s, t->sweep.last);
				continue;
			}
			settle_series(t, s);
			t->sweep.last = s;
			continue;
		}
		/* The end of f: a family left without series goes. Families
		 * made meanwhile are at the tail, reached in turn. */
		t->sweep.fam = f->next;
		t->sweep.last = NULL;
		if (!f->first)
			expire_family(t, f, t->sweep.fprev);
		else
			t->sweep.fprev = f;
	}
	if (t->sweep.fam)
		return false;
	t->sweep.active = false;
	return true;
}

bool statsd_table_flushing(const struct statsd_table *t)
{
	return t->sweep.active;
}

void statsd_table_flush(struct statsd_table *t, int64_t interval_ms)
{
	statsd_table_flush_begin(t, interval_ms);
	statsd_table_flush_step(t, SIZE_MAX);
}

void statsd_cursor_open(struct statsd_table *t, struct statsd_cursor *c)
{
	*c = (struct statsd_cursor){.open = true, .born_max = t->families_made,
				    .next_open = t->cursors};
	if (t->cursors)
		t->cursors->prev_open = c;
	t->cursors = c;
}

void statsd_cursor_close(struct statsd_table *t, struct statsd_cursor *c)
{
	if (!c->open)
		return;
	c->open = false;
	c->done = true;
	if (c->prev_open)
		c->prev_open->next_open = c->next_open;
	else
		t->cursors = c->next_open;
	if (c->next_open)
		c->next_open->prev_open = c->prev_open;
	c->next_open = c->prev_open = NULL;
}

/* Was f made before the walk of c began? Only those are on its page. */
static bool walk_knows(const struct statsd_cursor *c, const struct statsd_family *f)
{
	return (int32_t)(f->born - c->born_max) <= 0;
}

/* The series after the cursor's last one, moving on to later families;
 * NULL at the end. Series are only appended to their family, families to
 * the table, and expiry mends the cursors it passes, so the walk sees each
 * one at most once. */
static struct statsd_series *cursor_next(struct statsd_table *t, struct statsd_cursor *c)
{
	if (!c->fam) {
		/* Not started, or the families it had passed all went. */
		if (!t->head)
			return NULL;
		c->fam = t->head;
		c->last = c->cap = NULL;
		c->capped = c->fam_started = false;
	}
	while (c->fam) {
		bool at_cap = c->capped && c->last == c->cap;
		struct statsd_series *s = !walk_knows(c, c->fam) || at_cap ? NULL
					  : c->last ? c->last->next : c->fam->first;
		if (s)
			return s;
		if (!c->fam->next)
			return NULL; /* stay here: the end, for now */
		c->fam = c->fam->next;
		c->last = c->cap = NULL;
		c->capped = c->fam_started = false;
	}
	return NULL;
}

static void fill_view(struct statsd_table *t, const struct statsd_series *s,
		      struct statsd_view *v)
{
	const struct statsd_family *f = s->fam;
	*v = (struct statsd_view){
		.kind = f->kind,
		.name = f->key,
		.tags = s->tags,
		.updated = s->l_updated,
	};
	switch (f->kind) {
	case STATSD_COUNTER:
		v->value = s->last;
		v->total = s->u.total;
		v->rate = s->last / t->last_interval_s;
		break;
	case STATSD_GAUGE:
	case STATSD_SET:
		v->value = s->last;
		break;
	default: {
		const struct dist *d = s->u.dist;
		if (!d) {
			v->min = v->max = v->mean = v->median = v->std = NAN;
			break;
		}
		v->count = d->l_count;
		v->sum = d->l_sum;
		v->sum_squares = d->l_sumsq;
		v->min = d->l_min;
		v->max = d->l_max;
		v->mean = d->l_mean;
		v->median = d->l_median;
		v->std = d->l_std;
		v->rate = d->l_rate;
		v->pct = d->pct;
		v->n_pct = d->n_pct;
		v->cum_count = d->cum_count;
		v->cum_sum = d->cum_sum;
		v->buckets = d->bkt ? d->bkt + d->n_bkt : NULL;
		v->n_buckets = d->n_bkt;
	}
	}
}

int statsd_table_walk(struct statsd_table *t, struct statsd_cursor *c,
		      int (*fn)(void *arg, const struct statsd_view *v), void *arg)
{
	if (c->done)
		return 0;
	struct statsd_series *s;
	while ((s = cursor_next(t, c))) {
		c->last = s;
		settle_series(t, s);
		if (!s->flushed)
			continue; /* new since the last flush: nothing to show yet */
		struct statsd_family *f = s->fam;
		char prom[STATSD_PROM_NAME_MAX];
		struct statsd_view v;
		fill_view(t, s, &v);
		v.prom_name = f->prom && prom_name(f, 0, prom) ? prom : NULL;
		v.family_first = !c->fam_started;
		c->fam_started = true;
		int r = fn(arg, &v);
		if (r)
			return r;
	}
	c->done = true;
	return 0;
}

int statsd_table_each(struct statsd_table *t,
		      int (*fn)(void *arg, const struct statsd_view *v), void *arg)
{
	struct statsd_cursor c;
	statsd_cursor_open(t, &c);
	int r = statsd_table_walk(t, &c, fn, arg);
	statsd_cursor_close(t, &c);
	return r;
}
