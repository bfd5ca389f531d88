/* chan_zmq.c — the ZeroMQ peer of the local-channel benchmark: PUB/SUB
 * over ipc:// (Unix sockets), configured so that nothing is dropped
 * silently: high-water marks 0 (unlimited) on both sides, and for the
 * throughput publisher an XPUB with ZMQ_XPUB_NODROP, which also tells us
 * when every subscriber has subscribed. Subscribers count what arrived.
 *
 *   pub   XPUB bind <where>/data     sub   SUB connect <where>/data
 *   ping  PUB bind <where>/ping,     pong  SUB connect <where>/ping,
 *         SUB bind <where>/pong            PUB connect <where>/pong
 */
#include "lib/chan_harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct zt {
	const struct chan_args *a;
	void *ctx, *out, *in;
	zmq_msg_t msg;
	int have_msg;
};

static int zfail(const char *what)
{
	fprintf(stderr, "chan: zmq: %s: %s\n", what, zmq_strerror(zmq_errno()));
	return -1;
}

static int set_int(void *s, int opt, int v, const char *what)
{
	return zmq_setsockopt(s, opt, &v, sizeof v) == 0 ? 0 : zfail(what);
}

/* A socket of `type`, bound or connected to <where>/<name>. */
static void *endpoint(struct zt *z, int type, const char *name, int bind)
{
	char addr[4096];
	snprintf(addr, sizeof addr, "ipc://%s/%s", z->a->where, name);
	void *s = zmq_socket(z->ctx, type);
	if (!s) {
		zfail("zmq_socket");
		return NULL;
	}
	if (set_int(s, ZMQ_SNDHWM, 0, "ZMQ_SNDHWM") ||
	    set_int(s, ZMQ_RCVHWM, 0, "ZMQ_RCVHWM") ||
	    /* A publisher stays until its whole queue is out (a finite
	     * linger would drop the rest silently when subscribers are slow;
	     * the harness's alarm bounds a hang); a subscriber has nothing
	     * worth waiting for (only its subscription to resend). */
	    set_int(s, ZMQ_LINGER, type == ZMQ_SUB ? 0 : -1, "ZMQ_LINGER") ||
	    set_int(s, ZMQ_RCVTIMEO, CHAN_BLOCK_MS, "ZMQ_RCVTIMEO"))
		return NULL;
	if (type == ZMQ_XPUB &&
	    (set_int(s, ZMQ_XPUB_NODROP, 1, "ZMQ_XPUB_NODROP") ||
	     set_int(s, ZMQ_XPUB_VERBOSE, 1, "ZMQ_XPUB_VERBOSE")))
		return NULL;
	if (type == ZMQ_SUB && zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) != 0) {
		zfail("ZMQ_SUBSCRIBE");
		return NULL;
	}
	if ((bind ? zmq_bind(s, addr) : zmq_connect(s, addr)) != 0) {
		zfail(addr);
		return NULL;
	}
	return s;
}

static void *z_open(const struct chan_args *a)
{
	struct zt *z = calloc(1, sizeof *z);
	if (!z || !(z->ctx = zmq_ctx_new()))
		return NULL;
	z->a = a;
	zmq_msg_init(&z->msg);
	switch (a->role) {
	case ROLE_PUB:
		z->out = endpoint(z, ZMQ_XPUB, "data", 1);
		return z->out ? z : NULL;
	case ROLE_SUB:
		z->in = endpoint(z, ZMQ_SUB, "data", 0);
		return z->in ? z : NULL;
	case ROLE_PING:
		z->out = endpoint(z, ZMQ_PUB, "ping", 1);
		z->in = z->out ? endpoint(z, ZMQ_SUB, "pong", 1) : NULL;
		return z->in ? z : NULL;
	default:
		z->in = endpoint(z, ZMQ_SUB, "ping", 0);
		z->out = z->in ? endpoint(z, ZMQ_PUB, "pong", 0) : NULL;
		return z->out ? z : NULL;
	}
}

static int z_send(void *t, const void *buf, size_t len)
{
	struct zt *z = t;
	return zmq_send(z->out, buf, len, 0) == (int)len ? 0 : zfail("zmq_send");
}

static int z_recv(void *t, struct chan_msg *m, int timeout_ms, uint64_t *lost)
{
	struct zt *z = t;
	(void)lost; /* with HWM 0 and NODROP nothing is dropped */
	if (z->have_msg)
		zmq_msg_close(&z->msg);
	zmq_msg_init(&z->msg);
	z->have_msg = 1;
	if (zmq_msg_recv(&z->msg, z->in, timeout_ms == 0 ? ZMQ_DONTWAIT : 0) < 0)
		return zmq_errno() == EAGAIN ? 0 : zfail("zmq_msg_recv");
	m->data = zmq_msg_data(&z->msg);
	m->len = zmq_msg_size(&z->msg);
	m->seq = 0;
	return 1;
}

/* Each subscription reaches the XPUB as a message "\x01<topic>". */
static int z_wait_subscribers(void *t, unsigned subs, int timeout_ms)
{
	struct zt *z = t;
	unsigned char b[64];
	unsigned seen = 0;
	set_int(z->out, ZMQ_RCVTIMEO, timeout_ms, "ZMQ_RCVTIMEO");
	while (seen < subs) {
		int n = zmq_recv(z->out, b, sizeof b, 0);
		if (n < 0)
			return zfail("waiting for subscriptions");
		if (n >= 1 && b[0] == 1)
			seen++;
	}
	return 0;
}

static void z_close(void *t)
{
	struct zt *z = t;
	if (z->have_msg)
		zmq_msg_close(&z->msg);
	if (z->in)
		zmq_close(z->in);
	if (z->out)
		zmq_close(z->out);
	zmq_ctx_term(z->ctx); /* lingers until queued messages are out */
	free(z);
}

static const struct chan_ops zmq_ops = {
	.name = "zmq",
	.open = z_open,
	.send = z_send,
	.recv = z_recv,
	.wait_subscribers = z_wait_subscribers,
	.close = z_close,
};

int main(int argc, char **argv)
{
	return chan_main(&zmq_ops, argc, argv);
}
