/* The cpu-bench compute kernel, shared by the guest command and
 * build/cpu-bench-host so both run the very same code. */
#ifndef GUEST_LIB_CPU_BENCH_KERNEL_H
#define GUEST_LIB_CPU_BENCH_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

/* Rounds for about 0.5 s on the development machines (AMD EPYC, 2.6 GHz:
 * ~23 us per round when the machine is quiet). */
#define CPU_BENCH_DEFAULT_ROUNDS 20000
#define CPU_BENCH_MAX_ROUNDS 100000000

/* The one output line; both programs print it with these arguments:
 * rounds, TSC cycles, ns per round (integer part, thousandths). */
#define CPU_BENCH_FORMAT "cpu-bench: rounds %lu cycles %lu ns_per_round %lu.%03lu\n"

/* SHA-256 of a fixed 4 KiB buffer, rounds times; each digest is fed back into
 * the buffer so no round can be skipped. Returns the last digest's first
 * word (print or compare it to keep the work observable). */
uint32_t cpu_bench_run(uint64_t rounds);

/* Checks the SHA-256 implementation against the FIPS 180-2 "abc" vector. */
bool cpu_bench_selftest(void);

/* ns per round, in thousandths of a ns. */
uint64_t cpu_bench_ns_per_round_milli(uint64_t total_ns, uint64_t rounds);

#endif
