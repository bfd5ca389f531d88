/* The sockets of this network namespace and the processes holding them:
 * shared by kite ports and kite who. */
#ifndef KITE_SOCKLIST_H
#define KITE_SOCKLIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { SL_TCP = 1, SL_UDP = 2, SL_UNIX = 4, SL_ALL = 7 };

struct sock_row {
	int proto;           /* SL_TCP, SL_UDP or SL_UNIX */
	int family;          /* AF_INET, AF_INET6 or AF_UNIX */
	unsigned type;       /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	unsigned state;      /* as /proc/net shows it (TCP_* or SS_*) */
	int listening;       /* a server socket: listen(), or a bound datagram one */
	uint8_t addr[16];    /* inet: network byte order */
	uint16_t port;       /* inet: host byte order */
	long uid;            /* inet: the socket's owner; -1 unknown (unix) */
	unsigned ifindex;    /* inet: bound device or IPv6 scope; 0 none */
	int v6only;          /* IPv6: 1 v6-only, 0 dual-stack, -1 unknown */
	unsigned long inode;
	int abstract;        /* unix: '@' name */
	size_t path_len;     /* unix: bytes in path; 0 unnamed */
	char path[109];
	int owner;           /* head of this row's links (sock_list.links), -1 */
};

struct sock_proc {
	pid_t pid;
	uid_t uid;           /* effective uid (the owner of /proc/PID) */
	char comm[32];
};

struct sock_link {
	int proc;            /* index into procs */
	int next;            /* next link of the same row, -1 */
};

struct sock_list {
	struct sock_row *rows;
	size_t n, cap;
	struct sock_proc *procs;
	size_t nprocs, procs_cap;
	struct sock_link *links;
	size_t nlinks, links_cap;
	unsigned hidden;     /* processes whose fds we were not allowed to read */
	unsigned skipped;    /* malformed /proc/net lines */
};

/* keep(row, arg) != 0 keeps a row. */
typedef int (*sock_filter)(const struct sock_row *r, void *arg);

/* Read the sockets of protos (SL_* bits) into l, keeping the rows keep
 * accepts: TCP listeners, every UDP socket, every Unix socket. 0 or
 * -errno. */
int sock_list_collect(struct sock_list *l, unsigned protos, sock_filter keep,
		      void *arg);

/* sock_list_collect and sock_list_sort, then find the processes holding
 * each row's socket by one walk of /proc/[pid]/fd (on a second thread while
 * /proc/net is read). Rows nobody visible holds keep owner -1; l->hidden
 * says if that may be for lack of permission. 0 or -errno. */
int sock_list_load(struct sock_list *l, unsigned protos, sock_filter keep,
		   void *arg);

/* 1 if process pid has an fd on one of the n socket inodes, 0 if not (or it
 * is gone), -errno if its fds cannot be read. */
int proc_holds_socket(pid_t pid, const unsigned long *inodes, size_t n);

/* Order rows: tcp, udp, unix; then by port or name. */
void sock_list_sort(struct sock_list *l);

void sock_list_free(struct sock_list *l);

/* "tcp", "udp", "u_str", "u_dgr", "u_seq" (the names ss uses). */
const char *sock_netid(const struct sock_row *r);

/* The local address as ss prints it: "127.0.0.1:8080", "[::1]:53",
 * "0.0.0.0%lo:53" (bound to a device), "[fe80::1]%eth0:80" (scope), "*:80"
 * (IPv6 wildcard taking IPv4 too: dual-stack), "/run/x.sock", "@name";
 * control bytes become '?'. */
void sock_format_local(const struct sock_row *r, char *buf, size_t size);

/* The name of the device a row is bound to (or scoped to), in buf; NULL if
 * none. A device gone meanwhile is shown by number. */
const char *sock_device(const struct sock_row *r, char *buf, size_t size);

/* The user name of uid, or its number. */
const char *user_name(uid_t uid, char *buf, size_t size);

/* Why processes were hidden from us, as a phrase for "...: PHRASE": root
 * lacking CAP_SYS_PTRACE (which reading another user's /proc/PID/fd needs),
 * or a user looking at other users' processes. */
const char *sock_hidden_why(void);

/* The table kite ports and kite who print; a note on stderr if some
 * processes could not be inspected. */
void sock_print_table(const struct sock_list *l, const char *cmd);

/* {"sockets":[...],"hidden_processes":N,"skipped_lines":N} */
void sock_print_json(const struct sock_list *l);

#endif
