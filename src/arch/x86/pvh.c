/* PVH boot: struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h),
 * version 1, with the initrd as module 0 and the memory map. */
#include <string.h>

#include "arch/x86/boot_info.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* e820 types */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry layout");

#define PVH_MEMMAP_MAX 64

uint64_t pvh_start_info_build(struct guest_mem *mem, const struct boot_info_input *in)
{
	const uint64_t info_gpa = LAYOUT_PVH_START_INFO;
	const uint64_t mod_gpa = info_gpa + sizeof(struct hvm_start_info);
	const uint64_t map_gpa = mod_gpa + sizeof(struct hvm_modlist_entry);
	const uint64_t total = map_gpa + PVH_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry) -
			       info_gpa;
	uint8_t *base = guest_mem_ptr(mem, info_gpa, total);
	if (!base || info_gpa + total > LAYOUT_ZERO_PAGE)
		return 0;
	memset(base, 0, total);
	struct e820_entry e820[PVH_MEMMAP_MAX];
	int n = e820_build(mem, e820, PVH_MEMMAP_MAX);
	if (n < 0)
		return 0;
	struct hvm_memmap_table_entry *map = (void *)(base + (map_gpa - info_gpa));
	for (int i = 0; i < n; i++)
		map[i] = (struct hvm_memmap_table_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	struct hvm_start_info *info = (void *)base;
	*info = (struct hvm_start_info){
		.magic = PVH_START_INFO_MAGIC,
		.version = 1,
		.cmdline_paddr = in->cmdline_gpa,
		.rsdp_paddr = in->rsdp_gpa,
		.memmap_paddr = map_gpa,
		.memmap_entries = (uint32_t)n,
	};
	if (in->initrd_gpa) {
		struct hvm_modlist_entry *mod = (void *)(base + (mod_gpa - info_gpa));
		*mod = (struct hvm_modlist_entry){ .paddr = in->initrd_gpa, .size = in->initrd_size };
		info->nr_modules = 1;
		info->modlist_paddr = mod_gpa;
	}
	return info_gpa;
}
