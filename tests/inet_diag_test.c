/* The sock_diag reply parser: messages built here, well-formed and hostile
 * (every length wrong in turn), and a live dump that finds our listener. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "inet_diag.h"

struct seen {
	unsigned n;
	struct inet_entry last;
	unsigned long want; /* stop when this inode shows up (live test) */
};

static int count_cb(const struct inet_entry *e, void *arg)
{
	struct seen *s = arg;
	s->n++;
	s->last = *e;
	return s->want && e->inode == s->want ? 7 : 0;
}

/* Append a message of type with payload to buf at *off; returns its start. */
static size_t put(unsigned char *buf, size_t *off, uint16_t type, const void *payload,
		  size_t plen)
{
	struct nlmsghdr h = {.nlmsg_len = (uint32_t)(sizeof h + plen), .nlmsg_type = type};
	size_t at = *off;
	memcpy(buf + at, &h, sizeof h);
	memcpy(buf + at + sizeof h, payload, plen);
	*off += NLMSG_ALIGN(h.nlmsg_len);
	return at;
}

static struct inet_diag_msg listener4(uint16_t port, uint32_t inode)
{
	struct inet_diag_msg m;
	memset(&m, 0, sizeof m);
	m.idiag_family = AF_INET;
	m.idiag_state = 10;
	m.id.idiag_sport = htons(port);
	m.id.idiag_src[0] = htonl(INADDR_LOOPBACK);
	m.idiag_uid = 1000;
	m.idiag_inode = inode;
	return m;
}

static void well_formed(void **state)
{
	unsigned char buf[1024];
	size_t off = 0;
	struct inet_diag_msg m = listener4(8080, 4242);
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	m = listener4(9090, 4343);
	m.idiag_family = AF_INET6;
	memcpy(m.id.idiag_src, &in6addr_loopback, 16);
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	int zero = 0;
	put(buf, &off, NLMSG_DONE, &zero, sizeof zero);
	struct seen s = {0};
	unsigned skipped = 0;
	int done = 0;
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, &skipped, &done), 0);
	assert_true(done);
	assert_int_equal(s.n, 2);
	assert_int_equal(skipped, 0);
	assert_int_equal(s.last.family, AF_INET6);
	assert_int_equal(s.last.local_port, 9090);
	assert_memory_equal(s.last.local, &in6addr_loopback, 16);
	assert_int_equal(s.last.state, 10);
	assert_int_equal(s.last.uid, 1000);
	assert_int_equal(s.last.inode, 4343);
	/* Without DONE: more is to come. */
	memset(&s, 0, sizeof s);
	m = listener4(1, 2);
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 0);
	assert_false(done);
	assert_int_equal(s.n, 1);
}

static void hostile(void **state)
{
	unsigned char buf[1024];
	struct inet_diag_msg m = listener4(8080, 1);
	struct seen s;
	unsigned skipped;
	int done;
	size_t off;

	/* nlmsg_len below the header, and beyond the buffer. */
	for (uint32_t bad_len = 0; bad_len < sizeof(struct nlmsghdr); bad_len++) {
		off = 0;
		size_t at = put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
		memcpy(buf + at, &bad_len, 4);
		memset(&s, 0, sizeof s);
		assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), -EBADMSG);
		assert_int_equal(s.n, 0);
	}
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	memset(&s, 0, sizeof s);
	assert_int_equal(inet_diag_parse(buf, off - 1, count_cb, &s, NULL, &done), -EBADMSG);
	assert_int_equal(s.n, 0);
	/* Every truncation of a valid buffer: never a read past len (ASan),
	 * never an entry from a cut message. */
	for (size_t cut = 0; cut < off; cut++) {
		memset(&s, 0, sizeof s);
		inet_diag_parse(buf, cut, count_cb, &s, NULL, &done);
		assert_int_equal(s.n, 0);
	}
	/* A payload too short for inet_diag_msg, an unknown type, an unknown
	 * family: skipped and counted; the good one after them still read. */
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m - 1);
	put(buf, &off, 0x7777, &m, sizeof m);
	struct inet_diag_msg odd = m;
	odd.idiag_family = AF_UNIX;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &odd, sizeof odd);
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	memset(&s, 0, sizeof s);
	skipped = 0;
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, &skipped, &done), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(skipped, 3);
	/* NLMSG_ERROR carries the kernel's errno; a short one is malformed. */
	int err[5] = {-EPERM};
	off = 0;
	put(buf, &off, NLMSG_ERROR, err, sizeof err);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), -EPERM);
	off = 0;
	put(buf, &off, NLMSG_ERROR, err, 2);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), -EBADMSG);
	/* A header that ends where the buffer does, with a padded length: the
	 * alignment step must not run past len. */
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m - 3);
	memset(&s, 0, sizeof s);
	assert_int_equal(inet_diag_parse(buf, off - 3, count_cb, &s, NULL, &done), 0);
	/* A callback's verdict stops the walk and is returned. */
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	put(buf, &off, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
	memset(&s, 0, sizeof s);
	s.want = 1;
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 7);
	assert_int_equal(s.n, 1);
}

/* A message with attributes after it: the IPv6 socket's INET_DIAG_SKV6ONLY
 * and the bound device (idiag_if) reach the entry; attributes with lying
 * lengths are ignored without a read past the message. */
static void attributes(void **state)
{
	unsigned char msg[256], buf[1024];
	struct inet_diag_msg m = listener4(8080, 5);
	m.idiag_family = AF_INET6;
	m.id.idiag_if = 3;
	size_t mlen = NLMSG_ALIGN(sizeof m);
	memset(msg, 0, sizeof msg);
	memcpy(msg, &m, sizeof m);
	struct nlattr other = {.nla_len = sizeof(struct nlattr) + 4, .nla_type = INET_DIAG_MARK};
	memcpy(msg + mlen, &other, sizeof other);
	struct nlattr v6 = {.nla_len = sizeof(struct nlattr) + 1, .nla_type = INET_DIAG_SKV6ONLY};
	size_t v6at = mlen + NLA_ALIGN(other.nla_len);
	memcpy(msg + v6at, &v6, sizeof v6);
	msg[v6at + sizeof v6] = 1;
	size_t total = v6at + NLA_ALIGN(v6.nla_len);
	struct seen s = {0};
	int done;
	size_t off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, msg, total);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.last.v6only, 1);
	assert_int_equal(s.last.ifindex, 3);
	/* Dual-stack: the flag 0. */
	msg[v6at + sizeof v6] = 0;
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, msg, total);
	memset(&s, 0, sizeof s);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 0);
	assert_int_equal(s.last.v6only, 0);
	/* No attribute: unknown. An attribute cut by the message's end, or
	 * one claiming more than the message holds, or less than its own
	 * header: the entry is still read, the flag stays unknown. */
	static const uint16_t lies[] = {0, 1, 3, 200, 0xffff};
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		unsigned char bad[256];
		memcpy(bad, msg, total);
		struct nlattr a = {.nla_len = lies[i], .nla_type = INET_DIAG_SKV6ONLY};
		memcpy(bad + mlen, &a, sizeof a);
		off = 0;
		put(buf, &off, SOCK_DIAG_BY_FAMILY, bad, mlen + sizeof a);
		memset(&s, 0, sizeof s);
		assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.last.v6only, -1);
	}
	/* IPv4 never has the flag, whatever a message says. */
	m.idiag_family = AF_INET;
	memcpy(msg, &m, sizeof m);
	msg[v6at + sizeof v6] = 1;
	off = 0;
	put(buf, &off, SOCK_DIAG_BY_FAMILY, msg, total);
	memset(&s, 0, sizeof s);
	assert_int_equal(inet_diag_parse(buf, off, count_cb, &s, NULL, &done), 0);
	assert_int_equal(s.last.v6only, -1);
}

static void live(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 1), 0);
	socklen_t len = sizeof sa;
	getsockname(fd, (struct sockaddr *)&sa, &len);
	struct stat st;
	fstat(fd, &st);
	struct seen s = {.want = (unsigned long)st.st_ino};
	int rc = inet_diag_each(AF_INET, IPPROTO_TCP, 1u << 10, count_cb, &s, NULL);
	if (rc == -EPROTONOSUPPORT || rc == -ENOENT) {
		close(fd);
		skip(); /* no sock_diag in this kernel: kite falls back to /proc */
	}
	assert_int_equal(rc, 7);
	assert_int_equal(s.last.local_port, ntohs(sa.sin_port));
	assert_int_equal(s.last.state, 10);
	assert_int_equal(s.last.uid, getuid());
	/* Filtered by the kernel: a listener is not in the ESTABLISHED dump. */
	memset(&s, 0, sizeof s);
	s.want = (unsigned long)st.st_ino;
	assert_int_equal(inet_diag_each(AF_INET, IPPROTO_TCP, 1u << 1, count_cb, &s, NULL), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed),
		cmocka_unit_test(hostile),
		cmocka_unit_test(attributes),
		cmocka_unit_test(live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
