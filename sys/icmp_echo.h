/* Internal (not API): ICMP and ICMPv6 echo messages as an unprivileged
 * datagram ping socket (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)) sends and
 * receives them: the kernel strips the IP header, fills in the checksum and
 * the identifier, and delivers only replies that carry our identifier. The
 * checker below trusts none of that and validates every byte it reads. */
#ifndef KITE_ICMP_ECHO_H
#define KITE_ICMP_ECHO_H

#include <stddef.h>
#include <stdint.h>

#define ICMP_ECHO_HEADER 8      /* type, code, checksum, identifier, sequence */
#define ICMP_ECHO_PAYLOAD 56    /* what ping(8) sends by default: 64 bytes in all */
#define ICMP_SEQ_MAP_BYTES (65536 / 8)

/* What a genuine reply to one of our requests looks like. */
struct icmp_echo_expect {
	int family;              /* AF_INET or AF_INET6 */
	uint16_t id;             /* identifier of our socket (host order) */
	const uint8_t *payload;  /* the bytes every request carried */
	size_t payload_len;
	const uint8_t *sent;     /* ICMP_SEQ_MAP_BYTES: bit s set = seq s was sent */
};

/* icmp_echo_check verdicts: 0 for a valid reply, else one of these. */
enum icmp_echo_verdict {
	ICMP_ECHO_OK = 0,
	ICMP_ECHO_SHORT = -1,       /* shorter than an ICMP echo header */
	ICMP_ECHO_NOT_REPLY = -2,   /* another ICMP type (or another family's) */
	ICMP_ECHO_BAD_CODE = -3,    /* echo reply with a non-zero code */
	ICMP_ECHO_OTHER_ID = -4,    /* identifier is not ours */
	ICMP_ECHO_UNSENT_SEQ = -5,  /* a sequence number we never sent */
	ICMP_ECHO_BAD_LENGTH = -6,  /* payload longer or shorter than sent */
	ICMP_ECHO_BAD_PAYLOAD = -7, /* payload bytes differ from what we sent */
	ICMP_ECHO_BAD_EXPECT = -8   /* the expectation itself is unusable */
};

/* Validate len bytes of buf (ICMP header first) as a reply to one of our
 * requests; on ICMP_ECHO_OK, *seq is its sequence number. Reads nothing
 * beyond buf + len. */
int icmp_echo_check(const struct icmp_echo_expect *e, const void *buf, size_t len,
		    uint16_t *seq);

/* One word for a verdict, for diagnostics. */
const char *icmp_echo_verdict_str(int verdict);

/* Write an echo request (identifier 0: the kernel sets it; checksum 0: the
 * kernel computes it) with payload into out. Returns its length, or 0 if
 * cap is too small or family unknown. */
size_t icmp_echo_build(int family, uint16_t seq, const uint8_t *payload, size_t payload_len,
		       uint8_t *out, size_t cap);

/* The sequence number of one of our own echo requests, as the kernel hands
 * it back with an ICMP error (the error queue); -1 if buf is not one. */
int icmp_echo_request_seq(int family, const void *buf, size_t len);

/* ping(8)'s words for an ICMP error type/code ("Destination Host
 * Unreachable"); NULL when there is no special wording. */
const char *icmp_error_str(int family, int type, int code);

/* Mark / test seq in a ICMP_SEQ_MAP_BYTES bitmap. */
static inline void icmp_seq_set(uint8_t *map, uint16_t seq, int on)
{
	if (on)
		map[seq >> 3] |= (uint8_t)(1u << (seq & 7));
	else
		map[seq >> 3] &= (uint8_t)~(1u << (seq & 7));
}
static inline int icmp_seq_get(const uint8_t *map, uint16_t seq)
{
	return (map[seq >> 3] >> (seq & 7)) & 1;
}

#endif
