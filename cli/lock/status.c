/* kite lock --status: who holds a lock. The kernel names the process that
 * took it (SO_PEERCRED); the job that inherited the lock socket is found by
 * its fds, since the lock stays held while any of them lives, kite or not. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lock.h"
#include "sockets/who.h"

int lock_status(const struct lock_name *ln)
{
	struct ucred cr;
	int held = lock_holder(ln, &cr);
	if (held < 0)
		return fail(EXIT_SYSTEM, "lock", "asking @%s: %s", ln->abstract,
			    strerror(-held));
	if (!held) {
		printf("%s is free\n", ln->name);
		return EXIT_NO;
	}
	struct who_target t = {.proto = SL_UNIX, .abstract = 1};
	snprintf(t.path, sizeof t.path, "%s", ln->abstract);
	snprintf(t.label, sizeof t.label, "@%s", ln->abstract);
	struct sock_list l = {0};
	int rc = who_collect(&t, &l);
	int taker_there = 0;
	for (size_t p = 0; rc == 0 && p < l.nprocs; p++)
		taker_there |= l.procs[p].pid == cr.pid;
	/* Not among the holders: gone (its pid maybe reused since), unless
	 * the holders could not all be seen. */
	if (!cr.pid || taker_there || (rc == 0 && l.hidden && kill(cr.pid, 0) == 0) ||
	    (rc < 0 && (kill(cr.pid, 0) == 0 || errno == EPERM))) {
		lock_describe(stdout, ln, &cr);
	} else {
		char user[32];
		printf("%s is held by the job of pid %d (user %s), which has exited\n",
		       ln->name, (int)cr.pid, user_name(cr.uid, user, sizeof user));
	}
	for (size_t p = 0; rc == 0 && p < l.nprocs; p++) {
		char cmd[512], user[32];
		if (l.procs[p].pid == cr.pid)
			continue;
		lock_cmdline(l.procs[p].pid, cmd, sizeof cmd);
		printf("job pid %d (user %s): %s\n", (int)l.procs[p].pid,
		       user_name(l.procs[p].uid, user, sizeof user), cmd);
	}
	if (rc == 0 && l.hidden)
		printf("(%u processes could not be inspected: %s)\n", l.hidden,
		       sock_hidden_why());
	sock_list_free(&l);
	return EXIT_DONE;
}
