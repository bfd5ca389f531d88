/* Internal: sealed memfds — create them for rings, waiter pages and large
 * messages, and validate the ones peers send before mapping them. */
#ifndef KITE_SHM_H
#define KITE_SHM_H

#include <fcntl.h>
#include <stddef.h>

/* The seals a subscriber insists on before mapping a peer's ring:
 * nobody can shrink it (no SIGBUS) and nobody else can write it. */
#define SEALS_RING (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)
/* Large messages are written once, then frozen. */
#define SEALS_FROZEN (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
/* A waiter page is shared writable both ways; it must only not shrink. */
#define SEALS_WAITER (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

/* memfd of size bytes, CLOEXEC, sealable; -errno on failure. */
int ki_shm_create(const char *name, size_t size);

/* Apply seals; 0 or -errno. */
int ki_shm_seal(int fd, int seals);

/* 0 if fd is a memfd carrying at least `seals` (for F_SEAL_FUTURE_WRITE,
 * F_SEAL_WRITE also satisfies) and exactly `size` bytes (or at least, when
 * exact is 0); -EBADMSG otherwise. */
int ki_shm_check(int fd, int seals, size_t size, int exact);

/* mmap shared; NULL on failure. */
void *ki_shm_map(int fd, size_t size, int writable);

/* Write all of buf into fd from offset 0; 0 or -errno. */
int ki_shm_write_all(int fd, const void *buf, size_t len);

#endif
