/* clock: the guest's own time, as its TSC says (what argon-guest times everything
 * with), and the timer ticks so far; a test checks that neither goes backwards across a
 * pause, a snapshot and a restore. */
#include "commands/commands.h"
#include "cpu.h"
#include "power.h"
#include "printf.h"
#include "timer.h"

static int clock_cmd(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		printf("clock: takes no arguments\n");
		return STATUS_USAGE;
	}
	uint64_t tsc = rdtsc();

	printf("clock: tsc %lu ns %lu ticks %lu\n", tsc, tsc_to_ns(tsc), timer_ticks);
	return STATUS_OK;
}

const struct command cmd_clock = { "clock", "", "the TSC, as ns, and the timer ticks",
				   clock_cmd };
