/* Fuzz target: a buffer of netlink replies to a unix_diag dump, as
 * ki_unix_diag_parse frames it (what kite ls finds handles with). Whatever
 * the bytes: no read past the buffer, names NUL-terminated within their
 * limit, path_len their length.
 *
 * Input starting with 'N' is built from text: byte 1 message type ('0'
 * SOCK_DIAG_BY_FAMILY, '1' NLMSG_DONE, '2' NLMSG_ERROR, else raw), byte 2
 * state, byte 3 attribute type, then the name. Anything else is parsed as
 * it is. */
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "unix_diag.h"

const char *const fuzz_seeds[] = {
	"N0:\x01" "kite/bus/0123456789abcdef", "N0:\x02/run/x.sock", "N1", "N2",
	"N0:\x01", "N0\x01\x01" "a", "garbage", "",
	NULL,
};

static int check(const struct unix_entry *e, void *arg)
{
	(void)arg;
	if (e->path_len > UNIX_ENTRY_PATH_MAX || strlen(e->path) != e->path_len)
		__builtin_trap();
	return 0;
}

static size_t build(const uint8_t *d, size_t n, uint8_t *out, size_t cap)
{
	if (n < 1 || d[0] != 'N') {
		size_t len = n < cap ? n : cap;
		memcpy(out, d, len);
		return len;
	}
	static const uint16_t types[] = {SOCK_DIAG_BY_FAMILY, NLMSG_DONE, NLMSG_ERROR};
	struct nlmsghdr h = {0};
	struct unix_diag_msg m = {0};
	struct nlattr a = {0};
	uint8_t t = n > 1 ? (uint8_t)(d[1] - '0') : 0;
	h.nlmsg_type = t < 3 ? types[t] : t;
	m.udiag_family = AF_UNIX;
	m.udiag_type = SOCK_SEQPACKET;
	m.udiag_state = n > 2 ? (uint8_t)(d[2] - '0') : 0;
	a.nla_type = n > 3 ? d[3] : UNIX_DIAG_NAME;
	size_t name = n > 4 ? n - 4 : 0;
	if (name > 200)
		name = 200;
	a.nla_len = (uint16_t)(sizeof a + 1 + name);
	size_t len = sizeof h + NLMSG_ALIGN(sizeof m) + NLA_ALIGN(a.nla_len);
	if (len > cap)
		return 0;
	memset(out, 0, len);
	h.nlmsg_len = (uint32_t)len;
	memcpy(out, &h, sizeof h);
	memcpy(out + sizeof h, &m, sizeof m);
	uint8_t *at = out + sizeof h + NLMSG_ALIGN(sizeof m);
	memcpy(at, &a, sizeof a);
	at[sizeof a] = 0; /* abstract */
	if (name)
		memcpy(at + sizeof a + 1, d + 4, name);
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[8192];
	size_t len = build(data, size, buf, sizeof buf);
	int done = 0;
	unsigned skipped = 0;
	ki_unix_diag_parse(buf, len, check, NULL, &skipped, &done);
	return 0;
}
