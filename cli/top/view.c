/* kite ls / top: snapshots of the bus, narrowed to a pattern. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "internal.h"
#include "view.h"

const char *view_bus_name(const char *bus)
{
	if (!bus || !*bus)
		bus = getenv("KITE_BUS");
	return bus && *bus ? bus : "default";
}

int view_bus_check(const char *cmd, const char *bus)
{
	bus = view_bus_name(bus);
	return ki_bus_valid(bus) ? 0
				 : usage_error(cmd, "bad bus name '%s' (1-64 of A-Z a-z 0-9 _ . -)", bus);
}

const char *view_state_name(enum obs_state s)
{
	switch (s) {
	case OBS_ANSWERED: return "answered";
	case OBS_SILENT: return "silent";
	case OBS_CUT: return "cut";
	case OBS_UNREACHABLE: return "unreachable";
	}
	return "?";
}

const struct obs_handle *view_find(const struct obs_bus *b, uint64_t id)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->h[i].id == id)
			return &b->h[i];
	return NULL;
}

void view_command(FILE *out, const char *command)
{
	if (!*command)
		fputc('?', out);
	else
		text_escape(out, command, strlen(command));
}

/* Keep the items matching pattern; 1 if any is left. */
static int narrow(struct obs_handle *h, const char *pattern)
{
	size_t n = 0;
	for (size_t i = 0; i < h->npubs; i++)
		if (kite_pattern_match(pattern, h->pubs[i].channel))
			h->pubs[n++] = h->pubs[i];
	h->npubs = n;
	n = 0;
	for (size_t i = 0; i < h->nsubs; i++)
		if (kite_pattern_match(pattern, h->subs[i].channel))
			h->subs[n++] = h->subs[i];
	h->nsubs = n;
	for (size_t i = 0; i < h->npatterns;) {
		if (ki_patterns_overlap(pattern, h->patterns[i]))
			i++;
		else
			ki_strlist_remove(&h->patterns, &h->npatterns, h->patterns[i]);
	}
	return h->npubs || h->nsubs || h->npatterns;
}

int view_snapshot(const char *cmd, const char *bus, const char *pattern,
		  int timeout_ms, struct obs_bus *out)
{
	int rc = view_bus_check(cmd, bus);
	if (rc)
		return rc;
	rc = ki_observe(bus, timeout_ms, out);
	if (rc < 0)
		return fail(EXIT_SYSTEM, cmd, "cannot observe the bus: %s", kite_strerror(rc));
	if (!pattern)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < out->n; i++) {
		struct obs_handle *h = &out->h[i];
		if (h->state != OBS_ANSWERED || narrow(h, pattern)) {
			out->h[n++] = *h;
			continue;
		}
		free(h->pubs);
		free(h->subs);
		ki_strlist_free(&h->patterns, &h->npatterns);
	}
	out->n = n;
	return 0;
}
