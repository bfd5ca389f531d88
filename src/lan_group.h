/* Channel -> multicast group: a deterministic mapping (docs/PROTOCOL.md,
 * "Groups"), so two hosts that never talked agree without configuration.
 * A channel's group is chosen by its first token alone, so a pattern whose
 * first token is literal needs one group and a pattern that starts with a
 * wildcard needs every group of the range; receivers then filter each
 * frame by its channel name exactly. */
#ifndef KITE_LAN_GROUP_H
#define KITE_LAN_GROUP_H

#include <stddef.h>
#include <stdint.h>

/* 239.255.0.0/16 is the IPv4 organisation-local scope (RFC 2365): routers
 * at the site's edge do not forward it, and TTL 1 keeps it on the link. */
#define LAN_DEFAULT_BASE 0xEFFF4B00u /* 239.255.75.0 */
#define LAN_DEFAULT_PREFIX 28        /* 16 groups */
#define LAN_DEFAULT_PORT 7475
/* A range holds 1 to 256 groups: a wildcard-first pattern joins them all,
 * and Linux allows net.ipv4.igmp_max_memberships (default 20) per socket. */
#define LAN_PREFIX_MIN 24
#define LAN_PREFIX_MAX 32

struct lan_range {
	uint32_t base;   /* first group, host byte order */
	unsigned prefix; /* LAN_PREFIX_MIN..LAN_PREFIX_MAX */
	uint16_t port;   /* every group's UDP port */
};

/* The default range, 239.255.75.0/28 port 7475. */
void ki_lan_range_default(struct lan_range *r);

/* Parse "A.B.C.D/N" (N 24..32; host bits must be zero) within
 * 239.0.0.0/8, the administratively scoped block. 0 or -EINVAL. */
int ki_lan_range_parse(const char *cidr, struct lan_range *r);

static inline uint32_t lan_range_size(const struct lan_range *r)
{
	return 1u << (32 - r->prefix);
}

/* The group of a channel name (host byte order): base + CRC32C(first
 * token) mod size. */
uint32_t ki_lan_group_of(const struct lan_range *r, const char *channel);

/* The group a valid pattern needs: 1 and *group when its first token is
 * literal, 0 when it starts with a wildcard (every group of the range). */
int ki_lan_pattern_group(const struct lan_range *r, const char *pattern, uint32_t *group);

/* Which groups a handle's patterns need, counted so that a group is joined
 * when its first pattern comes and left when its last one goes. */
struct lan_joins {
	struct lan_range range;
	uint32_t *refs; /* per group of the range: patterns that need it */
};

int ki_lan_joins_init(struct lan_joins *j, const struct lan_range *r);
void ki_lan_joins_free(struct lan_joins *j);
/* Count a pattern in (add) or out (remove); change[] (room for the range
 * size) gets the groups to join (add) or leave (remove) now; returns how
 * many. */
size_t ki_lan_joins_add(struct lan_joins *j, const char *pattern, uint32_t *change);
size_t ki_lan_joins_remove(struct lan_joins *j, const char *pattern, uint32_t *change);

#endif
