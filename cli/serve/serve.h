/* kite serve: the pieces of the supervisor, one file per concern.
 *   serve.c          options, the client verbs (status, reload, stop)
 *   serve_spec.c     --listen SPEC parsing and binding
 *   serve_loop.c     the supervisor's event loop: signals, timers, exit
 *   serve_gen.c      generations: reloads, readiness, crashes, restarts
 *   serve_spawn.c    starting a process: fds, environment, exec
 *   serve_notify.c   NOTIFY_SOCKET: readiness datagrams
 *   serve_control.c  the control socket @kite-serve/UID/NAME/control
 *   serve_inetd.c    --inetd: one process per connection
 *   serve_handoff.c  --handoff: accepted sockets passed to workers */
#ifndef KITE_CLI_SERVE_H
#define KITE_CLI_SERVE_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SERVE_MAX_LISTEN 16
#define SERVE_MAX_WORKERS 64
#define SERVE_MAX_GENS 4       /* current, starting, and stopping ones */
#define SERVE_MAX_INETD 4096   /* --max-conns ceiling */
#define SERVE_MAX_CLIENTS 16   /* control connections open at once */
#define SERVE_MAX_REFUSED 8    /* refused ones held for their request; the
                                  oldest is dropped first, so a hostile uid
                                  cannot take the owner's slots */
#define SERVE_NAME_MAX 64
#define SERVE_STATUS_MAX 65536 /* bytes of one status answer */

/* ---- serve_spec.c ---- */
struct listen_spec {
	int family;                  /* AF_INET, AF_INET6, AF_UNIX */
	int type;                    /* SOCK_STREAM or SOCK_DGRAM */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char text[128];              /* as given */
	char fdname[64];             /* LISTEN_FDNAMES entry: text, ':' -> '-' */
	char bound[128];             /* the address actually bound (port 0) */
};

/* Parse tcp:PORT, tcp:ADDR:PORT, tcp:[V6]:PORT, udp:..., unix:@name,
 * unix:/path. 0, or -1 with a reason in err. */
int serve_spec_parse(const char *text, struct listen_spec *out, char *err,
		     size_t errlen);
/* Bind and (for streams) listen; the fd is close-on-exec, and non-blocking
 * if asked (kite accepts itself only in --inetd and --handoff modes; a
 * socket-activated server gets a blocking socket, as systemd passes them).
 * fd or -errno. */
int serve_spec_bind(struct listen_spec *s, int backlog, int nonblock);
/* Remove a unix:/path socket file at exit. */
void serve_spec_unlink(const struct listen_spec *s);

/* ---- the supervisor's state ---- */
enum serve_mode { MODE_ACTIVATE, MODE_INETD, MODE_HANDOFF };

struct serve_config {
	const char *name;
	enum serve_mode mode;
	char **argv;                 /* COMMAND... */
	struct listen_spec listen[SERVE_MAX_LISTEN];
	int nlisten;
	int workers;                 /* processes per generation */
	int max_conns;               /* --inetd */
	int notify;                  /* 1: up on READY=1; 0: up when started */
	int64_t ready_timeout_ms;
	int64_t grace_ms;
	int64_t backoff_ms, backoff_max_ms;
	int max_restarts;            /* consecutive quick crashes tolerated */
	int64_t restart_window_ms;   /* a run this long resets the count */
	int backlog;
};

struct proc {
	pid_t pid;                   /* 0: not running */
	int ready;
	int stopping;                /* said STOPPING=1 */
	int handoff_fd;              /* supervisor's end, or -1 */
	int64_t started_ms;
	int64_t restart_at;          /* >0: start again at this time */
	uint64_t handed;             /* connections handed to it */
	char status[128];
};

enum gen_state { GEN_FREE = 0, GEN_STARTING, GEN_UP, GEN_STOPPING };

struct generation {
	enum gen_state state;
	unsigned id;
	int64_t ready_deadline;      /* GEN_STARTING of a reload */
	int64_t kill_at;             /* GEN_STOPPING: SIGKILL after grace */
	int killed;
	struct proc procs[SERVE_MAX_WORKERS];
};

struct control_client {
	int fd;                      /* -1: free */
	int waiting;                 /* 1 reload pending, 2 stop: held open,
	                                3 refused: closed on its request */
	int64_t close_at;            /* >0: closed then if still open */
};

struct serve {
	struct serve_config cfg;
	int listen_fds[SERVE_MAX_LISTEN];
	int epfd, sigfd, notify_fd, control_fd;
	char notify_name[108];       /* "@kite-serve/NAME/notify-<hex>" */
	char fdnames[SERVE_MAX_LISTEN * 65];
	struct generation gens[SERVE_MAX_GENS];
	unsigned next_gen;
	int current;                 /* index into gens, or -1 */
	int reloading;               /* index of the starting generation, or -1 */
	int exiting;
	unsigned control_refused;    /* connections refused (first 10 logged) */
	int child_exited;            /* SIGCHLD seen: waitpid() this round */
	int exit_code;
	int64_t exit_kill_at;        /* while exiting: SIGKILL what is left */
	int64_t exit_giveup_at;      /* ... and stop waiting for it */
	int crashes;                 /* consecutive quick crashes */
	uint64_t restarts;
	struct control_client clients[SERVE_MAX_CLIENTS + SERVE_MAX_REFUSED];
	/* --inetd */
	pid_t inetd[SERVE_MAX_INETD];
	int inetd_count;
	uint64_t inetd_total, inetd_deferred;
	int accepting;               /* listen fds are in the epoll set */
	/* --handoff */
	int pending_conn;            /* accepted, no worker could take it yet */
	struct sockaddr_storage pending_addr;
	socklen_t pending_len;
	unsigned rr;                 /* round-robin start for ties */
	uint64_t handed_total;
	int64_t retry_at;            /* handoff: try the pending conn again */
};

/* epoll data tags: what an fd is. Low 32 bits carry an index. */
enum {
	TAG_SIGNAL = 1, TAG_NOTIFY, TAG_CONTROL, TAG_CLIENT, TAG_LISTEN
};
#define EP_DATA(tag, idx) (((uint64_t)(tag) << 32) | (uint32_t)(idx))

/* Log a state change on stderr: "kite serve NAME: ...". */
void serve_log(const struct serve *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int serve_run(struct serve_config *cfg);        /* the supervisor; exit code */
void serve_reload(struct serve *s, int client); /* client: index or -1 */
void serve_stop(struct serve *s, const char *why);
struct proc *serve_find_pid(struct serve *s, pid_t pid, struct generation **g);
void serve_proc_ready(struct serve *s, struct generation *g, struct proc *p);
int serve_watch(struct serve *s, int fd, uint32_t events, uint64_t data);

/* ---- serve_notify.c ---- */
int serve_notify_open(struct serve *s);
void serve_notify_read(struct serve *s);

/* ---- serve_control.c ---- */
int serve_control_open(struct serve *s);              /* -EADDRINUSE: running */
void serve_control_accept(struct serve *s);
void serve_control_read(struct serve *s, int idx);
void serve_control_reply(struct serve *s, int idx, const char *text, int close_it);
/* Control connections idle too long (or refused ones) are closed. */
int64_t serve_control_deadline(struct serve *s);
void serve_control_timers(struct serve *s, int64_t now);
/* Control names belong to a user: "@kite-serve/OWNER/NAME/control". */
void serve_control_name(const char *name, uid_t owner, char *buf, size_t size);
/* Who holds that name (SO_PEERCRED): 1 held (cr filled; pid 0 if its
 * backlog is full), 0 free, -errno. */
int serve_control_holder(const char *name, uid_t owner, struct ucred *cr);
/* 1 if cr is neither owner nor root: a squatter on the owner's name. */
int serve_control_squatter(const struct ucred *cr, uid_t owner);
/* Report a squatted control name; returns EXIT_NO. */
int serve_control_squatted(const char *name, uid_t owner, const struct ucred *cr);
/* Client side: send verb to the supervisor OWNER runs as NAME, print the
 * answer. */
int serve_control_call(const char *name, uid_t owner, const char *verb,
		       int64_t timeout_ms);

/* ---- serve_inetd.c ---- */
void serve_inetd_accept(struct serve *s, int listen_idx);
int serve_inetd_reaped(struct serve *s, pid_t pid);   /* 1 if it was ours */
void serve_listen_enable(struct serve *s, int on);
/* Accept one connection from listening socket li (EINTR and aborted
 * connections retried); fd, or -1 when none is waiting or on error (logged). */
int serve_accept(struct serve *s, int li, struct sockaddr_storage *ss,
		 socklen_t *len);

/* ---- serve_handoff.c ---- */
void serve_handoff_accept(struct serve *s, int listen_idx);
void serve_handoff_retry(struct serve *s);
int serve_handoff_pair(struct proc *p, int *child_end); /* socketpair; 0/-errno */

/* ---- serve_gen.c ---- */
int serve_gen_first(struct serve *s);            /* generation 1; 0/-errno */
void serve_reap_all(struct serve *s);            /* waitpid until none */
int64_t serve_gen_deadline(struct serve *s);     /* 0: none */
void serve_gen_timers(struct serve *s, int64_t now);
/* The earlier of two deadlines, 0 meaning none (serve_loop.c). */
int64_t serve_earliest(int64_t a, int64_t b);

/* ---- processes, shared by every mode (serve_spawn.c) ---- */
/* Signal the children kite still has (orphans re-parented to it by
 * PR_SET_CHILD_SUBREAPER); how many were signalled. */
int serve_signal_leftovers(int sig);
/* Signal pid's process group (each child leads one), else pid alone. */
void serve_kill(pid_t pid, int sig);
/* Fork COMMAND with fds mapped as the mode wants; pid or -errno. */
pid_t serve_spawn(struct serve *s, unsigned gen_id, int handoff_child_fd,
		  int conn_fd, const char *const *extra_env);

#endif
