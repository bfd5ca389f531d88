/* What a handle's `lan` option (or $KITE_LAN) asks for:
 *   IFACE[,group=A.B.C.D/N][,port=P][,ttl=T][,reorder_ms=R][,max_msg=BYTES]
 *        [,pack_us=U][,gso=0|1][,batch=0|1][,repair=0|1][,repair_ms=R][,key=FILE]
 * IFACE is an interface name or "auto" (the first interface that is up,
 * multicast-capable and not loopback). */
#ifndef KITE_LAN_SPEC_H
#define KITE_LAN_SPEC_H

#include <net/if.h>
#include <stdint.h>

#include "lan_group.h"

#define LAN_DEFAULT_TTL 1
#define LAN_DEFAULT_REORDER_MS 20
#define LAN_DEFAULT_PACK_US 100
/* With repair: how long a gap waits for its resend before it is lost. */
#define LAN_DEFAULT_REPAIR_MS 250
#define LAN_KEY_PATH_MAX 256

struct lan_spec {
	char iface[IF_NAMESIZE];
	int is_auto;
	struct lan_range range;
	unsigned ttl;          /* 1..255 */
	unsigned reorder_ms;   /* 1..10000 */
	uint32_t max_msg;      /* 16 MiB .. 1 GiB */
	unsigned pack_us;      /* 0 (no packing) .. 1000000 */
	int gso;               /* datagrams of one length (packed, fragments) may leave as one UDP_SEGMENT send */
	int batch;             /* a burst's small messages on one channel share
				* a header (frame version 2); 0: version-1 frames
				* only, for receivers that know no other */
	int repair;            /* NAK what is missing; keep a history to resend */
	unsigned repair_ms;    /* 10..10000: a gap's wait with repair on */
	char key_path[LAN_KEY_PATH_MAX]; /* "": frames are not authenticated */
};

/* 0, or -EINVAL with what was wrong in why (for the caller to print). */
int ki_lan_spec_parse(const char *text, struct lan_spec *out, char *why, size_t why_len);

#endif
