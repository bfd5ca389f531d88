/* kite statsd: opening the sockets it listens on, by address. */
#ifndef KITE_CLI_STATSD_NET_H
#define KITE_CLI_STATSD_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A non-blocking socket of type SOCK_DGRAM (SO_REUSEPORT, receive buffer
 * rcvbuf, SO_RXQ_OVFL) or SOCK_STREAM (listening) bound to "HOST:PORT";
 * logs "WHAT HOST:PORT" once bound. fd, or -1 (logged). */
int statsd_bind_inet(const char *what, const char *addr, int type, uint64_t rcvbuf);

/* A non-blocking Unix datagram socket at @name (abstract) or at the path
 * name; a socket file left by an earlier run that nobody listens on is
 * removed first, anything else at the path is left alone. *ino gets the
 * bound file's inode (what teardown may remove), 0 for abstract names.
 * fd, or -errno (logged, except -EADDRINUSE when taken_ok). */
int statsd_bind_unix(const char *name, bool abstract, uint64_t rcvbuf, ino_t *ino,
		     bool taken_ok);

/* "kite statsd: ..." on stderr. */
void statsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
