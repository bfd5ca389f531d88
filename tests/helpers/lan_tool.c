/* The LAN tests' fault injector and flooder (a test program: never part of
 * libkite or the kite command). Run only inside network namespaces the
 * test creates.
 *
 *   lan_tool relay IFACE SEED CORRUPT_PCT REORDER_PCT IDLE_MS
 *     Hears every group of the default range on IFACE and sends each
 *     datagram on again to the same group, from this host: CORRUPT_PCT % of
 *     them with one byte (at offset >= 65: channel or payload, so only the
 *     CRC can catch it) flipped, REORDER_PCT % held back behind the next 1
 *     to 8 (or 5 ms, whichever comes first). Seeded: the same SEED makes
 *     the same faults. Exits after IDLE_MS without a datagram (once one
 *     came), printing
 *     "relayed N corrupted C reordered R".
 *   lan_tool flood IFACE CHANNEL COUNT
 *     Sends COUNT first fragments of never-completed 16 MiB messages
 *     (valid CRC, sequences 1..COUNT, one made-up publisher) to CHANNEL's
 *     group, then prints "flooded COUNT".
 *   lan_tool flap IFACE CHANNEL COUNT
 *     A publisher that says goodbye and speaks again COUNT times (one
 *     made-up publisher, valid CRC): a message (sequence i) then its
 *     goodbye (a GONE state at i), packed several pairs to a datagram, to
 *     CHANNEL's group; prints "flapped COUNT".
 *   lan_tool hold IFACE CHANNEL PUBLISHERS COUNT SIZE
 *     Messages a subscriber must hold behind a gap: PUBLISHERS made-up
 *     publishers each send CHANNEL's group a message of SIZE bytes
 *     (fragmented, valid CRC) at sequence 1, none at 2, and COUNT more at
 *     3 on; prints "held PUBLISHERS COUNT SIZE".
 *   lan_tool naks IFACE CHANNEL COUNT
 *     A forger: waits (10 s at most) for a frame on CHANNEL, learns its
 *     publisher id and the address it came from, and sends that address
 *     COUNT well-formed NAKs asking for every sequence there can be, as
 *     fast as it can; prints "naks COUNT ms ELAPSED".
 *   lan_tool nak IFACE CHANNEL FIRST LAST GO
 *     An asker: waits (10 s at most) for a frame on CHANNEL, learns its
 *     publisher as naks does, prints "heard", then waits (10 s at most)
 *     for the file GO to exist and sends that publisher one NAK for
 *     FIRST..LAST (so that it resends them to the group, where any host
 *     hears them); prints "nak sent".
 *   lan_tool oldpub IFACE CHANNEL FIRST LAST
 *     A publisher of before the stream's age (its frames have none), that
 *     never sent "nothing sent yet" nor FIRST - 1 messages before
 *     (lost, or sent before anyone listened): messages FIRST..LAST
 *     (payload "oN"), the first three one version-1 frame a datagram,
 *     the rest in batches of 8, 2 ms apart; then its goodbye, three
 *     times. Prints "sent N".
 *   lan_tool forge IFACE CHANNEL COUNT
 *     A forger without the key: waits (10 s at most) for an authenticated
 *     message frame on CHANNEL, and sends its group COUNT messages as that
 *     publisher (its host, id, pid; the next sequences, payload "forged"),
 *     each three ways: untagged; tagged with the captured tag; tagged with
 *     random bytes. Prints "forged N" (frames sent).
 *   lan_tool pubtime IFACE CHANNEL COUNT SIZE [RATE [IDLE_MS]]
 *     Publishes COUNT messages of SIZE bytes on a LAN handle (IFACE is the
 *     whole --lan spec; CHANNEL may be a comma-separated list, up to 8,
 *     taken in turn), as fast as it can or RATE a second; prints the
 *     longest kite_publish(), the total, kite_close()'s time, the
 *     messages unsent and the datagrams sent. With IDLE_MS, the handle's
 *     idle_ms: it also prints "remade N", the publishes that found their
 *     channel's ring released (not in /proc/self/maps) and made it again.
 *   lan_tool stall IFACE PATTERN
 *     A subscriber whose application stops reading: subscribes, prints
 *     "ready", then does not call kite_recv() while the LAN floods it
 *     (its control thread keeps receiving) until no datagram came for 1 s
 *     (after one came; 60 s at most); prints "rss_kib R queue_dropped Q
 *     kernel_drops K", then reads everything queued (until its publisher
 *     is gone, or 2 s of nothing) and prints "received N lost L".
 *   lan_tool resub IFACE PATTERN UPTO AWAY_MS
 *     A subscriber that leaves and comes back: subscribes, prints "ready",
 *     reads until it got the message of sequence UPTO (10 s at most),
 *     unsubscribes (prints "left"), sleeps AWAY_MS, subscribes again
 *     (prints "back"), reads until its publisher is gone (or 3 s of
 *     nothing), and prints "before N received M lost L first F":
 *     messages received before leaving and after coming back, losses
 *     reported after coming back, the first sequence received after it.
 *   lan_tool addsub IFACE FIRST SECOND GO
 *     A subscriber that adds a pattern later: subscribes to FIRST, prints
 *     "ready", waits (10 s at most) for the file GO to exist, subscribes
 *     to SECOND too (prints "added"), reads until a publisher is gone (or
 *     3 s of nothing), and prints "received N lost L first F". */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kite.h"

#include "lan_batch.h"
#include "lan_crc32c.h"
#include "lan_frame.h"
#include "lan_group.h"
#include "lan_socket.h"
#include "lan_spec.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct held {
	uint8_t buf[65536];
	size_t len;
	uint32_t group;
	int release_after;
};

static int send_to(int tx, uint32_t group, uint16_t port, const void *d, size_t len)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(group)};
	return sendto(tx, d, len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)len ? 0 : -1;
}

static int open_iface(const char *iface, struct lan_spec *spec, struct lan_iface *ifc, int *tx)
{
	char why[200];
	if (ki_lan_spec_parse(iface, spec, why, sizeof why) ||
	    ki_lan_iface_resolve(spec, ifc, why, sizeof why)) {
		fprintf(stderr, "lan_tool: %s\n", why);
		return -1;
	}
	if ((*tx = ki_lan_socket_sender(spec, ifc, 1000)) < 0) {
		fprintf(stderr, "lan_tool: sender: %s\n", strerror(-*tx));
		return -1;
	}
	return 0;
}

/* A made-up publisher on interface argv[0], sending on channel argv[1]:
 * its frames start as f (host, pid and channel set), to the channel's
 * group. */
struct forger {
	struct lan_spec spec;
	struct lan_iface ifc;
	int tx;
	uint32_t group;
	struct lan_frame f;
};

static int open_forger(char **argv, uint64_t host, struct forger *g)
{
	if (open_iface(argv[0], &g->spec, &g->ifc, &g->tx))
		return -1;
	memset(&g->f, 0, sizeof g->f);
	g->f.host = host;
	g->f.pid = 1;
	g->f.channel_len = (uint8_t)strlen(argv[1]);
	memcpy(g->f.channel, argv[1], g->f.channel_len + 1u);
	g->group = ki_lan_group_of(&g->spec.range, argv[1]);
	return 0;
}

static int relay(char **argv)
{
	struct lan_spec spec;
	struct lan_iface ifc;
	int tx;
	if (open_iface(argv[0], &spec, &ifc, &tx))
		return 1;
	rng_state = strtoull(argv[1], NULL, 10) | 1;
	unsigned corrupt = (unsigned)atoi(argv[2]), reorder = (unsigned)atoi(argv[3]);
	int idle_ms = atoi(argv[4]);
	size_t granted;
	int rx = ki_lan_socket_receiver(&spec, 8u << 20, &granted);
	if (rx < 0) {
		fprintf(stderr, "lan_tool: receiver: %s\n", strerror(-rx));
		return 1;
	}
	for (uint32_t i = 0; i < lan_range_size(&spec.range); i++)
		if (ki_lan_socket_membership(rx, spec.range.base + i, &ifc, 1) < 0) {
			fprintf(stderr, "lan_tool: join: %s\n", strerror(errno));
			return 1;
		}
	printf("ready\n");
	fflush(stdout);
	static struct held held[16];
	int nheld = 0;
	unsigned long relayed = 0, corrupted = 0, reordered = 0;
	static uint8_t buf[65536];
	for (;;) {
		struct pollfd p = {.fd = rx, .events = POLLIN};
		/* Held datagrams wait for the next ones, or 5 ms at most: a
		 * reordering, not a delay past the receivers' reorder time. */
		int pr = poll(&p, 1, nheld ? 5 : relayed ? idle_ms : 60000);
		if (pr <= 0 && nheld) {
			for (int i = 0; i < nheld; i++)
				send_to(tx, held[i].group, spec.range.port, held[i].buf, held[i].len);
			nheld = 0;
			continue;
		}
		if (pr <= 0)
			break;
		struct sockaddr_in to;
		socklen_t tl = sizeof to;
		/* The group it was sent to: IP_PKTINFO would say; the frame's
		 * channel says the same. */
		ssize_t n = recvfrom(rx, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&to, &tl);
		if (n <= 0)
			continue;
		struct lan_frame f;
		if (ki_lan_frame_decode(buf, (size_t)n, &f) < 0)
			continue; /* not a frame we can route */
		uint32_t group = ki_lan_group_of(&spec.range, f.channel);
		relayed++;
		if ((size_t)n > 66 && rng() % 100 < corrupt) {
			size_t at = 65 + (size_t)(rng() % (uint64_t)(n - 65));
			buf[at] ^= (uint8_t)(1 + rng() % 255);
			corrupted++;
		}
		if (nheld < 16 && rng() % 100 < reorder) {
			memcpy(held[nheld].buf, buf, (size_t)n);
			held[nheld].len = (size_t)n;
			held[nheld].group = group;
			held[nheld].release_after = 1 + (int)(rng() % 8);
			nheld++;
			reordered++;
		} else {
			send_to(tx, group, spec.range.port, buf, (size_t)n);
		}
		for (int i = 0; i < nheld;)
			if (--held[i].release_after <= 0) {
				send_to(tx, held[i].group, spec.range.port, held[i].buf, held[i].len);
				held[i] = held[--nheld];
			} else {
				i++;
			}
	}
	for (int i = 0; i < nheld; i++)
		send_to(tx, held[i].group, spec.range.port, held[i].buf, held[i].len);
	printf("relayed %lu corrupted %lu reordered %lu\n", relayed, corrupted, reordered);
	return 0;
}

static int flood(char **argv)
{
	struct forger g;
	if (open_forger(argv, 0xf100df100dull, &g))
		return 1;
	unsigned long count = strtoul(argv[2], NULL, 10);
	static uint8_t payload[1400], out[1500];
	struct lan_frame f = g.f;
	f.publisher = 0xbad;
	f.total_len = 16u << 20;
	f.frag_count = ki_lan_fragment_count(f.total_len, 1300);
	f.payload_len = ki_lan_fragment_chunk(f.total_len, f.frag_count);
	for (unsigned long i = 1; i <= count; i++) {
		f.seq = i;
		int n = ki_lan_frame_encode(out, sizeof out, &f, payload);
		if (n < 0 || send_to(g.tx, g.group, g.spec.range.port, out, (size_t)n) < 0) {
			fprintf(stderr, "lan_tool: flood: %s\n", n < 0 ? "encode" : strerror(errno));
			return 1;
		}
		if (i % 256 == 0)
			usleep(1000); /* a flood, not a loss test: let the receiver keep up */
	}
	printf("flooded %lu\n", count);
	return 0;
}

static int flap(char **argv)
{
	struct forger g;
	if (open_forger(argv, 0xf1a9f1a9ull, &g))
		return 1;
	unsigned long count = strtoul(argv[2], NULL, 10);
	static uint8_t out[1400];
	struct lan_frame f = g.f;
	f.publisher = 0xf1a9;
	f.frag_count = 1;
	size_t fill = 0;
	unsigned long datagrams = 0;
	for (unsigned long i = 1; i <= count; i++) {
		for (int gone = 0; gone < 2; gone++) {
			f.seq = i;
			f.flags = gone ? LAN_FLAG_STATE | LAN_FLAG_GONE : 0;
			f.total_len = f.payload_len = gone ? 0 : 1;
			int n = ki_lan_frame_encode(out + fill, sizeof out - fill, &f, "x");
			if (n < 0 && fill) { /* full: send it, start the next */
				if (send_to(g.tx, g.group, g.spec.range.port, out, fill) < 0) {
					fprintf(stderr, "lan_tool: flap: %s\n", strerror(errno));
					return 1;
				}
				fill = 0;
				if (++datagrams % 64 == 0)
					usleep(1000); /* let the receiver keep up */
				n = ki_lan_frame_encode(out, sizeof out, &f, "x");
			}
			if (n < 0) {
				fprintf(stderr, "lan_tool: flap: %s\n", strerror(errno));
				return 1;
			}
			fill += (size_t)n;
		}
	}
	if (fill && send_to(g.tx, g.group, g.spec.range.port, out, fill) < 0) {
		fprintf(stderr, "lan_tool: flap: %s\n", strerror(errno));
		return 1;
	}
	printf("flapped %lu\n", count);
	return 0;
}

static int hold(char **argv)
{
	struct forger g;
	if (open_forger(argv, 0x401d401dull, &g))
		return 1;
	unsigned long pubs = strtoul(argv[2], NULL, 10), count = strtoul(argv[3], NULL, 10);
	uint32_t size = (uint32_t)strtoul(argv[4], NULL, 10);
	uint8_t *payload = calloc(1, size ? size : 1);
	static uint8_t out[1500];
	if (!payload)
		return 1;
	struct lan_frame f = g.f;
	f.total_len = size;
	f.frag_count = ki_lan_fragment_count(size, 1300);
	unsigned long datagrams = 0;
	for (unsigned long p = 1; p <= pubs; p++)
		for (unsigned long i = 0; i <= count; i++) {
			f.publisher = 0x401d0000u + p;
			f.seq = i ? i + 2 : 1; /* (2 never comes) */
			for (uint32_t j = 0; j < f.frag_count; j++) {
				uint64_t at = ki_lan_fragment_offset(size, f.frag_count, j);
				f.frag_index = j;
				f.payload_len = j + 1 < f.frag_count
							? ki_lan_fragment_chunk(size, f.frag_count)
							: (uint32_t)(size - at);
				int n = ki_lan_frame_encode(out, sizeof out, &f, payload + at);
				if (n < 0 || send_to(g.tx, g.group, g.spec.range.port, out, (size_t)n) < 0) {
					fprintf(stderr, "lan_tool: hold: %s\n",
						n < 0 ? "encode" : strerror(errno));
					return 1;
				}
				if (++datagrams % 256 == 0)
					usleep(1000); /* let the receiver keep up */
			}
		}
	printf("held %lu %lu %lu\n", pubs, count, (unsigned long)size);
	free(payload);
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Wait for a frame on channel at rx: its header in f, its sender's
 * address in from. -1 after 10 s of nothing. */
static int learn_publisher(int rx, const char *channel, struct lan_frame *f,
			   struct sockaddr_in *from)
{
	static uint8_t buf[65536];
	for (;;) {
		struct pollfd p = {.fd = rx, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		socklen_t fl = sizeof *from;
		ssize_t n = recvfrom(rx, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)from, &fl);
		if (n > 0 && ki_lan_frame_decode(buf, (size_t)n, f) > 0 && !strcmp(f->channel, channel))
			return 0;
	}
}

/* Open iface (argv's first word) for sending, and a receiver in channel's
 * group: what a forger needs to hear a publisher before it answers it. */
static int listen_on_channel(const char *iface, const char *channel, const char *mode,
			     int *tx, int *rx)
{
	struct lan_spec spec;
	struct lan_iface ifc;
	if (open_iface(iface, &spec, &ifc, tx))
		return -1;
	size_t granted;
	*rx = ki_lan_socket_receiver(&spec, 1u << 20, &granted);
	if (*rx < 0 ||
	    ki_lan_socket_membership(*rx, ki_lan_group_of(&spec.range, channel), &ifc, 1) < 0) {
		fprintf(stderr, "lan_tool: %s: cannot listen\n", mode);
		return -1;
	}
	return 0;
}

static int forge_naks(char **argv)
{
	int tx, rx;
	const char *channel = argv[1];
	if (listen_on_channel(argv[0], channel, "naks", &tx, &rx))
		return 1;
	unsigned long count = strtoul(argv[2], NULL, 10);
	printf("ready\n");
	fflush(stdout);
	static uint8_t buf[65536];
	struct lan_frame f;
	struct sockaddr_in from;
	if (learn_publisher(rx, channel, &f, &from) < 0) {
		fprintf(stderr, "lan_tool: naks: heard no frame on %s\n", channel);
		return 1;
	}
	struct lan_frame nak = f;
	nak.host = 0xf0f0f0f0ull;
	nak.pid = 1;
	struct lan_seq_range all = {1, LAN_SEQ_MAX};
	int len = ki_lan_nak_encode(buf, sizeof buf, &nak, &all, 1, NULL);
	double t0 = now_ms();
	for (unsigned long i = 0; i < count; i++)
		if (len <= 0 || sendto(tx, buf, (size_t)len, 0, (struct sockaddr *)&from, sizeof from) != len) {
			if (errno == ENOBUFS || errno == EAGAIN) {
				usleep(100);
				continue;
			}
			fprintf(stderr, "lan_tool: naks: %s\n", strerror(errno));
			return 1;
		}
	printf("naks %lu ms %.0f\n", count, now_ms() - t0);
	return 0;
}

static int nak_once(char **argv)
{
	int tx, rx;
	const char *channel = argv[1];
	if (listen_on_channel(argv[0], channel, "nak", &tx, &rx))
		return 1;
	struct lan_seq_range r = {strtoull(argv[2], NULL, 10), strtoull(argv[3], NULL, 10)};
	struct lan_frame f;
	struct sockaddr_in from;
	if (learn_publisher(rx, channel, &f, &from) < 0) {
		fprintf(stderr, "lan_tool: nak: heard no frame on %s\n", channel);
		return 1;
	}
	printf("heard\n");
	fflush(stdout);
	for (int i = 0; access(argv[4], F_OK) != 0; i++) {
		if (i == 1000) {
			fprintf(stderr, "lan_tool: nak: no %s\n", argv[4]);
			return 1;
		}
		usleep(10000);
	}
	uint8_t buf[LAN_HEADER_MAX + 64];
	f.host = 0xa5a5a5a5ull;
	f.pid = 1;
	int len = ki_lan_nak_encode(buf, sizeof buf, &f, &r, 1, NULL);
	if (len <= 0 || sendto(tx, buf, (size_t)len, 0, (struct sockaddr *)&from, sizeof from) != len) {
		fprintf(stderr, "lan_tool: nak: %s\n", strerror(errno));
		return 1;
	}
	printf("nak sent\n");
	return 0;
}

static int old_publisher(char **argv)
{
	struct forger g;
	if (open_forger(argv, 0x01d01d01dull, &g))
		return 1;
	uint64_t first = strtoull(argv[2], NULL, 10), last = strtoull(argv[3], NULL, 10);
	static uint8_t out[1400];
	struct lan_frame f = g.f; /* has_age 0: as kite before the stream's age */
	f.publisher = 0x01d;
	f.frag_count = 1;
	char text[32];
	for (uint64_t q = first; q <= last;) {
		size_t len = 0;
		f.flags = 0;
		f.seq = q;
		if (q < first + 3) { /* a lone version-1 frame */
			f.total_len = f.payload_len = (uint32_t)snprintf(text, sizeof text, "o%llu",
									 (unsigned long long)q);
			int n = ki_lan_frame_encode(out, sizeof out, &f, text);
			if (n <= 0)
				return 1;
			len = (size_t)n;
			q++;
		} else { /* a batch of up to 8 */
			len = ki_lan_batch_open(out, sizeof out, &f);
			uint32_t count = 0;
			for (; q <= last && count < 8; q++, count++) {
				int n = snprintf(text, sizeof text, "o%llu", (unsigned long long)q);
				len += lan_batch_put(out + len, 0, text, (uint16_t)n);
			}
			len = ki_lan_batch_close(out, len, count, NULL);
		}
		if (send_to(g.tx, g.group, g.spec.range.port, out, len) < 0) {
			fprintf(stderr, "lan_tool: oldpub: %s\n", strerror(errno));
			return 1;
		}
		usleep(2000);
	}
	f.flags = LAN_FLAG_STATE | LAN_FLAG_GONE;
	f.seq = last;
	f.total_len = f.payload_len = 0;
	int n = ki_lan_frame_encode(out, sizeof out, &f, NULL);
	for (int i = 0; i < 3 && n > 0; i++)
		send_to(g.tx, g.group, g.spec.range.port, out, (size_t)n);
	printf("sent %llu\n", (unsigned long long)(last - first + 1));
	return 0;
}

/* Re-compute the CRC of the frame at b[0..len) (len: without any tag). */
static void put_crc(uint8_t *b, size_t len)
{
	memset(b + LAN_CRC_OFFSET, 0, 4);
	uint32_t c = ki_crc32c(0, b, len);
	for (int i = 0; i < 4; i++)
		b[LAN_CRC_OFFSET + i] = (uint8_t)(c >> (24 - 8 * i));
}

static int forge(char **argv)
{
	struct lan_spec spec;
	struct lan_iface ifc;
	int tx;
	if (open_iface(argv[0], &spec, &ifc, &tx))
		return 1;
	const char *channel = argv[1];
	unsigned long count = strtoul(argv[2], NULL, 10);
	uint32_t group = ki_lan_group_of(&spec.range, channel);
	size_t granted;
	int rx = ki_lan_socket_receiver(&spec, 1u << 20, &granted);
	if (rx < 0 || ki_lan_socket_membership(rx, group, &ifc, 1) < 0) {
		fprintf(stderr, "lan_tool: forge: cannot listen\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	static uint8_t buf[65536], out[65536];
	uint8_t tag[LAN_TAG_LEN];
	struct lan_frame f;
	for (;;) {
		struct pollfd p = {.fd = rx, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "lan_tool: forge: heard no authenticated message on %s\n", channel);
			return 1;
		}
		ssize_t n = recv(rx, buf, sizeof buf, MSG_DONTWAIT);
		/* What anyone on the LAN can do: strip the tag, read the rest. */
		if (n <= LAN_FIXED_LEN + LAN_TAG_LEN || !(buf[5] & LAN_FLAG_MAC))
			continue;
		size_t hdr = (size_t)buf[6] << 8 | buf[7];
		size_t pl = (size_t)buf[12] << 24 | (size_t)buf[13] << 16 | (size_t)buf[14] << 8 | buf[15];
		if (hdr + pl + LAN_TAG_LEN > (size_t)n)
			continue;
		memcpy(tag, buf + hdr + pl, LAN_TAG_LEN);
		buf[5] &= (uint8_t)~LAN_FLAG_MAC;
		put_crc(buf, hdr + pl);
		if (ki_lan_frame_decode(buf, hdr + pl, &f) > 0 && !strcmp(f.channel, channel) &&
		    !(f.flags & LAN_FLAG_STATE))
			break;
	}
	unsigned long sent = 0;
	rng_state = (uint64_t)getpid() << 20 | 1;
	for (unsigned long i = 1; i <= count; i++) {
		f.seq++;
		f.flags = 0;
		f.frag_index = 0;
		f.frag_count = 1;
		f.total_len = f.payload_len = 6;
		for (int way = 0; way < 3; way++) {
			int n = ki_lan_frame_encode(out, sizeof out, &f, "forged");
			if (n < 0)
				return 1;
			if (way > 0) {
				out[5] |= LAN_FLAG_MAC;
				put_crc(out, (size_t)n);
				for (int j = 0; j < LAN_TAG_LEN; j++)
					out[n + j] = way == 1 ? tag[j] : (uint8_t)rng();
				n += LAN_TAG_LEN;
			}
			if (send_to(tx, group, spec.range.port, out, (size_t)n) == 0)
				sent++;
		}
	}
	printf("forged %lu\n", sent);
	return 0;
}

/* Whether this process maps CHANNEL's ring (a memfd "kite-ring:CHANNEL"). */
static int ring_mapped(const char *channel)
{
	char want[128], line[512];
	snprintf(want, sizeof want, "/memfd:kite-ring:%s ", channel);
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;
	while (f && !found && fgets(line, sizeof line, f))
		found = strstr(line, want) != NULL;
	if (f)
		fclose(f);
	return found;
}

static int pubtime(char **argv)
{
	kite_options o = {.lan = argv[0]};
	if (argv[4] && argv[5])
		o.idle_ms = (uint32_t)strtoul(argv[5], NULL, 10);
	kite *k;
	int rc = kite_open(&k, &o);
	if (rc) {
		fprintf(stderr, "lan_tool: kite_open: %s\n", kite_strerror(rc));
		return 1;
	}
	unsigned long count = strtoul(argv[2], NULL, 10);
	size_t size = strtoul(argv[3], NULL, 10);
	char *payload = calloc(1, size ? size : 1);
	if (!payload)
		return 1;
	double rate = argv[4] ? strtod(argv[4], NULL) : 0; /* a second; 0: unpaced */
	/* CHANNEL may be a comma-separated list: message i goes to the
	 * (i mod n)th, so one handle publishes on several channels in turn. */
	char *channels[8];
	size_t nch = 0;
	for (char *c = strtok(argv[1], ","); c && nch < 8; c = strtok(NULL, ","))
		channels[nch++] = c;
	if (!nch)
		return 1;
	double longest = 0, t0 = now_ms();
	unsigned long remade = 0;
	for (unsigned long i = 0; i < count; i++) {
		if (o.idle_ms && i >= nch && !ring_mapped(channels[i % nch]))
			remade++;
		double t = now_ms();
		if (rate > 0 && t < t0 + (double)i * 1e3 / rate) { /* ahead: wait */
			usleep((useconds_t)((t0 + (double)i * 1e3 / rate - t) * 1e3));
			t = now_ms();
		}
		int64_t seq = kite_publish(k, channels[i % nch], payload, size);
		double took = now_ms() - t;
		if (seq < 1) {
			fprintf(stderr, "lan_tool: kite_publish: %s\n", kite_strerror((int)seq));
			return 1;
		}
		if (took > longest)
			longest = took;
	}
	double total = now_ms() - t0;
	kite_lan_stats st;
	kite_lan_stats_get(k, &st, sizeof st);
	double c = now_ms();
	kite_close(k);
	if (o.idle_ms)
		printf("remade %lu\n", remade);
	printf("longest_ms %.0f total_ms %.0f close_ms %.0f unsent %llu sent %llu\n", longest,
	       total, now_ms() - c, (unsigned long long)st.messages_unsent,
	       (unsigned long long)st.datagrams_sent);
	free(payload);
	return 0;
}

/* The resident set, in KiB, from /proc/self/status. */
static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* A LAN handle (spec) subscribed to pattern; NULL (said why) if not. */
static kite *open_subscriber(const char *spec, const char *pattern)
{
	kite_options o = {.lan = spec};
	kite *k;
	int rc = kite_open(&k, &o);
	if (!rc && (rc = kite_subscribe(k, pattern)) != 0)
		kite_close(k);
	if (rc) {
		fprintf(stderr, "lan_tool: %s\n", kite_strerror(rc));
		return NULL;
	}
	return k;
}

static int stall(char **argv)
{
	kite *k = open_subscriber(argv[0], argv[1]);
	if (!k)
		return 1;
	printf("ready\n");
	fflush(stdout);
	kite_lan_stats st = {0};
	uint64_t seen = 0;
	double quiet_since = now_ms(), t0 = quiet_since;
	while (now_ms() - t0 < 60000 && (!seen || now_ms() - quiet_since < 1000)) {
		usleep(100000);
		kite_lan_stats_get(k, &st, sizeof st);
		if (st.datagrams_received != seen) {
			seen = st.datagrams_received;
			quiet_since = now_ms();
		}
	}
	printf("rss_kib %ld queue_dropped %llu kernel_drops %llu\n", rss_kib(),
	       (unsigned long long)st.queue_dropped, (unsigned long long)st.kernel_drops);
	unsigned long long got = 0, lost = 0;
	kite_event ev;
	while (kite_recv(k, &ev, 2000) == 0 && ev.type != KITE_PUBLISHER_GONE) {
		if (ev.type == KITE_MESSAGE)
			got++;
		else if (ev.type == KITE_LOSS)
			lost += ev.lost;
	}
	printf("received %llu lost %llu\n", got, lost);
	kite_close(k);
	return 0;
}

/* Read until a publisher is gone or 3 s of nothing: "received N lost L
 * first F" (F: the first message's sequence). */
static void read_to_end(kite *k)
{
	unsigned long long got = 0, lost = 0, first = 0;
	kite_event ev;
	while (kite_recv(k, &ev, 3000) == 0 && ev.type != KITE_PUBLISHER_GONE) {
		if (ev.type == KITE_MESSAGE && !got++)
			first = ev.msg.seq;
		else if (ev.type == KITE_LOSS)
			lost += ev.lost;
	}
	printf("received %llu lost %llu first %llu\n", got, lost, first);
}

static int resub(char **argv)
{
	kite *k = open_subscriber(argv[0], argv[1]);
	if (!k)
		return 1;
	int rc;
	uint64_t upto = strtoull(argv[2], NULL, 10);
	printf("ready\n");
	fflush(stdout);
	unsigned long long before = 0;
	kite_event ev;
	double t0 = now_ms();
	while (now_ms() - t0 < 10000) {
		if (kite_recv(k, &ev, 100) != 0)
			continue;
		if (ev.type == KITE_MESSAGE && (before++, ev.msg.seq >= upto))
			break;
	}
	if ((rc = kite_unsubscribe(k, argv[1])) == 0) {
		printf("left\n");
		fflush(stdout);
		usleep((useconds_t)atoi(argv[3]) * 1000u);
		rc = kite_subscribe(k, argv[1]);
	}
	if (rc) {
		fprintf(stderr, "lan_tool: %s\n", kite_strerror(rc));
		return 1;
	}
	printf("back\n");
	fflush(stdout);
	printf("before %llu ", before);
	read_to_end(k);
	kite_close(k);
	return 0;
}

static int add_sub(char **argv)
{
	kite *k = open_subscriber(argv[0], argv[1]);
	if (!k)
		return 1;
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 1000 && access(argv[3], F_OK) != 0; i++)
		usleep(10000);
	int rc = kite_subscribe(k, argv[2]);
	if (rc) {
		fprintf(stderr, "lan_tool: %s\n", kite_strerror(rc));
		return 1;
	}
	printf("added\n");
	fflush(stdout);
	read_to_end(k);
	kite_close(k);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "relay"))
		return relay(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "flood"))
		return flood(argv + 2);
	if (argc >= 6 && argc <= 8 && !strcmp(argv[1], "pubtime"))
		return pubtime(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "flap"))
		return flap(argv + 2);
	if (argc == 7 && !strcmp(argv[1], "hold"))
		return hold(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "naks"))
		return forge_naks(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "forge"))
		return forge(argv + 2);
	if (argc == 7 && !strcmp(argv[1], "nak"))
		return nak_once(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "oldpub"))
		return old_publisher(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "stall"))
		return stall(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "resub"))
		return resub(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "addsub"))
		return add_sub(argv + 2);
	fprintf(stderr, "usage: lan_tool relay IFACE SEED CORRUPT_PCT REORDER_PCT IDLE_MS\n"
			"       lan_tool flood IFACE CHANNEL COUNT\n"
			"       lan_tool pubtime IFACE CHANNEL COUNT SIZE [RATE [IDLE_MS]]\n"
			"       lan_tool flap IFACE CHANNEL COUNT\n"
			"       lan_tool hold IFACE CHANNEL PUBLISHERS COUNT SIZE\n"
			"       lan_tool naks IFACE CHANNEL COUNT\n"
			"       lan_tool nak IFACE CHANNEL FIRST LAST GO\n"
			"       lan_tool oldpub IFACE CHANNEL FIRST LAST\n"
			"       lan_tool forge IFACE CHANNEL COUNT\n"
			"       lan_tool stall IFACE PATTERN\n"
			"       lan_tool resub IFACE PATTERN UPTO AWAY_MS\n"
			"       lan_tool addsub IFACE FIRST SECOND GO\n");
	return 100;
}
