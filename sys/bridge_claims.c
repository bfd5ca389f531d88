/* The sender claims of NATS messages kite bridge imports (bridge_claims.h). */
#include <stdint.h>
#include <string.h>

#include "bridge_claims.h"

const char *claims_channel(const char *prefix, const char *subject)
{
	if (!subject)
		return NULL;
	if (prefix) {
		size_t n = strlen(prefix);
		if (strncmp(subject, prefix, n) || subject[n] != '.')
			return NULL;
		subject += n + 1;
	}
	return kite_channel_valid(subject) ? NULL : subject;
}

/* Decimal digits only (no sign, space or leading zero but "0"), at most
 * max; 0 and *out, or -1. */
static int decimal(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s || (s[0] == '0' && s[1]) || strlen(s) > 20)
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int hex16(const char *s, uint64_t *out)
{
	if (!s || strlen(s) != 16)
		return -1;
	uint64_t v = 0;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

void claims_parse(const char *host, const char *pid, const char *uid,
		  const char *publisher, const char *seq, struct kite_origin *o)
{
	uint64_t v;
	o->host = host ? host : "";
	o->pid = decimal(pid, INT32_MAX, &v) ? -1 : (int64_t)v;
	o->uid = decimal(uid, UINT32_MAX - 1, &v) ? -1 : (int64_t)v;
	o->publisher = hex16(publisher, &v) ? 0 : v;
	o->seq = decimal(seq, INT64_MAX, &v) || !v ? 0 : v;
}
