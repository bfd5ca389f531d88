/* The bridge's counters: a line on stderr, and statsd counters (deltas
 * since the last report) for `kite statsd` or any statsd server. */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"

static int statsd_fd = -1;
static uint64_t last_sent[BRIDGE_COUNTERS];

static void snapshot(struct bridge *b, const char **names, uint64_t *values)
{
	const struct {
		const char *name;
		_Atomic uint64_t *v;
	} all[BRIDGE_COUNTERS] = {
		{"exported", &b->n.exported},
		{"export_dropped", &b->n.export_dropped},
		{"local_lost", &b->n.local_lost},
		{"relayed_skipped", &b->n.relayed_skipped},
		{"imported", &b->n.imported},
		{"import_dropped", &b->n.import_dropped},
		{"unmappable", &b->n.unmappable},
		{"own_echoes", &b->n.own_echoes},
		{"origin_trimmed", &b->n.origin_trimmed},
		{"slow_consumer", &b->n.slow_consumer},
		{"slow_dropped", &b->n.slow_dropped},
		{"disconnects", &b->n.disconnects},
		{"reconnects", &b->n.reconnects},
	};
	/* libnats counts what it dropped per subscription. */
	uint64_t slow = 0;
	for (int i = 0; b->subs && i < b->cfg.nimports; i++) {
		int64_t n = 0;
		if (b->subs[i] && natsSubscription_GetDropped(b->subs[i], &n) == NATS_OK && n > 0)
			slow += (uint64_t)n;
	}
	atomic_store(&b->n.slow_dropped, slow);
	for (int i = 0; i < BRIDGE_COUNTERS; i++) {
		names[i] = all[i].name;
		values[i] = atomic_load(all[i].v);
	}
}

int bridge_statsd_open(struct bridge *b)
{
	char host[256];
	const char *colon = strrchr(b->cfg.statsd, ':');
	size_t hl = colon ? (size_t)(colon - b->cfg.statsd) : 0;
	if (!colon || !hl || hl >= sizeof host || !colon[1]) {
		fprintf(stderr, "kite bridge: --statsd wants HOST:PORT, not '%s'\n", b->cfg.statsd);
		return -1;
	}
	memcpy(host, b->cfg.statsd, hl);
	host[hl] = 0;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc) {
		fprintf(stderr, "kite bridge: --statsd %s: %s\n", b->cfg.statsd, gai_strerror(rc));
		return -1;
	}
	statsd_fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (statsd_fd < 0 || connect(statsd_fd, res->ai_addr, res->ai_addrlen) < 0) {
		fprintf(stderr, "kite bridge: --statsd %s: %s\n", b->cfg.statsd, strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

void bridge_report(struct bridge *b, const char *label)
{
	const char *names[BRIDGE_COUNTERS];
	uint64_t v[BRIDGE_COUNTERS];
	snapshot(b, names, v);
	char line[1024];
	size_t len = 0;
	for (int i = 0; i < BRIDGE_COUNTERS; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, " %s=%" PRIu64,
					names[i], v[i]);
	fprintf(stderr, "kite bridge: %s:%s\n", label, line);
	if (statsd_fd < 0)
		return;
	/* Counters as statsd counts: what happened since the last report. A
	 * datagram lost on the way loses that interval only. */
	len = 0;
	for (int i = 0; i < BRIDGE_COUNTERS; i++) {
		len += (size_t)snprintf(line + len, sizeof line - len,
					"kite.bridge.%s:%" PRIu64 "|c\n", names[i],
					v[i] - last_sent[i]);
		last_sent[i] = v[i];
	}
	if (send(statsd_fd, line, len, MSG_NOSIGNAL) < 0 && errno != ECONNREFUSED)
		fprintf(stderr, "kite bridge: statsd: %s\n", strerror(errno));
}
