/* Parsing the `lan` option: strict, every mistake named. */
#include "lan_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lan_reasm.h"

/* A decimal number in [lo, hi], the whole of s. */
static int number(const char *s, size_t n, unsigned long lo, unsigned long hi,
		  unsigned long *out)
{
	if (n == 0 || n > 10)
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int iface_valid(const char *s, size_t n)
{
	if (n == 0 || n >= IF_NAMESIZE)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] == '/' || s[i] == ':' || s[i] == 0x7f)
			return 0;
	return 1;
}

int ki_lan_spec_parse(const char *text, struct lan_spec *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof *out);
	ki_lan_range_default(&out->range);
	out->ttl = LAN_DEFAULT_TTL;
	out->reorder_ms = LAN_DEFAULT_REORDER_MS;
	out->max_msg = LAN_REASM_MAX_MSG;
	out->pack_us = LAN_DEFAULT_PACK_US;
	out->gso = 1;
	out->batch = 1;
	out->repair_ms = LAN_DEFAULT_REPAIR_MS;
	if (!text) {
		snprintf(why, why_len, "no interface given");
		return -EINVAL;
	}
	const char *comma = strchr(text, ',');
	size_t n = comma ? (size_t)(comma - text) : strlen(text);
	if (!iface_valid(text, n)) {
		snprintf(why, why_len, "'%.*s' is not an interface name", (int)(n > 40 ? 40 : n), text);
		return -EINVAL;
	}
	memcpy(out->iface, text, n);
	out->is_auto = strcmp(out->iface, "auto") == 0;
	while (comma) {
		const char *item = comma + 1;
		comma = strchr(item, ',');
		size_t len = comma ? (size_t)(comma - item) : strlen(item);
		const char *eq = memchr(item, '=', len);
		if (!eq) {
			snprintf(why, why_len, "'%.*s': expected KEY=VALUE", (int)(len > 40 ? 40 : len), item);
			return -EINVAL;
		}
		size_t klen = (size_t)(eq - item), vlen = len - klen - 1;
		const char *v = eq + 1;
		unsigned long num = 0;
		int bad = 0;
		if (klen == 5 && !memcmp(item, "group", 5)) {
			char cidr[32];
			bad = vlen >= sizeof cidr;
			if (!bad) {
				memcpy(cidr, v, vlen);
				cidr[vlen] = 0;
				bad = ki_lan_range_parse(cidr, &out->range) != 0;
			}
			if (bad) {
				snprintf(why, why_len, "group=%.*s: expected A.B.C.D/N within 239.0.0.0/8, N 24 to 32",
					 (int)(vlen > 32 ? 32 : vlen), v);
				return -EINVAL;
			}
		} else if (klen == 4 && !memcmp(item, "port", 4)) {
			bad = number(v, vlen, 1, 65535, &num);
			out->range.port = (uint16_t)num;
		} else if (klen == 3 && !memcmp(item, "ttl", 3)) {
			bad = number(v, vlen, 1, 255, &num);
			out->ttl = (unsigned)num;
		} else if (klen == 10 && !memcmp(item, "reorder_ms", 10)) {
			bad = number(v, vlen, 1, 10000, &num);
			out->reorder_ms = (unsigned)num;
		} else if (klen == 7 && !memcmp(item, "max_msg", 7)) {
			bad = number(v, vlen, LAN_REASM_MAX_MSG, 1ul << 30, &num);
			out->max_msg = (uint32_t)num;
		} else if (klen == 7 && !memcmp(item, "pack_us", 7)) {
			bad = number(v, vlen, 0, 1000000, &num);
			out->pack_us = (unsigned)num;
		} else if (klen == 3 && !memcmp(item, "gso", 3)) {
			bad = number(v, vlen, 0, 1, &num);
			out->gso = (int)num;
		} else if (klen == 5 && !memcmp(item, "batch", 5)) {
			bad = number(v, vlen, 0, 1, &num);
			out->batch = (int)num;
		} else if (klen == 6 && !memcmp(item, "repair", 6)) {
			bad = number(v, vlen, 0, 1, &num);
			out->repair = (int)num;
		} else if (klen == 9 && !memcmp(item, "repair_ms", 9)) {
			bad = number(v, vlen, 10, 10000, &num);
			out->repair_ms = (unsigned)num;
			out->repair = 1;
		} else if (klen == 3 && !memcmp(item, "key", 3)) {
			/* A path without commas (the option's separator). */
			bad = vlen == 0 || vlen >= sizeof out->key_path || memchr(v, 0, vlen);
			if (!bad) {
				memcpy(out->key_path, v, vlen);
				out->key_path[vlen] = 0;
			}
		} else {
			snprintf(why, why_len, "unknown LAN option '%.*s' (group, port, ttl, reorder_ms, max_msg, pack_us, gso, batch, repair, repair_ms, key)",
				 (int)(klen > 40 ? 40 : klen), item);
			return -EINVAL;
		}
		if (bad) {
			snprintf(why, why_len, "%.*s: value out of range", (int)(len > 60 ? 60 : len), item);
			return -EINVAL;
		}
	}
	return 0;
}
