/* Built-in commands. Each returns an exit status (power.h: STATUS_OK,
 * STATUS_FAILED, STATUS_USAGE); argv[0] is the command name. */
#ifndef GUEST_COMMANDS_H
#define GUEST_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

struct command {
	const char *name;
	const char *usage;
	const char *help;
	int (*run)(int argc, char **argv);
};

extern const struct command cmd_info, cmd_cpu_bench, cmd_mem_bench, cmd_exit_bench,
	cmd_ipi_bench, cmd_memmap, cmd_mem_touch, cmd_mem_fill, cmd_mem_sum, cmd_clock, cmd_virtio_list,
	cmd_blk_info, cmd_blk_write, cmd_blk_verify, cmd_blk_discard, cmd_blk_bench,
	cmd_net_info, cmd_net_echo, cmd_net_ping, cmd_net_bench,
	cmd_vsock_echo, cmd_vsock_connect, cmd_vsock_bench, cmd_rng_read,
	cmd_balloon, cmd_balloon_status, cmd_virtio_abuse, cmd_vsock_abuse,
	cmd_echo, cmd_help, cmd_exit, cmd_poweroff, cmd_reboot, cmd_uptime;

/* NULL-terminated, in help order (shell.c). */
extern const struct command *const commands[];

/* Parses argv[i] as an optional count: absent -> def, else >= 1 and <= max.
 * Returns 0, or prints usage and returns -1. */
int arg_count(int argc, char **argv, int i, uint64_t def, uint64_t max, uint64_t *out);

/* Parses optional argument argv[i]: absent -> def, else from min to max.
 * Returns 0, or prints what was expected and returns -1. */
int arg_u64(int argc, char **argv, int i, uint64_t def, uint64_t min, uint64_t max,
	    uint64_t *out);

/* True when a key was typed on the console (the byte is consumed). Looks
 * at most every 10 ms: without a routed UART interrupt each look is a port
 * read, an exit to the VMM. For long-running commands' "stop" key. */
bool console_key_pressed(void);

/* True once the TSC passed deadline (0 = never). */
bool deadline_passed(uint64_t deadline);

/* Prints "name: key value.d" style numbers: v10 is a value times 10. */
void print_tenths(uint64_t v10);

#endif
