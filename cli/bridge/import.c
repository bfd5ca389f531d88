/* NATS → local: messages on subjects matching an import pattern are
 * published on the local bus by the bridge's import handle, with what the
 * NATS message says about its sender as the kite origin (a claim: only
 * the bridge itself is vouched for by the kernel). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "bridge_claims.h"

/* Append n bytes of s at buf + *len if they fit with `reserve` bytes to
 * spare in KITE_ORIGIN_MAX (3: the final "\r\n" and NUL); 1 if they
 * did. memcpy, not snprintf: this runs for every header of every import,
 * where snprintf showed in the profile. */
static int append(char *buf, size_t *len, const char *s, size_t n, size_t reserve)
{
	if (n + reserve > KITE_ORIGIN_MAX - *len)
		return 0;
	memcpy(buf + *len, s, n);
	*len += n;
	return 1;
}

/* The message's headers as the block NATS sent them: "NATS/1.0\r\n", then
 * "Key: Value\r\n" per value, then "\r\n". libnats hands us the parsed
 * headers, so this is their canonical form. *out points into buf
 * (KITE_ORIGIN_MAX bytes, the block NUL-terminated) or is NULL (no
 * headers, or more than fit). */
static size_t header_block(natsMsg *m, char *buf, const char **out)
{
	const char **keys = NULL;
	int nkeys = 0;
	*out = NULL;
	if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK || !nkeys) {
		free((void *)keys);
		return 0;
	}
	size_t len = 0;
	int fits = append(buf, &len, "NATS/1.0\r\n", 10, 3);
	for (int i = 0; fits && i < nkeys; i++) {
		const char **values = NULL;
		int nvalues = 0;
		if (natsMsgHeader_Values(m, keys[i], &values, &nvalues) != NATS_OK)
			continue;
		size_t klen = strlen(keys[i]);
		for (int j = 0; fits && j < nvalues; j++)
			fits = append(buf, &len, keys[i], klen, 3) && append(buf, &len, ": ", 2, 3) &&
			       append(buf, &len, values[j], strlen(values[j]), 3) &&
			       append(buf, &len, "\r\n", 2, 3);
		free((void *)values);
	}
	free((void *)keys);
	if (!fits)
		return 0;
	memcpy(buf + len, "\r\n", 3);
	*out = buf;
	return len + 2;
}

static const char *header(natsMsg *m, const char *key)
{
	const char *v = NULL;
	return natsMsgHeader_Get(m, key, &v) == NATS_OK ? v : NULL;
}

/* A subject from any NATS client, made safe for a terminal: the first 200
 * bytes, each one that is not printable ASCII as '?'. */
static const char *printable(const char *subject, char *out, size_t size)
{
	size_t i = 0;
	for (; subject[i] && i + 1 < size && i < 200; i++)
		out[i] = subject[i] > 0x20 && subject[i] < 0x7f ? subject[i] : '?';
	out[i] = 0;
	return out;
}

static void import_one(struct bridge *b, natsMsg *m)
{
	const char *subject = natsMsg_GetSubject(m);
	struct claims_id id;
	int claimed = !claims_id_parse(header(m, CLAIMS_ID_HEADER), &id);
	if (claimed && id.bridge == b->id_num) {
		/* Our own export (only if the server ignored no_echo). */
		atomic_fetch_add(&b->n.own_echoes, 1);
		bridge_retire(b, m);
		return;
	}
	const char *channel = claims_channel(b->cfg.prefix, subject);
	if (!channel) {
		uint64_t n = atomic_fetch_add(&b->n.unmappable, 1);
		char safe[256];
		if (!(n & (n + 1)))
			fprintf(stderr, "kite bridge: NATS subject '%s' is no kite channel "
				"name; not imported (%" PRIu64 " so far)\n",
				printable(subject, safe, sizeof safe), n + 1);
		bridge_retire(b, m);
		return;
	}
	struct kite_origin o = {.system = "nats", .subject = subject};
	claims_to_origin(claimed ? &id : NULL, &o);
	/* One buffer, reused (only the loop's thread imports): no 64 KiB
	 * allocation per message. */
	static char block[KITE_ORIGIN_MAX];
	o.headers_len = header_block(m, block, &o.headers);
	const void *data = natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	int64_t rc = kite_publish_origin(b->imp, channel, data, len, &o);
	if (rc == -EINVAL || rc == KITE_ETOOBIG) {
		/* A host or header block we cannot carry (a NUL, too long): the
		 * message still goes, with the subject as its only origin. */
		o.host = NULL;
		o.headers = NULL;
		o.headers_len = 0;
		atomic_fetch_add(&b->n.origin_trimmed, 1);
		rc = kite_publish_origin(b->imp, channel, data, len, &o);
	}
	if (rc > 0) {
		atomic_fetch_add_explicit(&b->n.imported, 1, memory_order_relaxed);
	} else {
		uint64_t n = atomic_fetch_add(&b->n.import_dropped, 1);
		if (!(n & (n + 1)))
			fprintf(stderr, "kite bridge: cannot publish %s locally: %s "
				"(%" PRIu64 " so far)\n", channel, kite_strerror((int)rc), n + 1);
	}
	bridge_retire(b, m);
}

int bridge_import_start(struct bridge *b)
{
	b->subs = calloc((size_t)b->cfg.nimports + 1, sizeof *b->subs);
	if (!b->subs)
		return -1;
	for (int i = 0; i < b->cfg.nimports; i++) {
		char subject[KITE_CHANNEL_MAX + 260];
		natsStatus s = NATS_INVALID_ARG;
		if (!bridge_subject(b, b->cfg.imports[i], subject, sizeof subject))
			s = natsConnection_SubscribeSync(&b->subs[i], b->nc, subject);
		if (s == NATS_OK)
			s = natsSubscription_SetPendingLimits(b->subs[i], (int)b->cfg.import_pending,
							      -1);
		if (s != NATS_OK) {
			fprintf(stderr, "kite bridge: cannot subscribe to NATS subject %s: %s\n",
				subject, natsStatus_GetText(s));
			return -1;
		}
	}
	return 0;
}

int bridge_import_drain(struct bridge *b, int max)
{
	int taken = 0;
	for (int i = 0; i < b->cfg.nimports; i++) {
		natsMsg *m = NULL;
		natsStatus s = NATS_OK;
		/* NATS_SLOW_CONSUMER says, once, that libnats dropped some: the
		 * error callback counted it (connect.c); the next call goes on. */
		while (taken < max && ((s = natsSubscription_NextMsg(&m, b->subs[i], 0)) == NATS_OK ||
				       s == NATS_SLOW_CONSUMER)) {
			if (s == NATS_OK) {
				import_one(b, m);
				taken++;
			}
		}
	}
	return taken;
}
