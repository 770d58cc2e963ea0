/* Reading hvm_start_info (PVH) and boot_params (Linux boot protocol). */
#include <stdbool.h>

#include "arch.h"
#include "boot_info.h"
#include "memmap.h"
#include "printf.h"
#include "string.h"

struct boot_info boot_info;

/* Xen public/arch-x86/hvm/start_info.h */
#define PVH_MAGIC 0x336ec578
struct pvh_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries, reserved;
};
struct pvh_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* Linux Documentation/arch/x86/zero-page.rst and boot.rst */
#define BP_ACPI_RSDP 0x070
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

/* The structure itself can only be checked for being inside the identity
 * map: the memory map that would vouch for it is inside it. */
static bool plausible(uint64_t ptr, uint64_t size)
{
	return ptr && ptr < 0x100000000ull - size;
}

/* Returns false once the table is full. Empty or wrapping entries are dropped. */
static bool add_range(uint64_t addr, uint64_t size, uint32_t type)
{
	if (boot_info.nmemmap == BOOT_MEMMAP_MAX) {
		printf("argon-guest: memory map: more than %d entries, rest ignored\n",
		       BOOT_MEMMAP_MAX);
		return false;
	}
	if (size && addr + size > addr)
		boot_info.memmap[boot_info.nmemmap++] = (struct mem_range){ addr, size, type };
	return true;
}

/* Copies the NUL-terminated string at gpa, checking every byte against the map. */
static void copy_cmdline(uint64_t gpa)
{
	size_t i;

	if (!gpa)
		return;
	for (i = 0; i < BOOT_CMDLINE_MAX - 1; i++) {
		if (!memmap_covers(gpa + i, 1) || gpa + i >= 0x100000000ull) {
			printf("argon-guest: command line at 0x%lx runs outside memory, ignored\n",
			       gpa);
			i = 0;
			break;
		}
		boot_info.cmdline[i] = *(const char *)(gpa + i);
		if (!boot_info.cmdline[i])
			break;
	}
	boot_info.cmdline[i] = '\0';
}

static void read_pvh(uint64_t ptr)
{
	const struct pvh_start_info *si = (const void *)ptr;
	const struct pvh_memmap_entry *e;

	if (!plausible(ptr, sizeof(*si)) || si->magic != PVH_MAGIC) {
		printf("argon-guest: no valid hvm_start_info at 0x%lx\n", ptr);
		return;
	}
	if (si->version >= 1 && plausible(si->memmap_paddr, si->memmap_entries * sizeof(*e))) {
		e = (const void *)si->memmap_paddr;
		for (uint32_t i = 0; i < si->memmap_entries; i++)
			if (!add_range(e[i].addr, e[i].size, e[i].type))
				break;
	}
	if (!boot_info.nmemmap)
		printf("argon-guest: hvm_start_info has no memory map\n");
	copy_cmdline(si->cmdline_paddr);
	boot_info.rsdp = si->rsdp_paddr;
}

static void read_boot_params(uint64_t ptr)
{
	const uint8_t *bp = (const void *)ptr;
	const struct e820_entry *e;
	uint64_t cmdline;
	uint8_t n;

	if (!plausible(ptr, BP_SIZE)) {
		printf("argon-guest: no valid boot_params at 0x%lx\n", ptr);
		return;
	}
	n = bp[BP_E820_ENTRIES];
	if (n > BP_E820_MAX)
		n = BP_E820_MAX;
	e = (const void *)(bp + BP_E820_TABLE);
	for (int i = 0; i < n; i++)
		add_range(e[i].addr, e[i].size, e[i].type);
	if (!boot_info.nmemmap)
		printf("argon-guest: boot_params has no e820 map\n");
	cmdline = *(const uint32_t *)(bp + BP_CMD_LINE_PTR);
	cmdline |= (uint64_t)(*(const uint32_t *)(bp + BP_EXT_CMD_LINE_PTR)) << 32;
	copy_cmdline(cmdline);
	boot_info.rsdp = *(const uint64_t *)(bp + BP_ACPI_RSDP);
}

void boot_info_init(int kind, uint64_t ptr)
{
	boot_info.kind = kind;
	boot_info.ptr = ptr;
	if (kind == BOOT_PVH)
		read_pvh(ptr);
	else
		read_boot_params(ptr);
	if (boot_info.rsdp && !memmap_covers(boot_info.rsdp, 20)) {
		printf("argon-guest: RSDP pointer 0x%lx is outside memory, ignored\n",
		       boot_info.rsdp);
		boot_info.rsdp = 0;
	}
}
