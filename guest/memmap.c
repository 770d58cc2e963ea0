/* Memory-map queries and the physical bump allocator. */
#include "boot_info.h"
#include "memmap.h"

#define MAX_FREE BOOT_MEMMAP_MAX

struct free_range {
	uint64_t start, end;
};

extern char _kernel_end[];

static struct free_range free_ranges[MAX_FREE];
static int nfree;

static const struct mem_range *find_range(uint64_t addr, bool ram_only)
{
	for (int i = 0; i < boot_info.nmemmap; i++) {
		const struct mem_range *r = &boot_info.memmap[i];

		if (ram_only && r->type != MEM_RAM)
			continue;
		if (addr >= r->addr && addr - r->addr < r->size)
			return r;
	}
	return 0;
}

/* Walks [addr, end) entry by entry, so a range spanning adjacent entries is
 * covered too. */
static bool covered(uint64_t addr, uint64_t len, bool ram_only)
{
	uint64_t end = addr + len;

	if (end < addr)
		return false;
	while (addr < end) {
		const struct mem_range *r = find_range(addr, ram_only);

		if (!r)
			return false;
		addr = r->addr + r->size;
	}
	return true;
}

bool memmap_covers(uint64_t addr, uint64_t len)
{
	return covered(addr, len, false);
}

bool memmap_is_ram(uint64_t addr, uint64_t len)
{
	return covered(addr, len, true);
}

uint64_t memmap_ram_bytes(void)
{
	uint64_t sum = 0;

	for (int i = 0; i < boot_info.nmemmap; i++)
		if (boot_info.memmap[i].type == MEM_RAM)
			sum += boot_info.memmap[i].size;
	return sum;
}

uint64_t memmap_ram_end(void)
{
	uint64_t end = 0;

	for (int i = 0; i < boot_info.nmemmap; i++) {
		const struct mem_range *r = &boot_info.memmap[i];

		if (r->type == MEM_RAM && r->addr + r->size > end)
			end = r->addr + r->size;
	}
	return end;
}

void phys_init(void)
{
	uint64_t floor = (uint64_t)_kernel_end;

	for (int i = 0; i < boot_info.nmemmap && nfree < MAX_FREE; i++) {
		const struct mem_range *r = &boot_info.memmap[i];
		uint64_t start = r->addr, end = r->addr + r->size;

		if (r->type != MEM_RAM || end <= floor)
			continue;
		if (start < floor)
			start = floor;
		free_ranges[nfree++] = (struct free_range){ start, end };
	}
}

static uint64_t align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

uint64_t phys_alloc(uint64_t size, uint64_t align, uint64_t limit)
{
	for (int i = 0; i < nfree; i++) {
		struct free_range *f = &free_ranges[i];
		uint64_t start = align_up(f->start, align);

		if (start >= f->end || f->end - start < size || start + size > limit)
			continue;
		f->start = start + size;
		return start;
	}
	return 0;
}

uint64_t phys_free_bytes(void)
{
	uint64_t sum = 0;

	for (int i = 0; i < nfree; i++)
		sum += free_ranges[i].end - free_ranges[i].start;
	return sum;
}

uint64_t phys_largest_free(uint64_t align)
{
	uint64_t best = 0;

	for (int i = 0; i < nfree; i++) {
		uint64_t start = align_up(free_ranges[i].start, align);

		if (start < free_ranges[i].end && free_ranges[i].end - start > best)
			best = free_ranges[i].end - start;
	}
	return best;
}
