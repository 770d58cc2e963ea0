/* Small commands: echo, help, exit, poweroff, reboot; argument helpers. */
#include "commands/commands.h"
#include "cpu.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"
#include "serial.h"
#include "string.h"
#include "timer.h"

int arg_count(int argc, char **argv, int i, uint64_t def, uint64_t max, uint64_t *out)
{
	if (argc <= i) {
		*out = def;
		return 0;
	}
	if (argc > i + 1 || parse_u64(argv[i], out) || *out < 1 || *out > max) {
		printf("%s: expected a number from 1 to %lu\n", argv[0], max);
		return -1;
	}
	return 0;
}

int arg_u64(int argc, char **argv, int i, uint64_t def, uint64_t min, uint64_t max,
	    uint64_t *out)
{
	if (argc <= i) {
		*out = def;
		return 0;
	}
	if (parse_u64(argv[i], out) || *out < min || *out > max) {
		printf("%s: argument %d: expected a number from %lu to %lu\n", argv[0], i, min, max);
		return -1;
	}
	return 0;
}

bool console_key_pressed(void)
{
	static uint64_t next;
	uint64_t now = rdtsc();
	bool was;
	int c;

	if ((int64_t)(now - next) < 0)
		return false;
	next = now + tsc_khz_upper() * 10;
	was = irq_save();
	serial_poll();
	c = serial_getc();
	irq_restore(was);
	return c >= 0;
}

bool deadline_passed(uint64_t deadline)
{
	return deadline && (int64_t)(rdtsc() - deadline) >= 0;
}

void print_tenths(uint64_t v10)
{
	printf("%lu.%lu", v10 / 10, v10 % 10);
}

static int echo(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		printf(i + 1 < argc ? "%s " : "%s", argv[i]);
	printf("\n");
	return STATUS_OK;
}

/* uptime: the guest's clock since boot (kvm-clock: a pause of the VM does not count). */
static int uptime(int argc, char **argv)
{
	uint64_t us = clock_uptime_ns() / 1000;

	(void)argv;
	if (argc > 1) {
		printf("uptime: takes no arguments\n");
		return STATUS_USAGE;
	}
	printf("uptime: %lu.%06lu s (%s)\n", us / 1000000, us % 1000000, clock_source());
	return STATUS_OK;
}

static int help(int argc, char **argv)
{
	(void)argc, (void)argv;
	for (const struct command *const *c = commands; *c; c++)
		printf("  %-14s %-26s %s\n", (*c)->name, (*c)->usage, (*c)->help);
	return STATUS_OK;
}

static int exit_cmd(int argc, char **argv)
{
	uint64_t status = 0;

	if (argc > 2 || (argc == 2 && (parse_u64(argv[1], &status) || status > 255))) {
		printf("exit: expected a status from 0 to 255\n");
		return STATUS_USAGE;
	}
	guest_exit((int)status);
}

static int poweroff(int argc, char **argv)
{
	(void)argc, (void)argv;
	guest_exit(STATUS_OK);
}

static int reboot(int argc, char **argv)
{
	(void)argc, (void)argv;
	guest_reboot();
}

const struct command cmd_echo = { "echo", "[ARGS]", "print the arguments", echo };
const struct command cmd_help = { "help", "", "list the commands", help };
const struct command cmd_uptime = { "uptime", "", "the guest's clock since boot (kvm-clock)",
				    uptime };
const struct command cmd_exit = { "exit", "[N]", "end the VM with status N (0)", exit_cmd };
const struct command cmd_poweroff = { "poweroff", "", "end the VM with status 0", poweroff };
const struct command cmd_reboot = { "reboot", "", "reset the VM", reboot };
