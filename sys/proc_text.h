/* Internal (not API): bounds-checked parsers of small /proc texts the ops
 * tools read: fd links, /proc/net/dev lines, two-number sysctls. */
#ifndef KITE_PROC_TEXT_H
#define KITE_PROC_TEXT_H

#include <stddef.h>

/* The inode of a /proc/PID/fd link text "socket:[12345]" (len bytes, not
 * NUL-terminated); 0 and *inode set, or -1 if it is not exactly that. */
int proc_fd_socket_inode(const char *link, size_t len, unsigned long *inode);

#define PROC_IFNAME_MAX 15 /* IFNAMSIZ - 1 */

/* The interface name of a /proc/net/dev line ("  eth0: 123 ..."): 0 and
 * name (NUL-terminated) set, or -1 for the header lines or a bad name. */
int proc_net_dev_name(const char *line, size_t len, char name[PROC_IFNAME_MAX + 1]);

/* Two whole decimal numbers (each may be negative) separated by blanks and
 * nothing else but a final newline, as net.ipv4.ping_group_range shows
 * ("1\t0"); 0 or -1. */
int proc_two_numbers(const char *text, size_t len, long *a, long *b);

#endif
