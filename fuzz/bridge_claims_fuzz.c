/* Fuzz target: a Kite-Id header value (sys/bridge_claims.c) as kite
 * bridge reads it from any NATS publisher, and a NATS subject mapped to a
 * channel. The input up to its first newline is the header value (a
 * value never holds one); the rest is a subject mapped with the prefix
 * "site1".
 *
 * What parses must be exactly what claims_id_format writes for the parsed
 * fields (the format is canonical: one spelling per claim), every field in
 * its stated range, and the host a pointer into the value; a mapped
 * channel must be a tail of the subject. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge_claims.h"

const char *const fuzz_seeds[] = {
	"1 00000000000000ab 00000000000000ff 9 4242 1000 100 1700000000123456789 host-a",
	"1 ffffffffffffffff 0000000000000000 9223372036854775807 2147483647 4294967294 "
	"4294967294 18446744073709551615 h",
	"1 00000000000000ab 00000000000000ff 09 4242 1000 100 1 host-a",
	"2 00000000000000ab 00000000000000ff 9 4242 1000 100 1 host-a",
	"1 00000000000000ab 00000000000000ff 9 4242 1000 100 1 host a",
	"x\nsite1.orders.eu",
	"\nsite10.x",
	"\nsite1..a",
	NULL,
};

static void check_id(const char *value)
{
	struct claims_id id;
	if (claims_id_parse(value, &id))
		return;
	size_t vlen = strlen(value);
	if (id.host < value || id.host >= value + vlen || !claims_host_valid(id.host))
		__builtin_trap();
	if (id.seq < 1 || id.seq > INT64_MAX || id.pid < 0 || id.pid > INT32_MAX ||
	    id.uid < 0 || id.uid > 0xfffffffeLL || id.gid < 0 || id.gid > 0xfffffffeLL)
		__builtin_trap();
	kite_msg m = {.publisher = id.publisher, .seq = id.seq, .pid = (pid_t)id.pid,
		      .uid = (uid_t)id.uid, .gid = (gid_t)id.gid,
		      .timestamp_ns = id.time_ns};
	char again[CLAIMS_ID_MAX];
	int n = claims_id_format(again, id.bridge, &m, id.host);
	if (n < 0 || (size_t)n != vlen || memcmp(again, value, vlen))
		__builtin_trap();
}

static void check_channel(const char *subject)
{
	const char *c = claims_channel("site1", subject);
	size_t slen = strlen(subject);
	if (c && (c < subject || c > subject + slen || c + strlen(c) != subject + slen ||
		  strncmp(subject, "site1.", 6)))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 2);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = text[size + 1] = 0;
	char *subject = memchr(text, '\n', size);
	if (subject)
		*subject++ = 0;
	check_id(text);
	if (subject)
		check_channel(subject);
	free(text);
	return 0;
}
