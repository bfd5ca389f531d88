/* Fuzz target: one datagram from an ICMP or ICMPv6 ping socket, checked as
 * a reply (src/icmp_echo.c). The first input byte picks the family and
 * which sequence numbers count as sent; the rest is the datagram. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "icmp_echo.h"

const char *const fuzz_seeds[] = {
	/* IPv4 echo reply, id 0x1234, seq 1, payload "abcd" */
	"\x01\x00\x00\x00\x00\x12\x34\x00\x01" "abcd",
	/* ICMPv6 echo reply, seq 2 */
	"\x02\x81\x00\x00\x00\x12\x34\x00\x02" "abcd",
	/* destination unreachable */
	"\x01\x03\x01\x00\x00\x12\x34\x00\x01" "abcd",
	"\x03\x81\x00",
	"\x00",
	NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t payload[] = "abcd";
	uint8_t sent[ICMP_SEQ_MAP_BYTES];
	if (size < 1)
		return 0;
	memset(sent, (data[0] & 4) ? 0xff : 0x00, sizeof sent);
	icmp_seq_set(sent, 1, 1);
	icmp_seq_set(sent, 2, 1);
	struct icmp_echo_expect e = {.family = (data[0] & 1) ? AF_INET : AF_INET6,
				     .id = 0x1234, .payload = payload,
				     .payload_len = (data[0] & 2) ? 0 : 4, .sent = sent};
	uint16_t seq = 0;
	int v = icmp_echo_check(&e, data + 1, size - 1, &seq);
	/* The contract: a valid reply is at least a header plus the payload,
	 * has a sequence number we sent, and echoes our identifier. */
	if (v == ICMP_ECHO_OK) {
		if (size - 1 != ICMP_ECHO_HEADER + e.payload_len || !icmp_seq_get(sent, seq) ||
		    data[1 + 4] != 0x12 || data[1 + 5] != 0x34)
			__builtin_trap();
	}
	(void)icmp_echo_verdict_str(v);
	(void)icmp_echo_request_seq(e.family, data + 1, size - 1);
	if (size >= 3)
		(void)icmp_error_str(e.family, data[1], data[2]);
	return 0;
}
