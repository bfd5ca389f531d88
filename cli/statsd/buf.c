/* The growable byte buffer the output writers append to: an append that
 * cannot get memory marks the buffer incomplete (oom) instead of failing
 * half-way through a line. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd.h"

void statsd_buf_put(struct statsd_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void statsd_buf_printf(struct statsd_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof tmp) {
		statsd_buf_put(b, tmp, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->oom = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	statsd_buf_put(b, big, (size_t)n);
	free(big);
}

void statsd_buf_free(struct statsd_buf *b)
{
	free(b->p);
	*b = (struct statsd_buf){0};
}

void statsd_buf_double(struct statsd_buf *b, double v)
{
	if (isnan(v)) {
		statsd_buf_put(b, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		statsd_buf_put(b, v > 0 ? "+Inf" : "-Inf", 4);
		return;
	}
	char tmp[40];
	int n;
	if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
		n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
	} else {
		n = snprintf(tmp, sizeof tmp, "%.15g", v);
		if (strtod(tmp, NULL) != v)
			n = snprintf(tmp, sizeof tmp, "%.17g", v);
	}
	statsd_buf_put(b, tmp, (size_t)n);
}
