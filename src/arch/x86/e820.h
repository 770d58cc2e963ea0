/* The BIOS-style e820 memory map argon gives guests (zero page and PVH memmap). */
#ifndef ARGON_ARCH_X86_E820_H
#define ARGON_ARCH_X86_E820_H

#include <stdint.h>

#include "vmm/memory.h"

#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fills out[] (room for max entries) with: low RAM [0, LAYOUT_EBDA_START), the EBDA and
 * BIOS area reserved up to 1 MiB (the MP and ACPI tables live there), RAM from 1 MiB to
 * the end of the low region, and RAM above 4 GiB when the guest has any. Returns the
 * entry count, or -ENOSPC when max is too small. */
int e820_build(const struct guest_mem *mem, struct e820_entry *out, int max);

#endif
