/* kite: one command, subcommands dispatched from the table in commands.def. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "kite.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *description;
};

static const struct command commands[] = {
#define KITE_COMMAND(name, desc) {#name, cmd_##name, desc},
#include "commands.def"
#undef KITE_COMMAND
	{NULL, NULL, NULL},
};

static void usage(FILE *to)
{
	fprintf(to, "Usage: kite COMMAND [OPTIONS]...\n"
		    "Apps talking to apps through the Linux kernel's own tricks.\n\n"
		    "Commands:\n");
	int width = 0;
	for (size_t i = 0; commands[i].name; i++)
		if ((int)strlen(commands[i].name) > width)
			width = (int)strlen(commands[i].name);
	for (size_t i = 0; commands[i].name; i++)
		fprintf(to, "  %-*s  %s\n", width, commands[i].name,
			commands[i].description);
	fprintf(to, "\n'kite COMMAND --help' describes one command; 'man kite' "
		    "lists exit codes.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return EXIT_DONE;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("kite %s\n", KITE_VERSION);
		return EXIT_DONE;
	}
	for (size_t i = 0; commands[i].name; i++)
		if (!strcmp(name, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "kite: unknown command '%s'\nTry 'kite --help'.\n", name);
	return EXIT_USAGE;
}
