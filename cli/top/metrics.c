/* kite top --metrics: a snapshot of the bus as Prometheus's text format.
 * Each series names its handle (pid, handle id, command), so two handles
 * of one process never make duplicate series. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "view.h"

/* A label value: printable ASCII as it is (backslash, quote escaped),
 * anything else as '?': the format wants UTF-8, commands may be bytes. */
static void label(FILE *out, const char *name, const char *value)
{
	fprintf(out, "%s=\"", name);
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if (*c == '\\' || *c == '"')
			fprintf(out, "\\%c", *c);
		else
			fputc(*c >= 0x20 && *c < 0x7f ? *c : '?', out);
	}
	fputc('"', out);
}

static void handle_labels(FILE *out, const struct obs_handle *h)
{
	char s[32];
	snprintf(s, sizeof s, "%ld", (long)h->pid);
	label(out, "pid", s);
	snprintf(s, sizeof s, "%016" PRIx64, h->id);
	fputc(',', out);
	label(out, "handle", s);
	fputc(',', out);
	label(out, "command", h->command);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum pub_field { PUB_MESSAGES, PUB_BYTES, PUB_SLOTS };

static void pub_family(FILE *out, const struct obs_bus *b, const char *name,
		       const char *type, const char *help, enum pub_field field)
{
	family(out, name, type, help);
	for (size_t i = 0; i < b->n; i++)
		for (size_t j = 0; j < b->h[i].npubs; j++) {
			const struct obs_pub *p = &b->h[i].pubs[j];
			fprintf(out, "%s{", name);
			label(out, "channel", p->channel);
			fputc(',', out);
			handle_labels(out, &b->h[i]);
			fprintf(out, "} %" PRIu64 "\n", field == PUB_MESSAGES ? p->head :
				field == PUB_BYTES ? p->bytes : (uint64_t)p->slots);
		}
}

enum sub_field { SUB_LAG, SUB_LOST, SUB_POSITION };

static void sub_family(FILE *out, const struct obs_bus *b, const char *name,
		       const char *type, const char *help, enum sub_field field)
{
	family(out, name, type, help);
	for (size_t i = 0; i < b->n; i++)
		for (size_t j = 0; j < b->h[i].nsubs; j++) {
			const struct obs_sub *s = &b->h[i].subs[j];
			const struct obs_handle *pub = view_find(b, s->publisher);
			char v[32];
			fprintf(out, "%s{", name);
			label(out, "channel", s->channel);
			fputc(',', out);
			handle_labels(out, &b->h[i]);
			snprintf(v, sizeof v, "%016" PRIx64, s->publisher);
			fputc(',', out);
			label(out, "publisher", v);
			snprintf(v, sizeof v, "%ld", pub ? (long)pub->pid : 0L);
			fputc(',', out);
			label(out, "publisher_pid", v);
			fprintf(out, "} %" PRIu64 "\n", field == SUB_LAG ? s->lag :
				field == SUB_LOST ? s->lost : s->position);
		}
}

void view_metrics(FILE *out, const struct obs_bus *b)
{
	family(out, "kite_handle_up", "gauge",
	       "1 if the handle answered this scrape's question in time, else 0.");
	for (size_t i = 0; i < b->n; i++) {
		fprintf(out, "kite_handle_up{");
		handle_labels(out, &b->h[i]);
		fprintf(out, "} %d\n", b->h[i].state == OBS_ANSWERED);
	}
	pub_family(out, b, "kite_channel_published_total", "counter",
		   "Messages the handle published on the channel (its ring's head sequence).",
		   PUB_MESSAGES);
	pub_family(out, b, "kite_channel_published_bytes_total", "counter",
		   "Payload bytes the handle published on the channel.", PUB_BYTES);
	pub_family(out, b, "kite_channel_ring_slots", "gauge",
		   "Slots of the handle's ring for the channel: a subscriber further behind is overrun.",
		   PUB_SLOTS);
	sub_family(out, b, "kite_subscriber_lag_messages", "gauge",
		   "Messages the publisher's ring holds that this subscriber has not read yet.",
		   SUB_LAG);
	sub_family(out, b, "kite_subscriber_lost_total", "counter",
		   "Messages reported lost to this subscriber (its KITE_LOSS events summed).",
		   SUB_LOST);
	sub_family(out, b, "kite_subscriber_position", "gauge",
		   "Last sequence number this subscriber read from the ring.", SUB_POSITION);
	family(out, "kite_top_handles", "gauge", "Handles found on the bus by this scrape.");
	fprintf(out, "kite_top_handles %zu\n", b->n);
	family(out, "kite_top_observe_seconds", "gauge",
	       "Time this scrape took to ask every handle.");
	fprintf(out, "kite_top_observe_seconds %.6f\n", (double)b->took_us / 1e6);
}
