/* mem-bench [MiB]: first-touch rate of fresh pages (each touch of a page the
 * VM never used costs the hypervisor a fault) and memcpy bandwidth. Memory
 * is taken from the allocator and never reused, so every run is fresh. */
#include "commands/commands.h"
#include "cpu.h"
#include "memmap.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "timer.h"

#define DEFAULT_MIB 64
#define MIN_COPY_BYTES (256ull << 20)
#define MIB (1ull << 20)

/* MiB/s for bytes moved in cycles; in KiB so nothing overflows below 16 TiB. */
static uint64_t mib_per_s(uint64_t bytes, uint64_t cycles)
{
	uint64_t ns = tsc_to_ns(cycles);

	return ns ? bytes / 1024 * 1000000000 / ns / 1024 : 0;
}

static uint64_t touch(uint8_t *p, uint64_t bytes)
{
	uint64_t t0 = rdtsc();

	for (uint64_t off = 0; off < bytes; off += 4096)
		((volatile uint8_t *)p)[off] = 1;
	return rdtsc() - t0;
}

static uint64_t copy(uint8_t *p, uint64_t bytes, uint64_t *copied)
{
	uint64_t half = bytes / 2, t0 = rdtsc();

	*copied = 0;
	do {
		memcpy(p + half, p, half);
		*copied += half;
	} while (*copied < MIN_COPY_BYTES);
	return rdtsc() - t0;
}

static int mem_bench(int argc, char **argv)
{
	uint64_t free_mib = phys_largest_free(MIB) / MIB, mib, region, touch_c, copy_c, copied;
	uint64_t def = free_mib < DEFAULT_MIB ? free_mib : DEFAULT_MIB;

	if (free_mib < 2) {
		printf("mem-bench: no fresh memory left\n");
		return STATUS_FAILED;
	}
	if (arg_count(argc, argv, 1, def, free_mib, &mib))
		return STATUS_USAGE;
	if (mib < 2)
		mib = 2;
	region = phys_alloc(mib * MIB, MIB, UINT64_MAX);
	if (!region) {
		printf("mem-bench: cannot allocate %lu MiB\n", mib);
		return STATUS_FAILED;
	}
	touch_c = touch((uint8_t *)region, mib * MIB);
	copy_c = copy((uint8_t *)region, mib * MIB, &copied);
	printf("mem-bench: touch_mib_s %lu copy_mib_s %lu\n", mib_per_s(mib * MIB, touch_c),
	       mib_per_s(copied, copy_c));
	return STATUS_OK;
}

const struct command cmd_mem_bench = { "mem-bench", "[MiB]", "page first-touch and memcpy rates",
				       mem_bench };
