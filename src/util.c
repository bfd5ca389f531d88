/* Small internal helpers: clocks and pattern lists. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

uint64_t ki_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void ki_deadline_after_ms(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

uint64_t ki_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ki_monotonic_clock_id(void)
{
	/* Processes in different time namespaces (unshare -T) read
	 * CLOCK_MONOTONIC with different offsets: the namespace's inode and
	 * device name whose clock a stamp is on. */
	struct stat st;
	if (stat("/proc/self/ns/time", &st) < 0 || !st.st_ino)
		return 0;
	return (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev << 32);
}

int ki_strlist_find(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return 1;
	return 0;
}

int ki_strlist_add(char ***list, size_t *n, const char *s)
{
	if (ki_strlist_find(*list, *n, s))
		return 0;
	char **grown = realloc(*list, (*n + 1) * sizeof **list);
	if (!grown)
		return -ENOMEM;
	*list = grown;
	if (!(grown[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 1;
}

int ki_strlist_remove(char ***list, size_t *n, const char *s)
{
	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*list)[i], s))
			continue;
		free((*list)[i]);
		(*list)[i] = (*list)[--*n];
		return 1;
	}
	return 0;
}

void ki_strlist_free(char ***list, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*list)[i]);
	free(*list);
	*list = NULL;
	*n = 0;
}

int ki_strlist_any_match(char *const *list, size_t n, const char *channel)
{
	for (size_t i = 0; i < n; i++)
		if (kite_pattern_match(list[i], channel))
			return 1;
	return 0;
}
