/* Intel MultiProcessor Specification 1.4 table, for kernels without ACPI. */
#ifndef ARGON_ARCH_X86_MPTABLE_H
#define ARGON_ARCH_X86_MPTABLE_H

#include <stdint.h>

#include "vmm/memory.h"

/* Writes the MP floating pointer and configuration table at LAYOUT_EBDA_START:
 * ncpus processors (APIC ids 0..ncpus-1, the first the BSP), one ISA bus, the
 * IOAPIC, and ISA IRQs 0-15 routed to its pins. Returns 0, -EINVAL for ncpus out of
 * 1..255, or -ENOSPC when it does not fit below LAYOUT_LOW_RAM_END. */
int mptable_build(struct guest_mem *mem, int ncpus);

#endif
