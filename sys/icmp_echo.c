/* ICMP/ICMPv6 echo requests and the validation of replies (see icmp_echo.h).
 * Byte offsets are spelled out instead of casting to struct icmphdr: the
 * buffer may be short or unaligned, and every read is checked against len. */
#include <string.h>
#include <sys/socket.h>

#include "icmp_echo.h"

enum {
	V4_ECHO_REPLY = 0, V4_ECHO_REQUEST = 8,
	V6_ECHO_REQUEST = 128, V6_ECHO_REPLY = 129
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int icmp_echo_check(const struct icmp_echo_expect *e, const void *buf, size_t len,
		    uint16_t *seq)
{
	const uint8_t *p = buf;
	if (!e || !buf || !e->sent || (e->payload_len && !e->payload) ||
	    (e->family != AF_INET && e->family != AF_INET6))
		return ICMP_ECHO_BAD_EXPECT;
	if (len < ICMP_ECHO_HEADER)
		return ICMP_ECHO_SHORT;
	if (p[0] != (e->family == AF_INET ? V4_ECHO_REPLY : V6_ECHO_REPLY))
		return ICMP_ECHO_NOT_REPLY;
	if (p[1] != 0)
		return ICMP_ECHO_BAD_CODE;
	if (be16(p + 4) != e->id)
		return ICMP_ECHO_OTHER_ID;
	uint16_t s = be16(p + 6);
	if (!icmp_seq_get(e->sent, s))
		return ICMP_ECHO_UNSENT_SEQ;
	if (len - ICMP_ECHO_HEADER != e->payload_len)
		return ICMP_ECHO_BAD_LENGTH;
	if (e->payload_len && memcmp(p + ICMP_ECHO_HEADER, e->payload, e->payload_len))
		return ICMP_ECHO_BAD_PAYLOAD;
	*seq = s;
	return ICMP_ECHO_OK;
}

const char *icmp_echo_verdict_str(int verdict)
{
	switch (verdict) {
	case ICMP_ECHO_OK: return "ok";
	case ICMP_ECHO_SHORT: return "too short";
	case ICMP_ECHO_NOT_REPLY: return "not an echo reply";
	case ICMP_ECHO_BAD_CODE: return "non-zero code";
	case ICMP_ECHO_OTHER_ID: return "another identifier";
	case ICMP_ECHO_UNSENT_SEQ: return "sequence never sent";
	case ICMP_ECHO_BAD_LENGTH: return "wrong length";
	case ICMP_ECHO_BAD_PAYLOAD: return "payload differs";
	default: return "bad expectation";
	}
}

size_t icmp_echo_build(int family, uint16_t seq, const uint8_t *payload, size_t payload_len,
		       uint8_t *out, size_t cap)
{
	if ((family != AF_INET && family != AF_INET6) || cap < ICMP_ECHO_HEADER ||
	    payload_len > cap - ICMP_ECHO_HEADER)
		return 0;
	memset(out, 0, ICMP_ECHO_HEADER);
	out[0] = family == AF_INET ? V4_ECHO_REQUEST : V6_ECHO_REQUEST;
	out[6] = (uint8_t)(seq >> 8);
	out[7] = (uint8_t)seq;
	if (payload_len)
		memcpy(out + ICMP_ECHO_HEADER, payload, payload_len);
	return ICMP_ECHO_HEADER + payload_len;
}

int icmp_echo_request_seq(int family, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (!buf || len < ICMP_ECHO_HEADER)
		return -1;
	if (p[0] != (family == AF_INET ? V4_ECHO_REQUEST : V6_ECHO_REQUEST) || p[1] != 0)
		return -1;
	return be16(p + 6);
}

const char *icmp_error_str(int family, int type, int code)
{
	if (family == AF_INET) {
		if (type == 3) {
			static const char *const unreach[] = {
				"Destination Net Unreachable", "Destination Host Unreachable",
				"Destination Protocol Unreachable", "Destination Port Unreachable",
				"Frag needed and DF set", "Source Route Failed",
				"Destination Net Unknown", "Destination Host Unknown",
				"Source Host Isolated", "Destination Net Prohibited",
				"Destination Host Prohibited", "Destination Net Unreachable for Type of Service",
				"Destination Host Unreachable for Type of Service",
				"Packet filtered", "Precedence Violation", "Precedence Cutoff"};
			if (code >= 0 && code < (int)(sizeof unreach / sizeof *unreach))
				return unreach[code];
			return "Destination Unreachable";
		}
		if (type == 11)
			return code == 0 ? "Time to live exceeded" : "Frag reassembly time exceeded";
		if (type == 12)
			return "Parameter problem";
		return NULL;
	}
	if (type == 1) {
		static const char *const unreach6[] = {
			"No route", "Administratively prohibited", "Beyond scope of source address",
			"Address unreachable", "Port unreachable", "Source address failed ingress/egress policy",
			"Reject route to destination"};
		if (code >= 0 && code < (int)(sizeof unreach6 / sizeof *unreach6))
			return unreach6[code];
		return "Destination unreachable";
	}
	if (type == 2)
		return "Packet too big";
	if (type == 3)
		return "Time exceeded";
	if (type == 4)
		return "Parameter problem";
	return NULL;
}
