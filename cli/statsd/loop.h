/* kite statsd: the daemon, for the command line (statsd.c). */
#ifndef KITE_CLI_STATSD_LOOP_H
#define KITE_CLI_STATSD_LOOP_H

#include "statsd.h"

/* Run until SIGTERM/SIGINT; config_path may be NULL, overrides are the
 * command line's key, value pairs (applied again after each reload).
 * Returns an exit code. */
int statsd_run(const struct statsd_config *cfg, const char *config_path,
	       char **overrides, int n_overrides);

#endif
