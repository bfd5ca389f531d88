/* Internal (not API): a bounds-checked parser of sd_notify datagrams, as
 * `kite serve` receives them on its NOTIFY_SOCKET. The bytes come from the
 * supervised server, so nothing in them is trusted. */
#ifndef KITE_NOTIFY_MSG_H
#define KITE_NOTIFY_MSG_H

#include <stddef.h>

/* Largest datagram accepted; longer ones arrive truncated and are refused. */
#define NOTIFY_MSG_MAX 4096
/* Longest STATUS= text kept (longer text is cut, never overflowed). */
#define NOTIFY_STATUS_MAX 127

struct notify_msg {
	int ready;        /* READY=1 */
	int stopping;     /* STOPPING=1 */
	int reloading;    /* RELOADING=1 (recorded, informational) */
	int has_status;   /* a STATUS= line was present */
	char status[NOTIFY_STATUS_MAX + 1]; /* NUL-terminated; bytes outside
	                                       printable ASCII shown as '?' */
	unsigned ignored; /* lines with unknown keys (MAINPID, WATCHDOG, ...) */
	unsigned malformed; /* lines without KEY= or with a bad key */
};

/* Parse one datagram of len bytes: newline-separated KEY=VALUE lines. 0 on
 * success (out filled; later lines win); -1 if the datagram is refused as a
 * whole (empty, longer than NOTIFY_MSG_MAX, or containing a NUL byte).
 * Never reads past len, never writes past out. */
int notify_msg_parse(const char *buf, size_t len, struct notify_msg *out);

#endif
