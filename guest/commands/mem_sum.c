/* mem-fill MiB SEED and mem-sum ADDR BYTES: a region of guest memory written with a
 * known pattern, and its SHA-256, so a test can check that memory survives a
 * snapshot and restore (the host can also hash the same bytes in the memory file). */
#include "commands/commands.h"
#include "lib/sha256.h"
#include "memmap.h"
#include "power.h"
#include "printf.h"
#include "string.h"

#define MAX_MIB 1024

static void print_sum(const char *name, uint64_t addr, uint64_t bytes)
{
	uint8_t digest[32];

	sha256((const void *)addr, bytes, digest);
	printf("%s: addr 0x%lx bytes %lu sha256 ", name, addr, bytes);
	for (int i = 0; i < 32; i++)
		printf("%02x", digest[i]);
	printf("\n");
}

/* Fresh memory (never used before, never freed), filled with xorshift64 from SEED. */
static int mem_fill(int argc, char **argv)
{
	uint64_t mib, seed;

	if (argc != 3 || parse_u64(argv[1], &mib) || mib < 1 || mib > MAX_MIB ||
	    parse_u64(argv[2], &seed) || seed == 0) {
		printf("mem-fill: expected MiB (1-%d) and a non-zero SEED\n", MAX_MIB);
		return STATUS_USAGE;
	}
	uint64_t bytes = mib << 20, addr = phys_alloc(bytes, 4096, 1ull << 32);
	if (!addr) {
		printf("mem-fill: no %lu MiB of fresh memory below 4 GiB\n", mib);
		return STATUS_FAILED;
	}
	uint64_t *w = (uint64_t *)addr, x = seed;
	for (uint64_t i = 0; i < bytes / 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		w[i] = x;
	}
	print_sum("mem-fill", addr, bytes);
	return STATUS_OK;
}

static int mem_sum(int argc, char **argv)
{
	uint64_t addr, bytes;

	if (argc != 3 || parse_u64(argv[1], &addr) || parse_u64(argv[2], &bytes) || !bytes ||
	    bytes > ((uint64_t)MAX_MIB << 20) || !memmap_is_ram(addr, bytes) ||
	    addr + bytes > (1ull << 32)) {
		printf("mem-sum: expected ADDR and BYTES of RAM below 4 GiB\n");
		return STATUS_USAGE;
	}
	print_sum("mem-sum", addr, bytes);
	return STATUS_OK;
}

const struct command cmd_mem_fill = { "mem-fill", "MiB SEED",
				      "fill fresh memory with a pattern, print its SHA-256",
				      mem_fill };
const struct command cmd_mem_sum = { "mem-sum", "ADDR BYTES",
				     "print the SHA-256 of guest memory", mem_sum };
