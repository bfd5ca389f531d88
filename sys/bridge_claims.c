/* The sender claims of NATS messages kite bridge imports (bridge_claims.h). */
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

#define HOST_MAX 255

int claims_host_valid(const char *h)
{
	size_t n = 0;
	for (; h[n]; n++)
		if (n >= HOST_MAX || h[n] <= 0x20 || h[n] >= 0x7f)
			return 0;
	return n > 0;
}

/* Writers for claims_id_format, each followed by one space: it runs once
 * per exported message, where snprintf's format parsing showed in the
 * profile. */
static char *put_hex16(char *p, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, v >>= 4)
		p[i] = digits[v & 15];
	p[16] = ' ';
	return p + 17;
}

static char *put_decimal(char *p, uint64_t v)
{
	/* Two digits a step, from a table: half the multiplications of one
	 * digit a step, for the 19-digit TIME_NS of every message. */
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	char tmp[20];
	int n = 20;
	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);
		v /= 100;
		tmp[--n] = pairs[2 * r + 1];
		tmp[--n] = pairs[2 * r];
	}
	if (v >= 10) {
		tmp[--n] = pairs[2 * v + 1];
		tmp[--n] = pairs[2 * v];
	} else {
		tmp[--n] = (char)('0' + v);
	}
	memcpy(p, tmp + n, (size_t)(20 - n));
	p += 20 - n;
	*p = ' ';
	return p + 1;
}

int claims_id_format(char *out, uint64_t bridge, const kite_msg *m, const char *host)
{
	if (!claims_host_valid(host))
		return -1;
	/* At most 2 + 2 * 17 + 5 * 21 + 255 + 1 bytes: CLAIMS_ID_MAX. */
	char *p = out;
	*p++ = '1';
	*p++ = ' ';
	p = put_hex16(p, bridge);
	p = put_hex16(p, m->publisher);
	p = put_decimal(p, m->seq);
	p = put_decimal(p, (uint64_t)(m->pid < 0 ? 0 : m->pid));
	p = put_decimal(p, (uint64_t)m->uid);
	p = put_decimal(p, (uint64_t)m->gid);
	p = put_decimal(p, m->timestamp_ns);
	size_t n = strlen(host);
	memcpy(p, host, n + 1);
	return (int)(p - out + (ptrdiff_t)n);
}

/* Decimal digits up to the next space (or the end if last): no sign,
 * space or leading zero but "0", at most max; advances *s past the
 * field and its space. 0, or -1. */
static int decimal(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	/* Two divisions a field, not one a digit: this runs for every
	 * imported message, where the division per digit showed. */
	const uint64_t top = max / 10, top_digit = max % 10;
	uint64_t v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > top || (v == top && d > top_digit))
			return -1;
		v = v * 10 + d;
	}
	if (*p != ' ')
		return -1;
	*s = p + 1;
	*out = v;
	return 0;
}

/* Exactly 16 lowercase hex digits, then a space. */
static int hex16(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++, p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	if (*p != ' ')
		return -1;
	*s = p + 1;
	*out = v;
	return 0;
}

int claims_id_parse(const char *value, struct claims_id *id)
{
	if (!value || strncmp(value, "1 ", 2))
		return -1;
	const char *s = value + 2;
	struct claims_id c;
	uint64_t pid, uid, gid;
	if (hex16(&s, &c.bridge) || hex16(&s, &c.publisher) ||
	    decimal(&s, INT64_MAX, &c.seq) || !c.seq || decimal(&s, INT32_MAX, &pid) ||
	    decimal(&s, UINT32_MAX - 1, &uid) || decimal(&s, UINT32_MAX - 1, &gid) ||
	    decimal(&s, UINT64_MAX, &c.time_ns) || !claims_host_valid(s))
		return -1;
	c.pid = (int64_t)pid;
	c.uid = (int64_t)uid;
	c.gid = (int64_t)gid;
	c.host = s;
	*id = c;
	return 0;
}

void claims_to_origin(const struct claims_id *id, struct kite_origin *o)
{
	o->host = id ? id->host : "";
	o->pid = id ? id->pid : -1;
	o->uid = id ? id->uid : -1;
	o->publisher = id ? id->publisher : 0;
	o->seq = id ? id->seq : 0;
}
