/* fork(): a child inherits a copy of every handle, sharing its sockets,
 * rings and epoll set with the parent but not its control thread. Using
 * that copy would write the parent's sequence numbers into the parent's
 * rings; closing it the usual way would stop the parent's thread. So a
 * child's copy is recognised (a counter bumped in every child) and may only
 * be released.
 *
 * Around the fork itself, every live handle's lock is held, so that no
 * control thread is inside the allocator (or halfway through changing a
 * handle) at the instant the child's copy of memory is taken: a child of a
 * process whose allocator does not guard fork (ASan's, some others) would
 * otherwise find its allocator locked for good. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

_Atomic unsigned ki_fork_gen;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static kite **registry;
static size_t registered, registry_cap;

static void before_fork(void)
{
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < registered; i++)
		pthread_mutex_lock(&registry[i]->lock);
}

static void after_fork_parent(void)
{
	for (size_t i = 0; i < registered; i++)
		pthread_mutex_unlock(&registry[i]->lock);
	pthread_mutex_unlock(&registry_lock);
}

static void after_fork_child(void)
{
	atomic_fetch_add_explicit(&ki_fork_gen, 1, memory_order_relaxed);
	/* The parent's handles are copies here, never used again but to be
	 * released: forget them (their locks stay taken), and start afresh. */
	registered = 0;
	pthread_mutex_init(&registry_lock, NULL);
}

static void watch_once(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

void ki_fork_watch(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, watch_once);
}

int ki_fork_register(kite *k)
{
	pthread_mutex_lock(&registry_lock);
	if (registered == registry_cap) {
		size_t cap = registry_cap ? registry_cap * 2 : 8;
		kite **t = realloc(registry, cap * sizeof *t);
		if (!t) {
			pthread_mutex_unlock(&registry_lock);
			return -ENOMEM;
		}
		registry = t;
		registry_cap = cap;
	}
	registry[registered++] = k;
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

void ki_fork_unregister(kite *k)
{
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < registered; i++)
		if (registry[i] == k) {
			registry[i] = registry[--registered];
			break;
		}
	pthread_mutex_unlock(&registry_lock);
}
