/* Command dispatch, argon.cmd scripts and the interactive prompt. */
#include <stdbool.h>

#include "cmdline.h"
#include "commands/commands.h"
#include "console.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"
#include "serial.h"
#include "shell.h"
#include "string.h"
#include "timer.h"

#define MAX_ARGS 16
#define LINE_MAX 256

const struct command *const commands[] = {
	&cmd_info, &cmd_cpu_bench, &cmd_mem_bench, &cmd_exit_bench, &cmd_ipi_bench,
	&cmd_memmap, &cmd_mem_touch, &cmd_mem_fill, &cmd_mem_sum, &cmd_clock,
	&cmd_virtio_list,
	&cmd_blk_info, &cmd_blk_write, &cmd_blk_verify, &cmd_blk_discard, &cmd_blk_bench,
	&cmd_net_info, &cmd_net_echo, &cmd_net_ping, &cmd_net_bench,
	&cmd_vsock_echo, &cmd_vsock_connect, &cmd_vsock_bench, &cmd_rng_read,
	&cmd_balloon, &cmd_balloon_status, &cmd_virtio_abuse, &cmd_vsock_abuse,
	&cmd_echo, &cmd_uptime, &cmd_help, &cmd_exit, &cmd_poweroff, &cmd_reboot, 0,
};

/* Runs one command line; returns its status. Empty lines succeed. */
static int run_line(char *line)
{
	char *argv[MAX_ARGS + 1];
	int argc = split_words(line, argv, MAX_ARGS);

	if (argc < 0) {
		printf("argon-guest: more than %d words in a command\n", MAX_ARGS);
		return STATUS_USAGE;
	}
	if (argc == 0)
		return STATUS_OK;
	argv[argc] = 0;
	for (const struct command *const *c = commands; *c; c++)
		if (!strcmp((*c)->name, argv[0]))
			return (*c)->run(argc, argv);
	printf("argon-guest: unknown command '%s' (try help)\n", argv[0]);
	return STATUS_USAGE;
}

void shell_run_script(char *script)
{
	int worst = STATUS_OK;

	for (char *cmd = script; cmd;) {
		char *next = cmd;
		int status;

		while (*next && *next != ';')
			next++;
		if (*next)
			*next++ = '\0';
		else
			next = 0;
		status = run_line(cmd);
		if (status > worst)
			worst = status;
		cmd = next;
	}
	guest_exit(worst);
}

/* Blocks until a byte arrives; polls the UART on timer ticks when its IRQ
 * could not be routed. */
static int read_char(void)
{
	int c;

	irq_disable();
	while ((c = serial_getc()) < 0) {
		serial_poll();
		if ((c = serial_getc()) >= 0)
			break;
		cpu_wait();
		irq_disable();
	}
	irq_enable();
	return c;
}

#define KEY_EOT 0x04 /* Ctrl-D: the end of the input, as a terminal sends it */

/* Minimal line editing: backspace/delete erase, Enter ends the line. Returns false
 * when Ctrl-D ended the input (the line holds what came before it). */
static bool read_line(char *line, size_t max)
{
	size_t n = 0;

	for (;;) {
		int c = read_char();

		if (c == '\r' || c == '\n' || c == KEY_EOT) {
			console_write("\n", 1);
			line[n] = '\0';
			return c != KEY_EOT;
		}
		if ((c == 0x7f || c == 0x08) && n) {
			n--;
			console_write("\b \b", 3);
		} else if (c >= 0x20 && c < 0x7f && n + 1 < max) {
			char ch = c;

			line[n++] = ch;
			console_write(&ch, 1);
		}
	}
}

/* The prompt. Ctrl-D ends the session as it ends a shell's: the guest powers off
 * with the worst status of the commands typed, as an argon.cmd script does, so
 * `argon run < commands` ends when its input does, with the status it would have
 * with the same commands after "--". */
void shell_interactive(void)
{
	char line[LINE_MAX];
	int worst = STATUS_OK;

	for (;;) {
		printf("argon> ");
		bool more = read_line(line, sizeof(line));
		int status = run_line(line);

		if (status > worst)
			worst = status;
		if (!more)
			guest_exit(worst);
	}
}
