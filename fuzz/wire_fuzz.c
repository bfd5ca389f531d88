/* Fuzz target: one SEQPACKET record, as a peer could send it, through a
 * socketpair into ki_wire_recv (no descriptors). A record it accepts must have
 * NUL-terminated text and reason within their limits and no fds.
 *
 * Input starting with 'W' is a structured record, so that text seeds can
 * reach deep: byte 1 type, 2 text length, 3 reason length, 4 nfds (each
 * '0'-relative), 5-12 slot_count and slot_size, then text and reason bytes.
 * Anything else is sent as the record itself. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

const char *const fuzz_seeds[] = {
	"W130", "W630", "W6300", "W2300h.>", "W1000", "W5000",
	"W6300\x08\x01\x01\x01\x40\x01\x01\x01h.x",
	"W73zz", "W8000reason", "W85:0h.xwhy", "W9000",
	"W0000", "W:000", "W2<00abcdefghijkl", "W2300h\x01>",
	"garbage", "",
	NULL,
};

static int pair[2] = {-1, -1};

static size_t build(const uint8_t *d, size_t n, uint8_t *out, size_t cap)
{
	if (n < 1 || d[0] != 'W') {
		size_t len = n < cap ? n : cap;
		memcpy(out, d, len);
		return len;
	}
	struct {
		uint16_t type, text_len, reason_len, nfds;
		uint32_t slot_count, slot_size;
		uint64_t id, a, b;
	} f = {0};
	f.type = (uint16_t)(n > 1 ? (uint8_t)(d[1] - '0') : 0);
	f.text_len = (uint16_t)(n > 2 ? (uint8_t)(d[2] - '0') : 0);
	f.reason_len = (uint16_t)(n > 3 ? (uint8_t)(d[3] - '0') : 0);
	f.nfds = (uint16_t)(n > 4 ? (uint8_t)(d[4] - '0') : 0);
	for (size_t i = 0; i < 4 && 5 + i < n; i++)
		f.slot_count |= (uint32_t)d[5 + i] << (8 * i);
	for (size_t i = 0; i < 4 && 9 + i < n; i++)
		f.slot_size |= (uint32_t)d[9 + i] << (8 * i);
	size_t len = sizeof f;
	memcpy(out, &f, sizeof f);
	for (size_t i = 13; i < n && len < cap; i++)
		out[len++] = d[i];
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (pair[0] < 0 &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		__builtin_trap();
	static uint8_t rec[4096];
	size_t len = build(data, size, rec, sizeof rec);
	if (send(pair[0], rec, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		__builtin_trap();
	struct wire_msg m;
	int r = ki_wire_recv(pair[1], &m);
	if (r == 1) {
		if (m.nfds != 0 || m.type == 0 || m.type >= W_TYPE_MAX ||
		    strnlen(m.text, sizeof m.text) > KITE_CHANNEL_MAX ||
		    strnlen(m.reason, sizeof m.reason) > WIRE_REASON_MAX)
			__builtin_trap();
	} else if (r != -EPROTO && !(r == -EPIPE && len == 0)) {
		__builtin_trap(); /* one record was queued: 0 would be a lost record */
	}
	/* Nothing may be left behind for the next input. */
	if (ki_wire_recv(pair[1], &m) != 0)
		__builtin_trap();
	return 0;
}
