/* cpu-bench-host: the guest's cpu-bench on the host, for guest/host ratios.
 * Same compute kernel source and code generation (guest.mk), same output.
 *
 * usage: cpu-bench-host [ROUNDS] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#include "lib/cpu_bench_kernel.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint64_t rounds = CPU_BENCH_DEFAULT_ROUNDS, t0, c0, cycles, ns, milli;
	char *end;

	if (argc > 2 || (argc == 2 && ((rounds = strtoull(argv[1], &end, 0)) < 1 || *end ||
				       rounds > CPU_BENCH_MAX_ROUNDS))) {
		fprintf(stderr, "usage: cpu-bench-host [ROUNDS] (1 to %d)\n", CPU_BENCH_MAX_ROUNDS);
		return 2;
	}
	if (!cpu_bench_selftest()) {
		fprintf(stderr, "cpu-bench: SHA-256 self-test failed\n");
		return 1;
	}
	t0 = now_ns();
	c0 = __rdtsc();
	cpu_bench_run(rounds);
	cycles = __rdtsc() - c0;
	ns = now_ns() - t0;
	milli = cpu_bench_ns_per_round_milli(ns, rounds);
	printf(CPU_BENCH_FORMAT, rounds, cycles, milli / 1000, milli % 1000);
	return 0;
}
