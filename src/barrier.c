/* The asymmetric fence behind cheap wake-ups. A publisher must not miss a
 * subscriber that is going to sleep: that needs a full barrier between the
 * publisher's slot store and its read of the subscriber's `sleeping` flag.
 * Paying it per message costs more than the rest of a publish (the store
 * buffer drains), so publishers that registered for MEMBARRIER_CMD_GLOBAL_
 * EXPEDITED skip it, and a subscriber about to sleep forces that barrier on
 * every registered process with one membarrier() call instead. Where the
 * kernel or a seccomp filter says no, publishers fence every message and
 * subscribers re-check once shortly after they fall asleep. */
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int state; /* 0 unknown, 1 usable, -1 not available */
static _Atomic int private_state;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

int barrier_setup(void)
{
	int s = atomic_load(&state);
	if (s)
		return s > 0;
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	s = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
			    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
		    ? 1
		    : -1;
	atomic_store(&state, s);
	return s > 0;
}

int barrier_heavy(void)
{
	return atomic_load(&state) > 0 &&
	       membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

/* Within this process: the control thread uses it to take the handle's
 * state from the application's thread without that thread paying a locked
 * instruction per call (see app_enter() in handle.c). */
int barrier_private_setup(void)
{
	int s = atomic_load(&private_state);
	if (s)
		return s > 0;
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	s = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
			    membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0
		    ? 1
		    : -1;
	atomic_store(&private_state, s);
	return s > 0;
}

void barrier_private(void)
{
	membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}
