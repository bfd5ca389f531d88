/* kite who: the target it looks for, shared by who.c and who_kill.c. */
#ifndef KITE_WHO_H
#define KITE_WHO_H

#include <limits.h>
#include <stdint.h>

#include "socklist.h"

struct who_target {
	int proto;            /* SL_TCP, SL_UDP or SL_UNIX */
	uint16_t port;        /* inet */
	int abstract;         /* unix: '@name' */
	char path[PATH_MAX];  /* unix: as given */
	char real[PATH_MAX];  /* unix: realpath of a file path, or "" */
	char label[PATH_MAX + 16]; /* "tcp port 8080", "@name", "/run/x" */
};

/* A sock_filter: 1 if the row is one of target's (arg) sockets. */
int who_matches(const struct sock_row *r, void *arg);

/* The sockets that hold target, owners found. 0 or -errno. */
int who_collect(const struct who_target *t, struct sock_list *l);

/* Signal the holders in l (sig first, KILL after timeout_ms), wait until
 * the target is free; the exit code for kite who. */
int who_kill(const struct who_target *t, struct sock_list *l, int sig,
	     int64_t timeout_ms);

#endif
