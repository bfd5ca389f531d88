/* Local → NATS: one NATS message per local message, on the subject of the
 * same name (under the prefix), with the local sender's kernel-verified
 * identity in its headers (HPUB). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

int bridge_subject(const struct bridge *b, const char *name, char *out, size_t size)
{
	int n = b->cfg.prefix ? snprintf(out, size, "%s.%s", b->cfg.prefix, name)
			      : snprintf(out, size, "%s", name);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static natsStatus set_u64(natsMsg *m, const char *key, const char *fmt, uint64_t v)
{
	char text[24];
	snprintf(text, sizeof text, fmt, v);
	return natsMsgHeader_Set(m, key, text);
}

static natsStatus set_i64(natsMsg *m, const char *key, int64_t v)
{
	char text[24];
	snprintf(text, sizeof text, "%" PRId64, v);
	return natsMsgHeader_Set(m, key, text);
}

void bridge_export(struct bridge *b, const kite_msg *m)
{
	char subject[KITE_CHANNEL_MAX + 260];
	natsMsg *msg = NULL;
	natsStatus s = NATS_INVALID_ARG;
	/* libnats takes an int length; the server's max_payload (1 MiB by
	 * default) refuses far less anyway, and libnats says so. */
	if (m->len <= INT_MAX && !bridge_subject(b, m->channel, subject, sizeof subject))
		s = natsMsg_Create(&msg, subject, NULL, m->data, (int)m->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Kite-Host", b->host);
	if (s == NATS_OK)
		s = set_i64(msg, "Kite-Pid", m->pid);
	if (s == NATS_OK)
		s = set_i64(msg, "Kite-Uid", m->uid);
	if (s == NATS_OK)
		s = set_i64(msg, "Kite-Gid", m->gid);
	if (s == NATS_OK)
		s = set_u64(msg, "Kite-Publisher", "%016" PRIx64, m->publisher);
	if (s == NATS_OK)
		s = set_u64(msg, "Kite-Seq", "%" PRIu64, m->seq);
	if (s == NATS_OK)
		s = set_u64(msg, "Kite-Time-Ns", "%" PRIu64, m->timestamp_ns);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, "Kite-Bridge", b->id);
	/* Never waits for the server while connected but slow beyond the
	 * write deadline (the connection is then dropped and remade); while
	 * it is away, libnats buffers up to buffer_bytes, then refuses. */
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, msg);
	natsMsg_Destroy(msg);
	if (s == NATS_OK) {
		atomic_fetch_add_explicit(&b->n.exported, 1, memory_order_relaxed);
		return;
	}
	uint64_t dropped = atomic_fetch_add(&b->n.export_dropped, 1);
	/* Say why at the first drop and at each power of two after it. */
	if (!(dropped & (dropped + 1)))
		fprintf(stderr, "kite bridge: dropped export of %s (%zu bytes): %s "
			"(%" PRIu64 " dropped so far)\n", m->channel, m->len,
			natsStatus_GetText(s), dropped + 1);
}
