/* Channel -> group mapping and the join counts of a handle's patterns. */
#include "lan_group.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lan_crc32c.h"

void ki_lan_range_default(struct lan_range *r)
{
	r->base = LAN_DEFAULT_BASE;
	r->prefix = LAN_DEFAULT_PREFIX;
	r->port = LAN_DEFAULT_PORT;
}

int ki_lan_range_parse(const char *cidr, struct lan_range *r)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = cidr ? strchr(cidr, '/') : NULL;
	if (!slash || (size_t)(slash - cidr) >= sizeof addr)
		return -EINVAL;
	memcpy(addr, cidr, (size_t)(slash - cidr));
	addr[slash - cidr] = 0;
	struct in_addr in;
	if (inet_pton(AF_INET, addr, &in) != 1)
		return -EINVAL;
	const char *p = slash + 1;
	if (p[0] < '0' || p[0] > '9' || (p[1] && (p[1] < '0' || p[1] > '9' || p[2])))
		return -EINVAL;
	unsigned prefix = (unsigned)atoi(p);
	if (prefix < LAN_PREFIX_MIN || prefix > LAN_PREFIX_MAX)
		return -EINVAL;
	uint32_t base = ntohl(in.s_addr);
	uint32_t host_bits = prefix == 32 ? 0 : (1u << (32 - prefix)) - 1;
	if ((base >> 24) != 239 || (base & host_bits))
		return -EINVAL;
	r->base = base;
	r->prefix = prefix;
	return 0;
}

/* The first token's length (up to the first dot or the end). */
static size_t first_token(const char *name)
{
	const char *dot = strchr(name, '.');
	return dot ? (size_t)(dot - name) : strlen(name);
}

uint32_t ki_lan_group_of(const struct lan_range *r, const char *channel)
{
	uint32_t h = ki_crc32c(0, channel, first_token(channel));
	return r->base + h % lan_range_size(r);
}

int ki_lan_pattern_group(const struct lan_range *r, const char *pattern, uint32_t *group)
{
	size_t n = first_token(pattern);
	if (n == 1 && (pattern[0] == '*' || pattern[0] == '>'))
		return 0;
	*group = ki_lan_group_of(r, pattern);
	return 1;
}

int ki_lan_joins_init(struct lan_joins *j, const struct lan_range *r)
{
	memset(j, 0, sizeof *j);
	j->range = *r;
	j->refs = calloc(lan_range_size(r), sizeof *j->refs);
	return j->refs ? 0 : -ENOMEM;
}

void ki_lan_joins_free(struct lan_joins *j)
{
	free(j->refs);
	j->refs = NULL;
}

/* Add delta (+1 or -1) to the groups pattern needs; list those whose count
 * crossed zero. */
static size_t count(struct lan_joins *j, const char *pattern, int delta, uint32_t *change)
{
	uint32_t one, size = lan_range_size(&j->range);
	uint32_t from = 0, to = size;
	if (ki_lan_pattern_group(&j->range, pattern, &one)) {
		from = one - j->range.base;
		to = from + 1;
	}
	size_t n = 0;
	for (uint32_t i = from; i < to; i++) {
		if (delta > 0 && j->refs[i]++ == 0)
			change[n++] = j->range.base + i;
		else if (delta < 0 && j->refs[i] > 0 && --j->refs[i] == 0)
			change[n++] = j->range.base + i;
	}
	return n;
}

size_t ki_lan_joins_add(struct lan_joins *j, const char *pattern, uint32_t *change)
{
	return count(j, pattern, +1, change);
}

size_t ki_lan_joins_remove(struct lan_joins *j, const char *pattern, uint32_t *change)
{
	return count(j, pattern, -1, change);
}
