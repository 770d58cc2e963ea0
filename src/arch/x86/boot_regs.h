/* The boot CPU's state at the kernel entry the image asked for: 64-bit with an
 * identity map (Linux boot protocol) or 32-bit flat protected mode (PVH). */
#ifndef ARGON_ARCH_X86_BOOT_REGS_H
#define ARGON_ARCH_X86_BOOT_REGS_H

#include <stdint.h>

#include "loader/loader.h"
#include "vmm/memory.h"

/* Writes the boot GDT (and, for 64-bit entry, identity page tables for the first
 * 4 GiB) into guest memory and sets the vCPU's segment, control and general
 * registers so it starts at entry with boot_info_gpa in RSI (Linux) or EBX (PVH).
 * Returns 0 or -errno. */
int boot_regs_setup(struct guest_mem *mem, int vcpu_fd, enum boot_entry_kind kind,
		    uint64_t entry, uint64_t boot_info_gpa);

/* Builds the page tables alone (exposed for unit tests). Returns 0 or -ENOSPC. */
int boot_page_tables_build(struct guest_mem *mem);

#endif
