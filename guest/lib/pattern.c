/* blk-write's pattern (pattern.h). */
#include "lib/pattern.h"

#define WORDS_PER_SECTOR 64

uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t sector_state(uint64_t sector, uint64_t seed)
{
	return seed * 0xd1342543de82ef95ull ^ sector;
}

void pattern_fill(void *buf, uint64_t sector, uint32_t nsectors, uint64_t seed)
{
	uint64_t *w = buf;

	for (uint32_t s = 0; s < nsectors; s++) {
		uint64_t st = sector_state(sector + s, seed);

		for (int i = 0; i < WORDS_PER_SECTOR; i++)
			*w++ = splitmix64(&st);
	}
}

uint32_t pattern_check(const void *buf, uint64_t sector, uint32_t nsectors, uint64_t seed)
{
	const uint64_t *w = buf;

	for (uint32_t s = 0; s < nsectors; s++) {
		uint64_t st = sector_state(sector + s, seed);

		for (int i = 0; i < WORDS_PER_SECTOR; i++)
			if (*w++ != splitmix64(&st))
				return s;
	}
	return nsectors;
}
