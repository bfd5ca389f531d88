/* Local → NATS: one NATS message per local message, on the subject of the
 * same name (under the prefix), with the local sender's kernel-verified
 * identity in its Kite-Id header (HPUB). */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "bridge_claims.h"

int bridge_subject(const struct bridge *b, const char *name, char *out, size_t size)
{
	/* memcpy, not snprintf: this runs for every exported message. */
	size_t plen = b->cfg.prefix ? strlen(b->cfg.prefix) + 1 : 0, nlen = strlen(name);
	if (plen + nlen >= size)
		return -1;
	if (plen) {
		memcpy(out, b->cfg.prefix, plen - 1);
		out[plen - 1] = '.';
	}
	memcpy(out + plen, name, nlen + 1);
	return 0;
}

/* Whether libnats's buffer holds less than the bound while connected,
 * after writing out what the socket takes now (while disconnected,
 * libnats bounds its own reconnect buffer). */
static int room_for(struct bridge *b, size_t len)
{
	int64_t bound = b->cfg.buffer_bytes - (int64_t)len;
	if (natsConnection_Buffered(b->nc) < bound ||
	    natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
		return 1;
	bridge_loop_flush_out(b);
	return natsConnection_Buffered(b->nc) < bound;
}

void bridge_export(struct bridge *b, const kite_msg *m)
{
	char subject[KITE_CHANNEL_MAX + 260];
	char id[CLAIMS_ID_MAX];
	natsMsg *msg = NULL;
	natsStatus s = NATS_INVALID_ARG;
	/* libnats takes an int length; the server's max_payload (1 MiB by
	 * default) refuses far less anyway, and libnats says so. The host
	 * was checked at start (main.c), so the identity always formats. */
	if (m->len <= INT_MAX && !bridge_subject(b, m->channel, subject, sizeof subject) &&
	    claims_id_format(id, b->id_num, m, b->host) > 0)
		s = natsMsg_Create(&msg, subject, NULL, m->data, (int)m->len);
	/* The whole identity in one header: libnats allocates each key and
	 * value it is given, so one header is two allocations, not sixteen. */
	if (s == NATS_OK)
		s = natsMsgHeader_Set(msg, CLAIMS_ID_HEADER, id);
	/* Never waits for the server: while connected, what the socket does
	 * not take waits in libnats's buffer up to buffer_bytes, then is
	 * refused (a server that takes nothing for the write deadline is
	 * dropped and reconnected, loop.c); while it is away, libnats buffers
	 * up to buffer_bytes itself, then refuses. */
	if (s == NATS_OK && !room_for(b, m->len))
		s = NATS_INSUFFICIENT_BUFFER;
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, msg);
	bridge_retire(b, msg);
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
