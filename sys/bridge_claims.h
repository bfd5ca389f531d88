/* What a NATS message says about its sender, parsed strictly: a value
 * that is not exactly what kite bridge writes counts as "not told". These
 * are the bytes of any NATS publisher, hostile ones included. Pure C (no
 * libnats), so the table in tests/bridge_claims_test.c drives it. */
#ifndef KITE_SYS_BRIDGE_CLAIMS_H
#define KITE_SYS_BRIDGE_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#include "kite.h"

/* The kite channel a NATS subject maps to: subject without "PREFIX." (a
 * pointer into subject), or NULL if it lacks the prefix or is not a valid
 * kite channel name. prefix may be NULL. */
const char *claims_channel(const char *prefix, const char *subject);

/* The one identity header kite bridge writes on every export. Its value,
 * version 1, is nine fields separated by one space:
 *   1 BRIDGE PUBLISHER SEQ PID UID GID TIME_NS HOST
 * BRIDGE and PUBLISHER exactly 16 lowercase hex digits, the numbers in
 * decimal without sign or leading zero (SEQ 1..2^63-1, PID 0..2^31-1,
 * UID and GID 0..2^32-2, TIME_NS 0..2^64-1), HOST 1..255 bytes of
 * printable ASCII without space. One header instead of one per field:
 * libnats allocates every header key and value. */
#define CLAIMS_ID_HEADER "Kite-Id"
#define CLAIMS_ID_MAX (2 + 2 * 17 + 5 * 21 + 255 + 1)

struct claims_id {
	uint64_t bridge, publisher, seq, time_ns;
	int64_t pid, uid, gid;
	const char *host; /* the tail of the parsed value: NUL-terminated */
};

/* Whether host can be the HOST of a Kite-Id. */
int claims_host_valid(const char *host);

/* The Kite-Id value for m exported by bridge `bridge` on host (printable
 * ASCII without space, at most 255 bytes: gethostname's), in out
 * (CLAIMS_ID_MAX bytes); its length, or -1 if host is not such a name. */
int claims_id_format(char *out, uint64_t bridge, const kite_msg *m, const char *host);

/* Parse a Kite-Id value (may be NULL). 0 and every field of *id if the
 * whole value is exactly as claims_id_format writes it; else -1 and *id
 * untouched: one bad field makes the whole claim "not told". */
int claims_id_parse(const char *value, struct claims_id *id);

/* Fill o->host, ->pid, ->uid, ->publisher, ->seq from a parsed Kite-Id,
 * or as "not told" (host "", pid and uid -1, publisher and seq 0) if id
 * is NULL. */
void claims_to_origin(const struct claims_id *id, struct kite_origin *o);

#endif
