/* Which processes hold which sockets: one walk of /proc/[pid]/fd, reading
 * each link ("socket:[INODE]"), then each inode looked up in a hash of the
 * rows we want. Processes whose fds we may not read are counted, so that a
 * socket without a visible owner is shown as hidden, never dropped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "proc_text.h"
#include "socklist.h"

static int numeric(const char *s, pid_t *pid)
{
	long v = 0;
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 0x3fffffff)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*pid = (pid_t)v;
	return v > 0;
}

/* Call fn(inode, arg) for each socket fd of process pid (its /proc dir is
 * PID under procfd); a non-zero return stops. -errno if the fds cannot be
 * listed or read (EACCES: not ours to see; ENOENT: gone). Listing and
 * reading are checked apart: root without CAP_SYS_PTRACE (a container's
 * default) may list another user's /proc/PID/fd but not read its links, and
 * such a process must count as hidden, not as holding nothing. */
static int each_socket_fd(int procfd, pid_t pid,
			  int (*fn)(unsigned long inode, void *arg), void *arg)
{
	char path[32];
	snprintf(path, sizeof path, "%d/fd", (int)pid);
	int dfd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = -errno;
		close(dfd);
		return e;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char link[64];
		ssize_t n = readlinkat(dfd, de->d_name, link, sizeof link);
		unsigned long ino;
		if (n < 0 && (errno == EACCES || errno == EPERM)) {
			rc = -errno; /* the same for every fd of this process */
			break;
		}
		if (n > 0 && proc_fd_socket_inode(link, (size_t)n, &ino) == 0 &&
		    (rc = fn(ino, arg)) != 0)
			break;
	}
	closedir(d);
	return rc;
}

struct index {
	unsigned long *keys; /* inode, 0 = empty */
	int *rows;
	size_t mask;
};

static size_t slot(const struct index *ix, unsigned long inode)
{
	size_t h = (size_t)(inode * 0x9e3779b97f4a7c15ull);
	h ^= h >> 29;
	h &= ix->mask;
	while (ix->keys[h] && ix->keys[h] != inode)
		h = (h + 1) & ix->mask;
	return h;
}

struct walk {
	struct sock_list *l;
	struct index ix;
	int procfd;
	pid_t pid;
	int proc;    /* index in l->procs of pid, -1 until it holds a row */
	int failed;  /* -ENOMEM */
};

static int add_proc(struct walk *w)
{
	struct sock_list *l = w->l;
	if (grow_array(&l->procs, &l->procs_cap, l->nprocs, sizeof *l->procs, 32))
		return -ENOMEM;
	struct sock_proc *p = &l->procs[l->nprocs];
	memset(p, 0, sizeof *p);
	p->pid = w->pid;
	char path[32];
	struct stat st;
	snprintf(path, sizeof path, "%d", (int)w->pid);
	p->uid = fstatat(w->procfd, path, &st, 0) == 0 ? st.st_uid : (uid_t)-1;
	snprintf(path, sizeof path, "%d/comm", (int)w->pid);
	int fd = openat(w->procfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, p->comm, sizeof p->comm - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0 && p->comm[n - 1] == '\n')
		n--;
	p->comm[n > 0 ? n : 0] = 0;
	/* A process names itself (PR_SET_NAME): no control bytes to a terminal. */
	for (char *c = p->comm; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (n <= 0)
		snprintf(p->comm, sizeof p->comm, "?");
	w->proc = (int)l->nprocs++;
	return 0;
}

static int link_fd(unsigned long inode, void *arg)
{
	struct walk *w = arg;
	struct sock_list *l = w->l;
	size_t h = slot(&w->ix, inode);
	if (!w->ix.keys[h])
		return 0;
	struct sock_row *r = &l->rows[w->ix.rows[h]];
	if (w->proc < 0 && add_proc(w))
		return w->failed = -ENOMEM;
	/* Links of one process arrive together: a repeat is at the head. */
	if (r->owner >= 0 && l->links[r->owner].proc == w->proc)
		return 0;
	if (grow_array(&l->links, &l->links_cap, l->nlinks, sizeof *l->links, 64))
		return w->failed = -ENOMEM;
	l->links[l->nlinks] = (struct sock_link){w->proc, r->owner};
	r->owner = (int)l->nlinks++;
	return 0;
}

/* Every socket fd of every process: (inode, pid) pairs, grouped by pid.
 * Runs on its own thread while the main one reads /proc/net, since the two
 * walks take about as long as each other and share nothing. */
struct fd_pair {
	unsigned long inode;
	pid_t pid;
};

struct fd_scan {
	struct fd_pair *pairs;
	size_t n, cap;
	pid_t pid;
	unsigned hidden;
	int err;
};

static int record_fd(unsigned long inode, void *arg)
{
	struct fd_scan *sc = arg;
	if (grow_array(&sc->pairs, &sc->cap, sc->n, sizeof *sc->pairs, 1024))
		return sc->err = -ENOMEM;
	sc->pairs[sc->n++] = (struct fd_pair){inode, sc->pid};
	return 0;
}

static void *scan_fds(void *arg)
{
	struct fd_scan *sc = arg;
	DIR *d = opendir("/proc");
	if (!d) {
		sc->err = -errno;
		return NULL;
	}
	int procfd = dirfd(d);
	struct dirent *de;
	while (!sc->err && (de = readdir(d)) != NULL) {
		if (!numeric(de->d_name, &sc->pid))
			continue;
		int e = each_socket_fd(procfd, sc->pid, record_fd, sc);
		if (e == -EACCES || e == -EPERM)
			sc->hidden++;
	}
	closedir(d);
	return NULL;
}

/* Link the rows of l to the processes of sc's pairs. */
static int link_pairs(struct sock_list *l, const struct fd_scan *sc)
{
	struct walk w = {.l = l, .pid = -1};
	size_t size = 16;
	int rc = 0;
	while (size < l->n * 2 + 1)
		size *= 2;
	w.ix.mask = size - 1;
	w.ix.keys = calloc(size, sizeof *w.ix.keys);
	w.ix.rows = calloc(size, sizeof *w.ix.rows);
	w.procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!w.ix.keys || !w.ix.rows || w.procfd < 0) {
		rc = w.procfd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (!l->rows[i].inode) /* inode 0: a socket being torn down */
			continue;
		size_t h = slot(&w.ix, l->rows[i].inode);
		w.ix.keys[h] = l->rows[i].inode;
		w.ix.rows[h] = (int)i;
	}
	for (size_t i = 0; i < sc->n && !w.failed; i++) {
		if (sc->pairs[i].pid != w.pid) {
			w.pid = sc->pairs[i].pid;
			w.proc = -1;
		}
		link_fd(sc->pairs[i].inode, &w);
	}
	rc = w.failed;
	l->hidden += sc->hidden;
out:
	if (w.procfd >= 0)
		close(w.procfd);
	free(w.ix.keys);
	free(w.ix.rows);
	return rc;
}

int sock_list_load(struct sock_list *l, unsigned protos, sock_filter keep, void *arg)
{
	struct fd_scan sc = {0};
	pthread_t th;
	int threaded = pthread_create(&th, NULL, scan_fds, &sc) == 0;
	int rc = sock_list_collect(l, protos, keep, arg);
	if (threaded)
		pthread_join(th, NULL);
	else
		scan_fds(&sc);
	if (rc == 0)
		rc = sc.err;
	if (rc == 0) {
		sock_list_sort(l);
		rc = link_pairs(l, &sc);
	}
	free(sc.pairs);
	return rc;
}

struct holds {
	const unsigned long *inodes;
	size_t n;
};

static int holds_fd(unsigned long inode, void *arg)
{
	struct holds *h = arg;
	for (size_t i = 0; i < h->n; i++)
		if (h->inodes[i] == inode)
			return 1;
	return 0;
}

int proc_holds_socket(pid_t pid, const unsigned long *inodes, size_t n)
{
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return -errno;
	struct holds h = {inodes, n};
	int rc = each_socket_fd(procfd, pid, holds_fd, &h);
	close(procfd);
	return rc == -ENOENT ? 0 : rc;
}
