/* The origin block of relayed messages: encoded by kite_publish_origin(),
 * decoded by subscribers that trust none of it (layout in origin.h). */
#include <errno.h>
#include <string.h>

#include "origin.h"

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static size_t field_len(const char *s, size_t max, int *too_long)
{
	size_t n = strnlen(or_empty(s), max + 1);
	if (n > max)
		*too_long = 1;
	return n;
}

int64_t ki_origin_size(const struct kite_origin *o)
{
	if (!o || !o->system || !*o->system || !o->subject || !*o->subject ||
	    o->pid < -1 || o->uid < -1)
		return -EINVAL;
	int too_long = 0;
	size_t system = field_len(o->system, ORIGIN_SYSTEM_MAX, &too_long);
	size_t subject = field_len(o->subject, UINT16_MAX, &too_long);
	size_t host = field_len(o->host, UINT16_MAX, &too_long);
	if (too_long)
		return -EINVAL;
	size_t headers = o->headers ? o->headers_len : 0;
	/* The block hands subscribers C strings: an inner NUL would cut them. */
	if (headers && memchr(o->headers, 0, headers))
		return -EINVAL;
	if (headers > KITE_ORIGIN_MAX)
		return KITE_ETOOBIG;
	size_t total = ORIGIN_FIXED + system + subject + host + headers + 4;
	return total > KITE_ORIGIN_MAX ? KITE_ETOOBIG : (int64_t)total;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *put_string(uint8_t *p, const char *s, size_t n)
{
	p = put(p, s, n);
	*p = 0;
	return p + 1;
}

void ki_origin_encode(const struct kite_origin *o, void *out)
{
	const char *host = or_empty(o->host);
	const char *headers = o->headers ? o->headers : "";
	uint16_t lens[4] = {(uint16_t)strlen(o->system), (uint16_t)strlen(o->subject),
			    (uint16_t)strlen(host), 0};
	uint32_t headers_len = o->headers ? (uint32_t)o->headers_len : 0;
	uint32_t block_len = (uint32_t)ki_origin_size(o);
	uint16_t version = ORIGIN_VERSION, reserved = 0;
	uint8_t *p = out;
	p = put(p, &block_len, 4);
	p = put(p, &version, 2);
	p = put(p, &reserved, 2);
	p = put(p, &o->pid, 8);
	p = put(p, &o->uid, 8);
	p = put(p, &o->publisher, 8);
	p = put(p, &o->seq, 8);
	p = put(p, lens, sizeof lens);
	p = put(p, &headers_len, 4);
	p = put_string(p, o->system, lens[0]);
	p = put_string(p, o->subject, lens[1]);
	p = put_string(p, host, lens[2]);
	put_string(p, headers, headers_len);
}

/* The string of n bytes at *at, which must end in the block's one NUL
 * after it and hold none before; NULL otherwise. Advances *at. */
static const char *take_string(const uint8_t **at, const uint8_t *end, size_t n)
{
	const uint8_t *s = *at;
	if ((size_t)(end - s) < n + 1 || s[n] != 0 || memchr(s, 0, n))
		return NULL;
	*at = s + n + 1;
	return (const char *)s;
}

int64_t ki_origin_decode(const void *data, size_t len, struct kite_origin *out)
{
	const uint8_t *b = data;
	uint32_t block_len, headers_len;
	uint16_t version, reserved, lens[4];
	if (!data || len < ORIGIN_FIXED)
		return -EBADMSG;
	memcpy(&block_len, b, 4);
	memcpy(&version, b + 4, 2);
	memcpy(&reserved, b + 6, 2);
	memcpy(lens, b + 40, sizeof lens);
	memcpy(&headers_len, b + 48, 4);
	if (block_len < ORIGIN_FIXED || block_len > len || block_len > KITE_ORIGIN_MAX ||
	    version != ORIGIN_VERSION || reserved || lens[3] || !lens[0] || !lens[1] ||
	    lens[0] > ORIGIN_SYSTEM_MAX)
		return -EBADMSG;
	/* Summed in 64 bits: four lengths of a lying block cannot wrap. */
	uint64_t want = (uint64_t)ORIGIN_FIXED + lens[0] + lens[1] + lens[2] +
			headers_len + 4;
	if (want != block_len)
		return -EBADMSG;
	struct kite_origin o;
	memcpy(&o.pid, b + 8, 8);
	memcpy(&o.uid, b + 16, 8);
	memcpy(&o.publisher, b + 24, 8);
	memcpy(&o.seq, b + 32, 8);
	if (o.pid < -1 || o.uid < -1)
		return -EBADMSG;
	const uint8_t *at = b + ORIGIN_FIXED, *end = b + block_len;
	if (!(o.system = take_string(&at, end, lens[0])) ||
	    !(o.subject = take_string(&at, end, lens[1])) ||
	    !(o.host = take_string(&at, end, lens[2])) ||
	    !(o.headers = take_string(&at, end, headers_len)))
		return -EBADMSG;
	o.headers_len = headers_len;
	*out = o;
	return block_len;
}
