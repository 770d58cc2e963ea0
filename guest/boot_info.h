/* What the loader told us, normalized from either boot protocol and copied
 * into our own memory before anything below 1 MiB is reused. */
#ifndef GUEST_BOOT_INFO_H
#define GUEST_BOOT_INFO_H

#include <stdint.h>

#define BOOT_CMDLINE_MAX 4096
#define BOOT_MEMMAP_MAX 128

/* Memory-map types (e820 and PVH agree). */
#define MEM_RAM 1
#define MEM_RESERVED 2
#define MEM_ACPI 3
#define MEM_NVS 4

struct mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct boot_info {
	int kind;     /* BOOT_PVH or BOOT_LINUX64 */
	uint64_t ptr; /* hvm_start_info or boot_params, as received */
	char cmdline[BOOT_CMDLINE_MAX];
	struct mem_range memmap[BOOT_MEMMAP_MAX];
	int nmemmap;
	uint64_t rsdp; /* 0 when the loader gave none */
};

extern struct boot_info boot_info;

/* Fills boot_info from the structure at ptr, printing what is wrong with it
 * (nothing is trusted: each pointer is checked against the memory map). */
void boot_info_init(int kind, uint64_t ptr);

#endif
