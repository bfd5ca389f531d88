/* Internal (not API): the record `kite serve --handoff` sends with each
 * connection. libkite reads it (kite_handoff_accept); the command's
 * supervisor writes it (sys/handoff_send.c), so both share this one
 * definition. */
#ifndef KITE_HANDOFF_WIRE_H
#define KITE_HANDOFF_WIRE_H

#include <stdint.h>

#include "kite/handoff.h"

#define HANDOFF_MAGIC 0x4b484f31u /* "KHO1" */
#define HANDOFF_VERSION 1u

/* The record on the wire (both ends are on one machine and one build of
 * this layout, so host byte order). */
struct handoff_wire {
	uint32_t magic;
	uint32_t version;
	int32_t family;
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
	uint32_t addr_len;
	uint8_t addr[KITE_PEER_ADDR_MAX];
};

/* Fill peer->host and peer->port from the sockaddr bytes in peer->addr. */
void ki_handoff_peer_set_text(struct kite_peer *peer);

#endif
