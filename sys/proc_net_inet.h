/* Internal (not API): a bounds-checked reader of /proc/net/tcp, tcp6, udp and
 * udp6, for the ops tools (kite ports, kite who). */
#ifndef KITE_PROC_NET_INET_H
#define KITE_PROC_NET_INET_H

#include <stddef.h>
#include <stdint.h>

struct inet_entry {
	int family;          /* AF_INET or AF_INET6, from the address width */
	uint8_t local[16];   /* network byte order; IPv4 uses the first 4 */
	uint8_t remote[16];
	uint16_t local_port; /* host byte order */
	uint16_t remote_port;
	unsigned state;      /* TCP_* numbering: 0x0A listen, 0x07 close */
	unsigned long uid;
	unsigned long inode;
	unsigned ifindex;    /* bound device or IPv6 scope (ss's "%dev"); 0 none
	                        (and always 0 from /proc/net, which lacks it) */
	int v6only;          /* IPv6: 1 IPV6_V6ONLY, 0 dual-stack; -1 unknown
	                        (IPv4, or /proc/net) */
};

#define INET_STATE_ESTABLISHED 0x01u
#define INET_STATE_CLOSE 0x07u /* an unconnected UDP socket */
#define INET_STATE_LISTEN 0x0Au

/* Parse one line (without its newline). 0 on success; -1 for the header line
 * or anything malformed (out is then unspecified). Never reads past len. */
int proc_net_inet_parse_line(const char *line, size_t len, struct inet_entry *out);

/* Call cb for each well-formed entry of path (e.g. "/proc/net/tcp6");
 * malformed lines are skipped and counted in *skipped if not NULL. A non-zero
 * return from cb stops the walk and is returned. -errno if path cannot be
 * read. */
int proc_net_inet_each(const char *path,
		       int (*cb)(const struct inet_entry *e, void *arg),
		       void *arg, unsigned *skipped);

#endif
