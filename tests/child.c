#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "child.h"

/* Children not yet reaped, so a failed test can kill what it left. */
#define MAX_CHILDREN 64
static pid_t children[MAX_CHILDREN];

static void forget(pid_t pid)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

pid_t child_start(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* A crash ends the child: the runner's handlers (cmocka's catch
		 * SIGSEGV and go on with the next test) are the parent's. */
		static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
		for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
			signal(crashes[i], SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg));
	}
	for (int i = 0; pid > 0 && i < MAX_CHILDREN; i++)
		if (!children[i]) {
			children[i] = pid;
			break;
		}
	return pid;
}

int flag_wait(_Atomic int *flag, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	while (!atomic_load(flag) && mono_ms() < deadline)
		nap_us(1000);
	return atomic_load(flag) != 0;
}

pid_t child_start_ready(int (*fn)(void *), void *arg, _Atomic int *ready, int timeout_ms)
{
	pid_t pid = child_start(fn, arg);
	if (pid > 0 && !flag_wait(ready, timeout_ms)) {
		child_kill(pid);
		return -1;
	}
	return pid;
}

void child_kill_all(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i])
			child_kill(children[i]);
}

int child_wait(pid_t pid, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			forget(pid);
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			return 128 + WTERMSIG(status);
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (mono_ms() >= deadline) {
			fprintf(stderr, "# child %ld outlived %d ms: killed\n", (long)pid,
				timeout_ms);
			child_kill(pid);
			return -1;
		}
		nap_us(2000);
	}
}

int child_ended(pid_t pid, int *status)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, WNOHANG)) < 0 && errno == EINTR)
		;
	if (r != pid)
		return 0;
	forget(pid);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 1;
}

void child_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	forget(pid);
}

int wait_stopped(pid_t pid, int timeout_ms)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	while (mono_ms() < deadline) {
		FILE *f = fopen(path, "r");
		if (!f)
			return 0;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		const char *p = strrchr(buf, ')');
		if (p && (p[2] == 'T' || p[2] == 't'))
			return 1;
		nap_us(1000);
	}
	return 0;
}

void *shared_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void shared_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

void pipe_make(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		abort();
}

void pipe_send(int fd, char c)
{
	while (write(fd, &c, 1) < 0 && errno == EINTR)
		;
}

int pipe_wait(int fd, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		unsigned char c;
		ssize_t n = read(fd, &c, 1);
		if (n == 1)
			return c;
		if (n < 0 && errno == EINTR)
			continue;
		return -1;
	}
}

void pipe_close(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void nap_us(unsigned us)
{
	struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

int fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}
