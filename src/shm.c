#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kite.h"
#include "shm.h"

int ki_shm_create(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int ki_shm_seal(int fd, int seals)
{
	return fcntl(fd, F_ADD_SEALS, seals) < 0 ? -errno : 0;
}

int ki_shm_check(int fd, int seals, size_t size, int exact)
{
	int have = fcntl(fd, F_GET_SEALS);
	if (have < 0)
		return -EBADMSG; /* not a memfd */
	if ((seals & F_SEAL_FUTURE_WRITE) && (have & F_SEAL_WRITE))
		have |= F_SEAL_FUTURE_WRITE;
	if ((have & seals) != seals)
		return -EBADMSG;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0)
		return -EBADMSG;
	if (exact ? (size_t)st.st_size != size : (size_t)st.st_size < size)
		return -EBADMSG;
	return 0;
}

void *ki_shm_map(int fd, size_t size, int writable)
{
	void *p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
		       MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

int ki_shm_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	off_t off = 0;
	while (len) {
		ssize_t w = pwrite(fd, p, len > (1u << 30) ? (1u << 30) : len, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		off += w;
		len -= (size_t)w;
	}
	return 0;
}
