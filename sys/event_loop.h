/* The start of a one-thread daemon's event loop, shared by kite statsd and
 * kite serve: one epoll set with a signalfd in it, so signals arrive as
 * events and no handler ever runs (no races with the loop's state).
 * Each epoll entry carries a 64-bit word: a tag saying what the fd is in
 * the high half, an index in the low half (EVENT_DATA). */
#ifndef KITE_SYS_EVENT_LOOP_H
#define KITE_SYS_EVENT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#define EVENT_DATA(tag, idx) (((uint64_t)(tag) << 32) | (uint32_t)(idx))
#define EVENT_TAG(data) ((uint32_t)((data) >> 32))
#define EVENT_IDX(data) ((uint32_t)(data))

/* Take over signals[0..n): they are blocked and read from a signalfd, and
 * their dispositions go back to the default, so a program the daemon
 * starts does not inherit one ignored (nohup leaves SIGHUP ignored, a
 * shell's background job SIGINT; an ignored disposition survives exec).
 * SIGPIPE is ignored: a closed peer or stderr must not kill the daemon.
 * Then an epoll set with the signalfd in it under sig_data. On success
 * *epfd and *sigfd are set (both close-on-exec, the signalfd non-blocking)
 * and 0 is returned; on failure -errno and nothing is left open. */
int event_loop_open(const int *signals, size_t n, uint64_t sig_data, int *epfd,
		    int *sigfd);

/* Add fd to the set, or change what it is watched for; 0 or -errno. */
int event_watch(int epfd, int fd, uint32_t events, uint64_t data);
int event_rewatch(int epfd, int fd, uint32_t events, uint64_t data);

#endif
