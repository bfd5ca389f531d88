/* kite bridge: runs the separate program kite-bridge (cli/bridge/), the
 * only part of kite that links libnats, so that kite itself needs libc
 * alone and a machine without libnats still has every other command. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_bridge(int argc, char **argv)
{
	(void)argc;
	/* Beside this kite first (a build tree, or the same bin folder), then
	 * on $PATH. */
	char self[PATH_MAX], path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash && (size_t)snprintf(path, sizeof path, "%.*s/kite-bridge",
					      (int)(slash - self), self) < sizeof path) {
			argv[0] = path;
			execv(path, argv);
		}
	}
	argv[0] = "kite-bridge";
	execvp("kite-bridge", argv);
	if (errno == ENOENT)
		return fail(EXIT_SYSTEM, "bridge", "kite-bridge is not installed (it is "
			    "built only where libnats is: apt install libnats-dev, then make)");
	return fail(EXIT_SYSTEM, "bridge", "cannot run kite-bridge: %s", strerror(errno));
}
