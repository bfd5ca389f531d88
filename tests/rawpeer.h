/* A raw kite protocol peer for tests: finds handles on a bus, speaks the
 * control protocol of src/wire.h by hand, and builds rings itself — to
 * inspect what a real handle hands out, or to lie to one. */
#ifndef KITE_TEST_RAWPEER_H
#define KITE_TEST_RAWPEER_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "wire.h"

/* Ids of the handles listening on a bus (at most max); the count. */
int raw_find_peers(const char *bus, uint64_t *ids, int max);

/* Connect to a handle; the socket or -errno. */
int raw_connect(const char *bus, uint64_t id);

/* Send one record of arbitrary bytes with nfds descriptors; 0 or -errno. */
int raw_send(int sock, const void *buf, size_t len, const int *fds, int nfds);

/* Bind and listen on @kite/<bus>/<id> in this process, so that a hello
 * claiming id is believed; 0 (also if already bound here) or -errno. */
int raw_own_id(const char *bus, uint64_t id);

/* Send a correct W_HELLO; first owns my_id's name on the bus of the last
 * raw_connect(). */
int raw_hello(int sock, uint64_t my_id);

/* Send a correct W_WAKE (a fresh datagram socket and sealed waiter page),
 * as a subscriber does to a publisher whose ring it took. */
int raw_wake(int sock);

/* The same, keeping our side of what was sent: *handle the wake-up handle
 * (today the eventfd, shared with the publisher's copy) and, if page is
 * not NULL, the waiter page mapped writable. Tests that play a hostile
 * subscriber use them; the wake-up mechanism is known here only. */
struct waiter_page;
int raw_wake_keep(int sock, int *handle, struct waiter_page **page);

/* Wait up to timeout_ms for the next record, of any type (its fds are the
 * caller's); 1 with *m filled, 0 on timeout, <0 if the link broke. */
int raw_recv(int sock, struct wire_msg *m, int timeout_ms);

/* Wait up to timeout_ms for a record of the given type (others are
 * dropped, their fds closed); 1 with *m filled, 0 on timeout, <0 if the
 * link broke. */
int raw_expect(int sock, struct wire_msg *m, uint16_t type, int timeout_ms);

/* A ring memfd written by w (mapped writable) and then sealed like a real
 * publisher's ring; the fd or -errno. */
int raw_ring(const char *channel, uint32_t slots, uint32_t slot_size,
	     uint64_t publisher, struct ring_writer *w, size_t *bytes);

#endif
