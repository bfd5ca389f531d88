/* Internal (not API): a bounds-checked reader of /proc/net/route (the IPv4
 * routing table of this network namespace), for kite doctor. */
#ifndef KITE_PROC_NET_ROUTE_H
#define KITE_PROC_NET_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define ROUTE_IFACE_MAX 15 /* IFNAMSIZ - 1 */

struct route_entry {
	char iface[ROUTE_IFACE_MAX + 1];
	uint32_t dest;    /* network byte order */
	uint32_t gateway; /* network byte order */
	uint32_t mask;    /* network byte order */
	unsigned flags;   /* RTF_UP 0x1, RTF_GATEWAY 0x2 */
	unsigned long metric;
};

/* Parse one line (without its newline). 0 on success; -1 for the header
 * line or anything malformed. Never reads past len. */
int proc_net_route_parse_line(const char *line, size_t len, struct route_entry *out);

/* The up route that an IPv4 address (network byte order) would take: the
 * longest matching mask, lowest metric. 1 found (*out set), 0 none, -errno
 * if /proc/net/route cannot be read. Malformed lines count in *skipped. */
int proc_net_route_lookup(uint32_t addr, struct route_entry *out, unsigned *skipped);

#endif
