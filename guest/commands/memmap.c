/* memmap: the memory map as the loader gave it, and what is still fresh. */
#include "boot_info.h"
#include "commands/commands.h"
#include "memmap.h"
#include "power.h"
#include "printf.h"

static const char *type_name(uint32_t type)
{
	switch (type) {
	case MEM_RAM:
		return "ram";
	case MEM_RESERVED:
		return "reserved";
	case MEM_ACPI:
		return "acpi";
	case MEM_NVS:
		return "nvs";
	default:
		return "other";
	}
}

static int memmap(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		printf("memmap: takes no arguments\n");
		return STATUS_USAGE;
	}
	for (int i = 0; i < boot_info.nmemmap; i++) {
		const struct mem_range *r = &boot_info.memmap[i];

		printf("memmap: 0x%012lx-0x%012lx %s\n", r->addr, r->addr + r->size - 1,
		       type_name(r->type));
	}
	printf("memmap: largest_fresh_mib %lu\n", phys_largest_free(1 << 20) >> 20);
	return STATUS_OK;
}

const struct command cmd_memmap = { "memmap", "", "print the memory map", memmap };
