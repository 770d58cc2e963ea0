/* cpu-bench [N]: N SHA-256 rounds timed with the TSC (lib/cpu_bench_kernel.c;
 * build/cpu-bench-host runs the same code on the host). */
#include "commands/commands.h"
#include "cpu.h"
#include "lib/cpu_bench_kernel.h"
#include "power.h"
#include "printf.h"
#include "timer.h"

static int cpu_bench(int argc, char **argv)
{
	uint64_t rounds, t0, cycles, milli;

	if (arg_count(argc, argv, 1, CPU_BENCH_DEFAULT_ROUNDS, CPU_BENCH_MAX_ROUNDS, &rounds))
		return STATUS_USAGE;
	if (!cpu_bench_selftest()) {
		printf("cpu-bench: SHA-256 self-test failed\n");
		return STATUS_FAILED;
	}
	t0 = rdtsc();
	cpu_bench_run(rounds);
	cycles = rdtsc() - t0;
	milli = cpu_bench_ns_per_round_milli(tsc_to_ns(cycles), rounds);
	printf(CPU_BENCH_FORMAT, rounds, cycles, milli / 1000, milli % 1000);
	return STATUS_OK;
}

const struct command cmd_cpu_bench = { "cpu-bench", "[N]", "N SHA-256 rounds over 4 KiB",
				       cpu_bench };
