#ifndef ARGON_CLI_CLI_H
#define ARGON_CLI_CLI_H

/* Each returns the process exit status. argv[0] is the command's name. */
int cmd_run(int argc, char **argv);

/* Path of a file installed beside the argon binary (argon-vmm, argon-guest), or the
 * environment's override; the result is malloc'ed. */
char *cli_sibling_path(const char *name, const char *env_override);

/* Runs argv with the terminal in raw mode, passing typed bytes to the child and
 * ending it when the user types the escape byte. Returns the child's status. */
int console_run_interactive(char *const argv[], unsigned char escape);

#endif
