/* Identity mapping of RAM above 4 GiB, done natively after PVM mode is on.
 * New tables are filled before they are linked in: a shadow-paging
 * hypervisor traps writes to tables already in use, not to fresh pages. */
#include <stdint.h>

#include "arch.h"
#include "boot_info.h"
#include "memmap.h"
#include "paging.h"
#include "printf.h"
#include "string.h"

#define GIB (1ull << 30)
#define PAGE_2M (1ull << 21)
#define ADDR_MASK 0x000ffffffffff000ull

extern uint64_t boot_pml4[512];

/* Table pages come from below 4 GiB, which is already mapped. */
static uint64_t *alloc_table(void)
{
	uint64_t pa = phys_alloc(4096, 4096, 0x100000000ull);

	if (pa)
		memset((void *)pa, 0, 4096);
	return (uint64_t *)pa;
}

static uint64_t *pdpt_for(uint64_t addr)
{
	uint64_t *e = &boot_pml4[(addr >> 39) & 511];
	uint64_t *t;

	if (*e & PTE_P)
		return (uint64_t *)(*e & ADDR_MASK);
	t = alloc_table();
	if (t)
		*e = (uint64_t)t | PTE_TABLE;
	return t;
}

/* Maps the 2 MiB pages of one GiB that overlap [start, end). */
static int map_gib(uint64_t gib, uint64_t start, uint64_t end)
{
	uint64_t *pdpt = pdpt_for(gib), *pd, *e;

	if (!pdpt)
		return -1;
	e = &pdpt[(gib >> 30) & 511];
	pd = *e & PTE_P ? (uint64_t *)(*e & ADDR_MASK) : alloc_table();
	if (!pd)
		return -1;
	for (uint64_t a = gib; a < gib + GIB; a += PAGE_2M)
		if (a + PAGE_2M > start && a < end)
			pd[(a >> 21) & 511] = a | PTE_LARGE;
	*e = (uint64_t)pd | PTE_TABLE;
	return 0;
}

int paging_map_high_ram(void)
{
	for (int i = 0; i < boot_info.nmemmap; i++) {
		const struct mem_range *r = &boot_info.memmap[i];
		uint64_t start = r->addr, end = r->addr + r->size;

		if (r->type != MEM_RAM || end <= 0x100000000ull)
			continue;
		if (start < 0x100000000ull)
			start = 0x100000000ull;
		for (uint64_t g = start & ~(GIB - 1); g < end; g += GIB) {
			if (map_gib(g, start, end) < 0) {
				printf("argon-guest: out of page-table memory mapping 0x%lx\n", g);
				return -1;
			}
		}
	}
	return 0;
}
