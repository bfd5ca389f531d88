/* Since when a LAN handle has been listening to each channel (a list of
 * its patterns with their subscription times; looked up once per new
 * stream, never per message). */
#include "lan_listen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kite.h"

static size_t find(const struct lan_listen *l, const char *pattern)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->patterns[i], pattern))
			return i;
	return l->n;
}

int ki_lan_listen_add(struct lan_listen *l, const char *pattern, uint64_t since_ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **p = realloc(l->patterns, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->patterns = p;
		uint64_t *s = realloc(l->since, cap * sizeof *s);
		if (!s)
			return -ENOMEM;
		l->since = s;
		l->cap = cap;
	}
	char *copy = strdup(pattern);
	if (!copy)
		return -ENOMEM;
	l->patterns[l->n] = copy;
	l->since[l->n] = since_ns;
	l->n++;
	return 0;
}

void ki_lan_listen_set(struct lan_listen *l, const char *pattern, uint64_t since_ns)
{
	size_t i = find(l, pattern);
	if (i < l->n)
		l->since[i] = since_ns;
}

void ki_lan_listen_remove(struct lan_listen *l, const char *pattern)
{
	size_t i = find(l, pattern);
	if (i == l->n)
		return;
	free(l->patterns[i]);
	l->n--;
	l->patterns[i] = l->patterns[l->n];
	l->since[i] = l->since[l->n];
}

void ki_lan_listen_forget(struct lan_listen *l, uint64_t first_heard_ns)
{
	if (first_heard_ns > l->forgot_ns)
		l->forgot_ns = first_heard_ns;
}

uint64_t ki_lan_listen_since(const struct lan_listen *l, const char *channel)
{
	uint64_t since = LAN_LISTEN_NEVER;
	for (size_t i = 0; i < l->n; i++)
		if (l->since[i] < since && kite_pattern_match(l->patterns[i], channel))
			since = l->since[i];
	if (since != LAN_LISTEN_NEVER && since < l->forgot_ns)
		since = l->forgot_ns;
	return since;
}

void ki_lan_listen_free(struct lan_listen *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->patterns[i]);
	free(l->patterns);
	free(l->since);
	memset(l, 0, sizeof *l);
}
