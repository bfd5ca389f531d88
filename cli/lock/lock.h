/* kite lock: shared by lock.c (acquire, status) and lock_run.c (holder). */
#ifndef KITE_LOCK_H
#define KITE_LOCK_H

/* Run argv as a child while holding the listening lock socket lockfd;
 * forward TERM/INT/HUP; returns the exit code for kite (the child's status,
 * 128+N if killed by signal N, or EXIT_SYSTEM). */
int lock_run(int lockfd, char **argv);

#endif
