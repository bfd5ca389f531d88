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

static _Atomic int global_state; /* 0 unknown, 1 usable, -1 not available */
static _Atomic int private_state;

static long membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

/* Query once, register once; remember the answer in *state. */
static int setup(_Atomic int *state, int cmd, int register_cmd)
{
	int s = atomic_load(state);
	if (s)
		return s > 0;
	long cmds = membarrier(MEMBARRIER_CMD_QUERY);
	s = cmds > 0 && (cmds & cmd) && membarrier(register_cmd) == 0 ? 1 : -1;
	atomic_store(state, s);
	return s > 0;
}

int ki_barrier_setup(void)
{
	return setup(&global_state, MEMBARRIER_CMD_GLOBAL_EXPEDITED,
		     MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
}

int ki_barrier_heavy(void)
{
	return atomic_load(&global_state) > 0 &&
	       membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

/* Within this process: the control thread uses it to take the handle's
 * state from the application's thread without that thread paying a locked
 * instruction per call (see ki_app_enter() in handle.c). */
int ki_barrier_private_setup(void)
{
	return setup(&private_state, MEMBARRIER_CMD_PRIVATE_EXPEDITED,
		     MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
}

void ki_barrier_private(void)
{
	membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}
