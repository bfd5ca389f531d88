/* kite ls --json and kite top --json: one object per snapshot or interval,
 * on one line of standard output. Ids are hex strings (64-bit values do not survive every
 * JSON reader as numbers). */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "view.h"

static void str(const char *s)
{
	json_string(s, strlen(s));
}

static void handle_json(const struct obs_handle *h)
{
	printf("{\"pid\":%ld,\"uid\":%u,\"handle\":\"%016" PRIx64 "\",\"state\":",
		(long)h->pid, (unsigned)h->uid, h->id);
	str(view_state_name(h->state));
	printf(",\"command\":");
	json_string(h->command, strlen(h->command)); /* (any bytes: valid JSON still) */
	printf(",\"sees_everything\":%s", h->everything ? "true" : "false");
	if (h->have_stats)
		printf(",\"stats\":{\"published\":%" PRIu64 ",\"received\":%" PRIu64
			",\"lost\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"peers\":%" PRIu64
			",\"wakeups_sent\":%" PRIu64 ",\"events_dropped\":%" PRIu64 "}",
			h->stats.published, h->stats.received, h->stats.lost, h->stats.refused,
			h->stats.peers, h->stats.wakeups_sent, h->stats.events_dropped);
	printf(",\"publishes\":[");
	for (size_t i = 0; i < h->npubs; i++) {
		const struct obs_pub *p = &h->pubs[i];
		printf("%s{\"channel\":", i ? "," : "");
		str(p->channel);
		printf(",\"messages\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"slots\":%u}",
			p->head, p->bytes, p->slots);
	}
	printf("],\"subscribes\":[");
	for (size_t i = 0; i < h->npatterns; i++) {
		printf("%s", i ? "," : "");
		str(h->patterns[i]);
	}
	printf("],\"reads\":[");
	for (size_t i = 0; i < h->nsubs; i++) {
		const struct obs_sub *s = &h->subs[i];
		printf("%s{\"channel\":", i ? "," : "");
		str(s->channel);
		printf(",\"publisher\":\"%016" PRIx64 "\",\"position\":%" PRIu64
			",\"lag\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"delivery\":",
			s->publisher, s->position, s->lag, s->lost);
		str(s->delivery);
		putchar('}');
	}
	printf("]}");
}

static void handles_json(const struct obs_bus *b)
{
	printf("\"handles\":[");
	for (size_t i = 0; i < b->n; i++) {
		printf("%s", i ? "," : "");
		handle_json(&b->h[i]);
	}
	putchar(']');
}

void view_json_bus(const char *bus, const struct obs_bus *b)
{
	printf("{\"bus\":");
	str(bus);
	printf(",\"took_ms\":%.3f,", (double)b->took_us / 1000);
	handles_json(b);
	printf("}\n");
}

void view_json_interval(const char *bus, const struct obs_bus *b,
			const struct view_figures *f)
{
	printf("{\"bus\":");
	str(bus);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	printf(",\"time\":%lld.%03ld,\"interval_s\":%.3f,\"channels\":[",
	       (long long)ts.tv_sec, ts.tv_nsec / 1000000, f->interval_s);
	for (size_t i = 0; i < f->nch; i++) {
		const struct view_channel *c = &f->ch[i];
		printf("%s{\"channel\":", i ? "," : "");
		str(c->channel);
		printf(",\"publishers\":%u,\"subscribers\":%u,\"published\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"rate\":%.1f,\"max_lag\":%" PRIu64
			",\"slowest_pid\":%ld,\"lost\":%" PRIu64 ",\"lost_interval\":%" PRIu64 "}",
			c->publishers, c->subscribers, c->published, c->bytes, c->rate,
			c->max_lag, (long)c->slowest_pid, c->lost, c->lost_new);
	}
	printf("],\"subscribers\":[");
	for (size_t i = 0; i < f->nrd; i++) {
		const struct view_reader *r = &f->rd[i];
		printf("%s{\"pid\":%ld,\"handle\":\"%016" PRIx64 "\",\"channel\":",
			i ? "," : "", (long)r->h->pid, r->h->id);
		str(r->s->channel);
		printf(",\"publisher\":\"%016" PRIx64 "\",\"publisher_pid\":%ld,"
			"\"position\":%" PRIu64 ",\"lag\":%" PRIu64 ",\"lost\":%" PRIu64
			",\"lost_interval\":%" PRIu64 ",\"lagging\":%s}",
			r->s->publisher, (long)r->publisher_pid, r->s->position, r->s->lag,
			r->s->lost, r->lost_new, r->lagging ? "true" : "false");
	}
	printf("],");
	handles_json(b);
	printf("}\n");
}
