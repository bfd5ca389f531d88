/* Shared by the kite subcommands: exit codes, argument parsing, errors. */
#ifndef KITE_CLI_H
#define KITE_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kite.h"

/* Exit codes, the same for every subcommand (see kite(1)). */
enum {
	EXIT_DONE = 0,    /* did what was asked */
	EXIT_NO = 1,      /* a negative answer: refused, held, not found, lost */
	EXIT_TIMEOUT = 2, /* gave up after --timeout */
	EXIT_USAGE = 100, /* bad arguments */
	EXIT_SYSTEM = 111 /* a system call or the library failed */
};

#define KITE_COMMAND(name, desc) int cmd_##name(int argc, char **argv);
#include "commands.def"
#undef KITE_COMMAND

/* Print "kite CMD: message" and a pointer to --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "kite CMD: message" on stderr; returns code. */
int fail(int code, const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Options the GNU way, whatever $POSIXLY_CORRECT says: options may follow
 * the operands, "--" ends them, and a token that looks like an option is
 * never an operand. Call in a loop as getopt_long (shortopts without a
 * leading '+', '-' or ':'); it returns the next option, 1 with optarg set
 * for an operand, -1 at the end (then argv[optind..argc) are the operands
 * that followed "--"), or '?' after reporting an unknown option or a
 * missing or unwanted value as a usage error of cmd (return EXIT_USAGE). */
int next_option(const char *cmd, int argc, char **argv, const char *shortopts,
		const struct option *longopts);

/* kite_open(), with the bus of ko (else $KITE_BUS): EXIT_DONE, or a bad bus
 * name reported as a usage error of cmd (EXIT_USAGE), or another failure
 * reported as EXIT_SYSTEM. */
int open_bus(const char *cmd, kite **k, const kite_options *ko);
/* cli/lan.c: a handle's LAN counters on stderr (nothing off the LAN), and
 * a warning naming the sysctl when the kernel capped the receive buffer. */
void lan_stats_print(const char *cmd, const kite *k);
void lan_rcvbuf_warn(const char *cmd, const kite *k);

/* Parse a whole non-negative decimal number up to max; 0 or -1. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Parse seconds ("2", "0.5"); into milliseconds; 0 or -1. */
int parse_seconds_ms(const char *s, int64_t *ms_out);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);


/* Write len bytes to out as one line of text: printable ASCII and
 * well-formed UTF-8 as they are; backslash, newline, CR and tab as \\, \n,
 * \r, \t; every other byte (controls, DEL, C1 controls, bytes that are not
 * well-formed UTF-8) as \xHH. printf '%b' gives back the exact bytes. */
void text_escape(FILE *out, const void *data, size_t len);

/* Write a JSON string literal of len bytes to stdout, valid JSON whatever
 * the bytes: well-formed UTF-8 as it is, controls (C1 too) as \\uXXXX, and
 * each byte that is not UTF-8 as U+FFFD (names, claims, command lines;
 * a payload goes through json_payload, which loses nothing). */
void json_string(const char *s, size_t len);

/* Write a message payload as a JSON member: "payload":"..." when it is
 * well-formed UTF-8, else "payload_base64":"..." (RFC 4648), so that any
 * bytes come back exactly. */
void json_payload(const void *data, size_t len);

/* A signal by name ("TERM", "SIGTERM", case-insensitive) or number; the
 * number, or -1. */
int parse_signal(const char *s);

/* "TERM" for SIGTERM; "SIG<n>" in buf for ones without a common name. */
const char *signal_name(int sig, char *buf, size_t size);

/* Make room for one more element in the array *arrp of *cap elements of
 * size bytes when n of them are used (doubling, from first); 0 or -ENOMEM. */
int grow_array(void *arrp, size_t *cap, size_t n, size_t size, size_t first);

#endif
