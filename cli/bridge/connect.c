/* The NATS connection: every option libnats takes from our command line,
 * and the callbacks that make its state visible (stderr and counters). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cli.h"

/* Reconnect backoff: 100 ms doubling to 5 s (libnats adds no jitter of
 * its own to a custom delay; ours is small and random enough). */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	(void)nc;
	(void)closure;
	int64_t ms = 100;
	for (int i = 1; i < attempts && ms < 5000; i++)
		ms *= 2;
	if (ms > 5000)
		ms = 5000;
	return ms + (int64_t)(nats_Now() % 50);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct bridge *b = closure;
	if (b->stop)
		return; /* our own close */
	const char *why = NULL;
	natsConnection_GetLastError(nc, &why);
	atomic_fetch_add(&b->n.disconnects, 1);
	fprintf(stderr, "kite bridge: disconnected from %s%s%s; buffering exports up to "
		"%lld bytes, then dropping (counted)\n", b->cfg.url, why && *why ? ": " : "",
		why && *why ? why : "", (long long)b->cfg.buffer_bytes);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct bridge *b = closure;
	atomic_fetch_add(&b->n.reconnects, 1);
	fprintf(stderr, "kite bridge: connected to %s again\n", b->cfg.url);
}

static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	struct bridge *b = closure;
	fprintf(stderr, "kite bridge: connected to %s (it was not there at start)\n",
		b->cfg.url);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
		     void *closure)
{
	(void)nc;
	struct bridge *b = closure;
	if (err == NATS_SLOW_CONSUMER) {
		/* libnats reports it once per burst; count the notices, and the
		 * messages it dropped appear in the final report. */
		atomic_fetch_add(&b->n.slow_consumer, 1);
		fprintf(stderr, "kite bridge: slow consumer: imports on %s arrive faster "
			"than the local bus takes them; libnats drops beyond %lld pending\n",
			sub ? natsSubscription_GetSubject(sub) : "?",
			(long long)b->cfg.import_pending);
		return;
	}
	fprintf(stderr, "kite bridge: NATS error: %s\n", natsStatus_GetText(err));
}

/* Read a secret from a file (never from the command line, where ps shows
 * it): the first line, without its newline. */
static int read_secret(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "kite bridge: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int ok = fgets(out, (int)size, f) != NULL;
	fclose(f);
	if (!ok) {
		fprintf(stderr, "kite bridge: %s: empty\n", path);
		return -1;
	}
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

static natsStatus auth_options(struct bridge *b, natsOptions *o)
{
	const struct bridge_config *c = &b->cfg;
	char secret[4096];
	natsStatus s = NATS_OK;
	if (c->user) {
		if (c->password_file && read_secret(c->password_file, secret, sizeof secret))
			return NATS_INVALID_ARG;
		s = natsOptions_SetUserInfo(o, c->user, c->password_file ? secret : NULL);
	}
	if (s == NATS_OK && c->token_file) {
		if (read_secret(c->token_file, secret, sizeof secret))
			return NATS_INVALID_ARG;
		s = natsOptions_SetToken(o, secret);
	}
	explicit_bzero(secret, sizeof secret);
	if (s == NATS_OK && c->creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL);
	if (s == NATS_OK && c->nkey)
		s = natsOptions_SetNKeyFromSeed(o, c->nkey, c->seed);
	return s;
}

static natsStatus tls_options(struct bridge *b, natsOptions *o)
{
	const struct bridge_config *c = &b->cfg;
	natsStatus s = NATS_OK;
	if (c->tls || c->tls_ca || c->tls_cert || !strncmp(c->url, "tls://", 6))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && c->tls_ca)
		s = natsOptions_LoadCATrustedCertificates(o, c->tls_ca);
	if (s == NATS_OK && c->tls_cert)
		s = natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key);
	if (s == NATS_OK && c->tls_hostname)
		s = natsOptions_SetExpectedHostname(o, c->tls_hostname);
	return s;
}

int bridge_connect(struct bridge *b)
{
	const struct bridge_config *c = &b->cfg;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, c->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "kite-bridge");
	/* The server never sends us what we published: our exports cannot
	 * come back as imports (the bridge id in Kite-Id is checked too, in import.c). */
	if (s == NATS_OK)
		s = natsOptions_SetNoEcho(o, true);
	/* No reader or flusher thread: the bridge's loop serves the socket. */
	if (s == NATS_OK)
		s = bridge_loop_options(&b->loop, o);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, (int)c->buffer_bytes);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPendingMsgs(o, (int)c->import_pending);
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(o, c->write_deadline_ms);
	/* A stopped server takes what fits in the sockets' buffers and never
	 * answers: its silence to our pings is what reveals it. */
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, c->ping_ms);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, 2);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, b);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_error, b);
	if (s == NATS_OK)
		s = auth_options(b, o);
	if (s == NATS_OK)
		s = tls_options(b, o);
	/* First a plain attempt, so that refused credentials or a certificate
	 * that does not verify are an error now (exit 111), not retried for
	 * ever; a server that is not there yet is retried in the background. */
	if (s == NATS_OK)
		s = natsConnection_Connect(&b->nc, o);
	if (s == NATS_NO_SERVER) {
		s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, b);
		if (s == NATS_OK)
			s = natsConnection_Connect(&b->nc, o);
		if (s == NATS_NOT_YET_CONNECTED) {
			fprintf(stderr, "kite bridge: %s is not there yet; retrying in the "
				"background, exports wait in the local rings meanwhile\n", c->url);
			s = NATS_OK;
		}
	}
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		const char *text = nats_GetLastError(NULL);
		fprintf(stderr, "kite bridge: cannot connect to %s: %s\n", c->url,
			text && *text ? text : natsStatus_GetText(s));
		return -1;
	}
	return 0;
}
