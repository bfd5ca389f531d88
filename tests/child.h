/* Multi-process test helpers: children that report through exit codes,
 * pipes, and counters in shared memory; waits that always have a deadline. */
#ifndef KITE_TEST_CHILD_H
#define KITE_TEST_CHILD_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* In a child, cmocka's assertions must not be used (they would unwind into
 * the parent's copy of the runner): say what failed and exit non-zero. */
#define CHILD_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "# child %ld, %s:%d: %s: ", (long)getpid(), \
				__FILE__, __LINE__, #cond);                    \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			_exit(3);                                              \
		}                                                              \
	} while (0)

/* Fork; the child runs fn(arg) and _exits with its return value. The child
 * is killed if the test process dies. */
pid_t child_start(int (*fn)(void *), void *arg);

/* 1 once *flag (shared memory a child sets) is non-zero, 0 if it is not
 * within timeout_ms. */
int flag_wait(_Atomic int *flag, int timeout_ms);

/* child_start(), then wait up to timeout_ms for the child to set *ready
 * (say, once it has subscribed): its pid; -1 if it never did (it is then
 * killed and reaped). */
pid_t child_start_ready(int (*fn)(void *), void *arg, _Atomic int *ready, int timeout_ms);

/* Wait for a child; after timeout_ms it is killed. Returns its exit status,
 * 128 + signal if a signal ended it, or -1 if it had to be killed. */
int child_wait(pid_t pid, int timeout_ms);

/* Without waiting: 1 if the child has ended (reaped; *status as
 * child_wait returns it), 0 while it runs. */
int child_ended(pid_t pid, int *status);

/* Kill (SIGKILL) and reap a child, ignoring errors; pid <= 0 is a no-op. */
void child_kill(pid_t pid);

/* Kill and reap every child started and not yet reaped (a test that
 * failed half-way calls this in its teardown). */
void child_kill_all(void);

/* 1 once the process is stopped (SIGSTOP is asynchronous), 0 if it is
 * not within timeout_ms. */
int wait_stopped(pid_t pid, int timeout_ms);

/* Shared anonymous memory, zeroed, visible to children forked later. */
void *shared_alloc(size_t bytes);
/* setup() and teardown() for cmocka that give a test file its shared
 * struct *ptr (zeroed, seen by its children) and, also after a failure,
 * kill every child it started and release the struct. */
#define CHILD_SHARED_FIXTURES(ptr)                                          \
	static int setup(void **state)                                      \
	{                                                                   \
		(void)state;                                                \
		return (ptr = shared_alloc(sizeof *ptr)) ? 0 : -1;          \
	}                                                                   \
	static int teardown(void **state)                                   \
	{                                                                   \
		(void)state;                                                \
		child_kill_all();                                           \
		shared_free(ptr, sizeof *ptr);                              \
		return 0;                                                   \
	}
void shared_free(void *p, size_t bytes);

/* One-byte signals over a pipe. pipe_wait returns the byte, or -1 on
 * timeout or when the writer closed. */
void pipe_make(int fds[2]);
void pipe_send(int fd, char c);
int pipe_wait(int fd, int timeout_ms);

/* Close both ends of a pipe. */
void pipe_close(int fds[2]);

/* A seeded xorshift generator: reproducible random tests. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/* Milliseconds on the monotonic clock. */
uint64_t mono_ms(void);

/* Sleep briefly while polling for a condition (never as synchronisation). */
void nap_us(unsigned us);

/* Open descriptors of a process (by /proc/PID/fd). */
int fd_count(pid_t pid);

#endif
