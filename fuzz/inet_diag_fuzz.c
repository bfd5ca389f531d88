/* Fuzz target: sock_diag replies. Each input is parsed twice: as a raw
 * buffer of netlink messages, and as the payload of one well-framed
 * SOCK_DIAG_BY_FAMILY message (so mutations reach the inet_diag_msg fields
 * even though the seeds below cannot hold NUL bytes). */
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "inet_diag.h"

const char *const fuzz_seeds[] = {
	/* family AF_INET (2), state LISTEN (10), then ports and addresses */
	"\x02\x0a\x01\x01\x1f\x90\x01\x01\x7f\x01\x01\x01",
	"\x0a\x0a\x01\x01\x23\x82\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01",
	"\x02\x07\x01\x01\x00\x35\x01\x01\x7f\x01\x01\x01\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02"
	"\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03"
	"\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04\x04",
	/* a raw header: length 0x48, type 20 (SOCK_DIAG_BY_FAMILY) */
	"\x48\x01\x01\x01\x14\x01\x01\x01",
	NULL,
};

static int check(const struct inet_entry *e, void *arg)
{
	(void)arg;
	if (e->family != AF_INET && e->family != AF_INET6)
		__builtin_trap();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int done;
	unsigned skipped = 0;
	inet_diag_parse(data, size, check, NULL, &skipped, &done);
	if (size > 4096)
		return 0;
	unsigned char *buf = malloc(sizeof(struct nlmsghdr) + size);
	if (!buf)
		return 0;
	struct nlmsghdr h = {.nlmsg_len = (uint32_t)(sizeof h + size),
			     .nlmsg_type = SOCK_DIAG_BY_FAMILY};
	memcpy(buf, &h, sizeof h);
	if (size)
		memcpy(buf + sizeof h, data, size);
	inet_diag_parse(buf, sizeof h + size, check, NULL, &skipped, &done);
	free(buf);
	return 0;
}
