/* kite lock: shared by lock.c (options, acquiring), name.c (the lock's
 * address and its holder), status.c (--status) and run.c (the holder). */
#ifndef KITE_LOCK_H
#define KITE_LOCK_H

#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The lock of NAME for this effective uid: the abstract socket
 * @kite-lock/<euid>/NAME. The uid keeps users' names apart (two users'
 * "backup" locks are two locks); the holder's SO_PEERCRED tells a squatter
 * (another uid binding our name first) from a real holder. */
struct lock_name {
	const char *name;            /* as given */
	char abstract[108];          /* "kite-lock/<uid>/NAME", shown with '@' */
	struct sockaddr_un sa;
	socklen_t len;
};

/* Fill ln for name; -1 if name is empty, too long, or has bytes <= ' '. */
int lock_name_init(struct lock_name *ln, const char *name);

/* The longest NAME for this uid. */
size_t lock_name_max(void);

/* A socket on the lock's address: bound and listening (take = 1: taking
 * the lock; -EADDRINUSE if held) or connected to the holder (take = 0;
 * -ECONNREFUSED if none). Close-on-exec and non-blocking. fd or -errno. */
int lock_socket(const struct lock_name *ln, int take);

/* The holder as the kernel reports it (SO_PEERCRED: the process that
 * listened, and its effective uid then). 1 held, 0 free, -errno. */
int lock_holder(const struct lock_name *ln, struct ucred *cr);

/* 1 if a holder of this uid is not ours to respect: neither our euid nor
 * root. */
int lock_squatter(const struct ucred *cr);

/* "NAME is held by pid P (user U): CMDLINE" or, for a squatter, why it is
 * not a lock of ours; one line on to. */
void lock_describe(FILE *to, const struct lock_name *ln, const struct ucred *cr);

/* /proc/PID/cmdline with spaces between arguments; "?" if unreadable. */
void lock_cmdline(pid_t pid, char *buf, size_t size);

/* kite lock --status: the holder and every process of its job that holds
 * the lock. 0 held, 1 free, 111 error. */
int lock_status(const struct lock_name *ln);

/* Run argv as a child while holding the listening lock socket lockfd. The
 * child inherits lockfd (as flock(1)'s command inherits the locked file), so
 * the lock is held until every process of the job has exited or closed it,
 * even if kite dies first. TERM/INT/HUP are forwarded to the child; returns
 * the exit code for kite (the child's status, 128+N if killed by signal N,
 * or EXIT_SYSTEM). */
int lock_run(int lockfd, char **argv);

#endif
