/* fork(): a child inherits a copy of every handle, sharing its sockets,
 * rings and epoll set with the parent but not its control thread. Using
 * that copy would write the parent's sequence numbers into the parent's
 * rings; closing it the usual way would stop the parent's thread. So a
 * child's copy is recognised (a counter bumped in every child) and may only
 * be released. */
#include <pthread.h>

#include "internal.h"

_Atomic unsigned ki_fork_gen;

static void in_child(void)
{
	atomic_fetch_add_explicit(&ki_fork_gen, 1, memory_order_relaxed);
}

static void watch_once(void)
{
	pthread_atfork(NULL, NULL, in_child);
}

void ki_fork_watch(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, watch_once);
}
