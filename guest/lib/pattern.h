/* The data pattern of blk-write and blk-verify: each 512-byte sector holds
 * 64 words derived from the seed and the sector number (splitmix64), so a
 * sector read back from the wrong place, or stale, is caught. */
#ifndef GUEST_LIB_PATTERN_H
#define GUEST_LIB_PATTERN_H

#include <stdint.h>

void pattern_fill(void *buf, uint64_t sector, uint32_t nsectors, uint64_t seed);

/* Index of the first sector in buf that differs from the pattern, or
 * nsectors when all match. */
uint32_t pattern_check(const void *buf, uint64_t sector, uint32_t nsectors, uint64_t seed);

/* One splitmix64 step: also the random source of the benchmarks. */
uint64_t splitmix64(uint64_t *state);

#endif
