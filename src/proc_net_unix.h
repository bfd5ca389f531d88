/* Internal (not API): a bounds-checked reader of /proc/net/unix, shared by
 * local-channel discovery and the ops tools. */
#ifndef KITE_PROC_NET_UNIX_H
#define KITE_PROC_NET_UNIX_H

#include <stddef.h>

#define UNIX_ENTRY_PATH_MAX 108 /* sizeof sun_path */

struct unix_entry {
	unsigned long inode;
	unsigned flags;      /* __SO_ACCEPTCON (0x10000) marks a listener */
	unsigned type;       /* SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
	unsigned state;      /* SS_UNCONNECTED 1, SS_CONNECTING 2, SS_CONNECTED 3 */
	int abstract;        /* 1: path[0] was '@' (the kernel's mark) */
	size_t path_len;     /* bytes in path, without the '@'; 0 for unnamed */
	char path[UNIX_ENTRY_PATH_MAX + 1]; /* NUL-terminated; the kernel shows
	                                       NULs inside abstract names as '@' */
};

#define UNIX_FLAG_LISTENING 0x10000u

/* Parse one line (without its newline). 0 on success; -1 for the header line
 * or anything malformed (out is then unspecified). Never reads past len. */
int ki_proc_net_unix_parse_line(const char *line, size_t len, struct unix_entry *out);

/* Call cb for each well-formed entry of /proc/net/unix (malformed lines are
 * skipped and counted in *skipped if not NULL). A non-zero return from cb
 * stops the walk and is returned. -errno if the file cannot be read. */
int ki_proc_net_unix_each(int (*cb)(const struct unix_entry *e, void *arg),
		       void *arg, unsigned *skipped);

#endif
