/* kite bridge: one process that carries local kite channels to NATS
 * subjects of the same name and back (cli/bridge/README.md). Only this
 * folder links libnats; it builds the separate program kite-bridge, which
 * `kite bridge` executes. */
#ifndef KITE_BRIDGE_H
#define KITE_BRIDGE_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "kite.h"

/* What the command line asked for. */
struct bridge_config {
	const char *url;
	const char *prefix;          /* NULL: subjects are the channel names */
	const char **exports, **imports;
	int nexports, nimports;
	const char *bus;
	int64_t buffer_bytes;        /* export buffer while the server is away */
	int64_t import_pending;      /* messages a subscription may hold */
	int64_t write_deadline_ms;   /* a server slower than this is dropped */
	int64_t ping_ms;             /* 2 pings unanswered: the server is gone */
	int64_t stats_ms;            /* counters on stderr every ...; 0: at exit */
	const char *statsd;          /* HOST:PORT for counters, or NULL */
	const char *user, *password_file, *token_file, *creds, *nkey, *seed;
	int tls;
	const char *tls_ca, *tls_cert, *tls_key, *tls_hostname;
	int verbose;
};

/* Every count the bridge keeps; most are written by the loop's thread,
 * slow_consumer and the connection's by libnats's callback thread. */
struct bridge_counters {
	_Atomic uint64_t exported;      /* handed to libnats */
	_Atomic uint64_t export_dropped;/* libnats refused: buffer full, too big */
	_Atomic uint64_t local_lost;    /* lost before the bridge (kite rings) */
	_Atomic uint64_t relayed_skipped; /* local messages that had an origin */
	_Atomic uint64_t imported;      /* published on the local bus */
	_Atomic uint64_t import_dropped;/* refused by kite_publish_origin */
	_Atomic uint64_t unmappable;    /* subjects that are no kite channel */
	_Atomic uint64_t own_echoes;    /* our own exports, seen coming back */
	_Atomic uint64_t origin_trimmed;/* origins sent without host/headers */
	_Atomic uint64_t slow_consumer; /* slow-consumer notices */
	_Atomic uint64_t slow_dropped;  /* imports libnats dropped for them */
	_Atomic uint64_t disconnects, reconnects;
};

#define BRIDGE_COUNTERS 13

/* loop.c: what the one thread watches on libnats's behalf. libnats's own
 * threads (reconnection, pings, closing) change it too, under mu, and
 * wake the loop through the eventfd `wake`. */
struct bridge_loop {
	pthread_mutex_t mu;
	natsConnection *nc;        /* as attached (before Connect returns) */
	int fd;                    /* the NATS socket, -1 between connections */
	bool want_read, want_write;
	int64_t progress_ms;       /* the last time the socket took data */
	int wake;                  /* eventfd */
	pthread_t owner;           /* the loop's thread */
};

/* Messages taken in one go each way before the loop writes to the NATS
 * socket and looks at the others: one system call carries a whole batch,
 * and neither direction can starve the other. */
#define BRIDGE_BATCH 1024

struct bridge {
	struct bridge_config cfg;
	struct bridge_counters n;
	kite *exp;                 /* subscribes to the export patterns */
	kite *imp;                 /* publishes what NATS delivers */
	struct bridge_loop loop;   /* the one thread serving both */
	natsConnection *nc;
	natsSubscription **subs;
	natsMsg *retired[BRIDGE_BATCH]; /* done with, destroyed together */
	int nretired;
	size_t retired_bytes;      /* their payloads */
	int64_t retired_since_ms;  /* when the first of them was retired */
	uint64_t id_num;           /* our export handle's id, in Kite-Id */
	char id[17];               /* the same in hex, as printed */
	char host[256];
	volatile sig_atomic_t stop;
	int connected_once;        /* the server was reached at least once */
};

/* loop.c: set up the loop (0, or -1 after printing why), and tell
 * libnats to use it. */
int bridge_loop_init(struct bridge_loop *l);
void bridge_loop_close(struct bridge_loop *l);
natsStatus bridge_loop_options(struct bridge_loop *l, natsOptions *o);

/* Wait up to timeout_ms for the NATS socket (and serve it), the local
 * handle's fd kite_fd and signal_fd (either may be -1); 1 if signal_fd is
 * readable, 0, or -errno. */
int bridge_loop_wait(struct bridge *b, int kite_fd, int signal_fd, int timeout_ms);

/* Write what libnats has buffered, as far as the socket takes it now. */
void bridge_loop_flush_out(struct bridge *b);

/* natsConnection_FlushTimeout, with this thread serving the socket. */
natsStatus bridge_loop_flush(struct bridge *b, int64_t timeout_ms);

/* libnats frees every message on its garbage-collector thread, which
 * sleeps when it has nothing to do: each wake-up is two thread switches,
 * and its frees contend with our mallocs for glibc's arena. So messages
 * we are done with are destroyed together, when BRIDGE_BATCH of them or
 * BRIDGE_RETIRE_BYTES of payload are held, or BRIDGE_RETIRE_MS after the
 * first (the loop asks bridge_retire_due): not once per loop pass, which
 * under load is every few messages. The bounds keep what waits small:
 * at most 1 MiB of payload (or one message), for 20 ms. */
#define BRIDGE_RETIRE_BYTES (1 << 20)
#define BRIDGE_RETIRE_MS 20
void bridge_retire(struct bridge *b, natsMsg *m);
/* Destroy the retired messages if they are due: then, or if none are
 * held, INT64_MAX; else the milliseconds until they are. */
int64_t bridge_retire_due(struct bridge *b, int64_t now);
void bridge_retire_all(struct bridge *b);

/* connect.c: libnats options from the configuration (URL, credentials,
 * TLS, reconnection with backoff, the buffer bound, callbacks), then
 * connect; a server that is not there yet is retried in the background.
 * 0, or -1 after printing why. */
int bridge_connect(struct bridge *b);

/* export.c: send one local message to NATS with the identity headers. */
void bridge_export(struct bridge *b, const kite_msg *m);

/* import.c: subscribe the import patterns on NATS (synchronous
 * subscriptions, read by the loop). 0, or -1 after printing why. */
int bridge_import_start(struct bridge *b);

/* Publish locally what the subscriptions hold, up to max messages; how
 * many were taken. */
int bridge_import_drain(struct bridge *b, int max);

/* The NATS subject of a channel or pattern under the prefix, in out
 * (size bytes); 0, or -1 if it does not fit. */
int bridge_subject(const struct bridge *b, const char *name, char *out, size_t size);

/* counters.c: one line of every counter on stderr (label: "stats" or
 * "final"), and to statsd if asked; 0, or -1 after printing why. */
void bridge_report(struct bridge *b, const char *label);
int bridge_statsd_open(struct bridge *b);

#endif
