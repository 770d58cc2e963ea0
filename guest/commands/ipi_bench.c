/* ipi-bench [N]: round trip of a work IPI to every other vCPU (send, the
 * vCPU wakes from halt, runs an empty function, the sender sees it done). */
#include "commands/commands.h"
#include "cpu.h"
#include "power.h"
#include "printf.h"
#include "smp.h"
#include "timer.h"

#define DEFAULT_N 1000

static void nothing(void *arg)
{
	(void)arg;
}

static int ipi_bench(int argc, char **argv)
{
	uint64_t n, t0, total = 0;

	if (arg_count(argc, argv, 1, DEFAULT_N, 10000000, &n))
		return STATUS_USAGE;
	if (cpus_online < 2) {
		printf("ipi-bench: needs a second vCPU\n");
		return STATUS_FAILED;
	}
	for (int cpu = 1; cpu < cpus_online; cpu++) {
		t0 = rdtsc();
		for (uint64_t i = 0; i < n; i++) {
			smp_call(cpu, nothing, 0);
			smp_wait(cpu);
		}
		total += rdtsc() - t0;
	}
	printf("ipi-bench: cpus %d roundtrip_ns ", cpus_online);
	print_tenths(tsc_to_ns(total * 10 / n / (cpus_online - 1)));
	printf("\n");
	return STATUS_OK;
}

const struct command cmd_ipi_bench = { "ipi-bench", "[N]", "work IPI round trip to each vCPU",
				       ipi_bench };
