/* cpu-bench: SHA-256 rounds over a fixed buffer. */
#include "lib/cpu_bench_kernel.h"
#include "lib/sha256.h"

#define BUF_SIZE 4096

static uint8_t buf[BUF_SIZE];

uint32_t cpu_bench_run(uint64_t rounds)
{
	uint8_t digest[32] = { 0 };

	for (int i = 0; i < BUF_SIZE; i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (uint64_t r = 0; r < rounds; r++) {
		sha256(buf, BUF_SIZE, digest);
		for (int i = 0; i < 32; i++)
			buf[i] = digest[i];
	}
	return (uint32_t)digest[0] << 24 | digest[1] << 16 | digest[2] << 8 | digest[3];
}

bool cpu_bench_selftest(void)
{
	static const uint8_t expect[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t d[32];
	int same = 1;

	sha256("abc", 3, d);
	for (int i = 0; i < 32; i++)
		same &= d[i] == expect[i];
	return same;
}

uint64_t cpu_bench_ns_per_round_milli(uint64_t total_ns, uint64_t rounds)
{
	return rounds ? total_ns / rounds * 1000 + total_ns % rounds * 1000 / rounds : 0;
}
