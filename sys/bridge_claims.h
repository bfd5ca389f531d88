/* What a NATS message says about its sender, parsed strictly: a value
 * that is not exactly what kite bridge writes counts as "not told". These
 * are the bytes of any NATS publisher, hostile ones included. Pure C (no
 * libnats), so the table in tests/bridge_claims_test.c drives it. */
#ifndef KITE_SYS_BRIDGE_CLAIMS_H
#define KITE_SYS_BRIDGE_CLAIMS_H

#include "kite.h"

/* The kite channel a NATS subject maps to: subject without "PREFIX." (a
 * pointer into subject), or NULL if it lacks the prefix or is not a valid
 * kite channel name. prefix may be NULL. */
const char *claims_channel(const char *prefix, const char *subject);

/* Fill o->host, ->pid, ->uid, ->publisher, ->seq from the Kite-* header
 * values (each may be NULL): host as it is (NULL → ""), pid and uid as
 * decimal 0..2^31-1 and 0..2^32-2 (else -1), publisher as exactly 16 hex
 * digits (else 0), seq as decimal 1..2^63-1 (else 0). */
void claims_parse(const char *host, const char *pid, const char *uid,
		  const char *publisher, const char *seq, struct kite_origin *o);

#endif
