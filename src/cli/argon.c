/* argon: the command line. `argon run` boots a VM directly in argon-vmm (no daemon):
 * the default guest into its prompt, or one guest command whose status it returns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "common/version.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct command commands[] = {
	{ "run", "boot a VM in argon-vmm (see 'argon help run')", cmd_run },
	{ "help", "this text, or a command's ('argon help run')", cmd_help },
	{ "version", "print argon's version", cmd_version },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fputs("usage: argon COMMAND [ARGS...]\n       argon --version | --help\n\ncommands:\n",
	      out);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(name, commands[i].name) == 0)
			return &commands[i];
	return NULL;
}

/* argon help [COMMAND]: a command's help is its --help. */
static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	const struct command *c = find(argv[1]);
	if (!c || c->run == cmd_help || c->run == cmd_version) {
		if (!c) {
			log_error("unknown command '%s'", argv[1]);
			usage(stderr);
			return EXIT_USAGE;
		}
		usage(stdout);
		return 0;
	}
	char *help_argv[] = { argv[1], "--help", NULL };
	return c->run(2, help_argv);
}

static int cmd_version(int argc, char **argv)
{
	printf("argon %s\n", ARGON_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	log_init("argon", LOG_WARN);
	log_set_plain(true); /* `argon run --verbose` turns the full lines back on */
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(1, argv);
	const struct command *c = find(argv[1]);
	if (c)
		return c->run(argc - 1, argv + 1);
	log_error("unknown command '%s' (see 'argon help')", argv[1]);
	return EXIT_USAGE;
}
