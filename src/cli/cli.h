#ifndef ARGON_CLI_CLI_H
#define ARGON_CLI_CLI_H

/* Each returns the process exit status. argv[0] is the command's name. */
int cmd_run(int argc, char **argv);

/* Path of a file installed beside the argon binary (argon-vmm, argon-guest), or the
 * environment's override; the result is malloc'ed. */
char *cli_sibling_path(const char *name, const char *env_override);

/* How argon's stdin reaches the guest (console.c). */
enum console_mode {
	CONSOLE_PLAIN, /* bytes as they come; the terminal, if any, as it is */
	CONSOLE_RAW,   /* a terminal in raw mode, Ctrl-] ends the VM */
	CONSOLE_EOT,   /* not a terminal: its end is passed on as Ctrl-D */
};

/* Runs argv (argon-vmm) as a child with argon's stdin passed on to it as mode says.
 * The child gets the SIGTERM, SIGINT, SIGHUP and SIGQUIT argon gets and is sent
 * SIGTERM if argon dies. Returns the child's exit status (128+N if signal N ended
 * it), or argon's own status when it could not be started. */
int console_run(char *const argv[], enum console_mode mode);

#endif
