/* What kite pub and kite sub say about the LAN side of their handle. */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"

/* What libkite asks for (lan.c's RCVBUF_WANT): less means bursts that
 * overflow the socket, which SO_RXQ_OVFL then counts. */
#define RCVBUF_WANT (8u << 20)

void lan_stats_print(const char *cmd, const kite *k)
{
	kite_lan_stats s;
	if (kite_lan_stats_get(k, &s, sizeof s) != 0)
		return;
	fprintf(stderr, "kite %s: lan: datagrams sent %" PRIu64 ", received %" PRIu64
		"; frames %" PRIu64 ", rejected %" PRIu64 " (bad CRC %" PRIu64
		", unauthenticated %" PRIu64 "); "
		"kernel drops %" PRIu64 "; duplicates %" PRIu64 ", late %" PRIu64
		"; partial messages dropped %" PRIu64 "; queue drops %" PRIu64
		"; unsent %" PRIu64 "; repaired %" PRIu64 "; naks sent %" PRIu64
		", naks received %" PRIu64 "; resent %" PRIu64 ", resend refused %" PRIu64
		"; gso sends %" PRIu64 ", gso refused %" PRIu64 ", gro buffers %" PRIu64
		"; batches %" PRIu64 ", rx pauses %" PRIu64 "\n", cmd,
		s.datagrams_sent, s.datagrams_received, s.frames_received, s.frames_rejected,
		s.frames_bad_crc, s.frames_unauthenticated, s.kernel_drops, s.duplicates, s.late, s.partials_dropped,
		s.queue_dropped, s.messages_unsent, s.repaired, s.naks_sent, s.naks_received,
		s.resent, s.resend_refused, s.gso_sends, s.gso_refused, s.gro_buffers,
		s.batches_received, s.rx_pauses);
}

void lan_rcvbuf_warn(const char *cmd, const kite *k)
{
	kite_lan_stats s;
	if (kite_lan_stats_get(k, &s, sizeof s) != 0 || s.rcvbuf_bytes >= RCVBUF_WANT)
		return;
	fprintf(stderr, "kite %s: warning: the kernel granted a LAN receive buffer of "
		"%" PRIu64 " KiB, not %u: raise net.core.rmem_max (a sysctl of the "
		"initial network namespace), or run with CAP_NET_ADMIN\n", cmd,
		s.rcvbuf_bytes / 1024, RCVBUF_WANT / 1024);
}
