/* Guest physical memory: one memfd mapped once, registered with KVM as one slot
 * below the 32-bit MMIO hole and one above it. Every guest address the VMM
 * touches goes through guest_mem_ptr(), which bounds-checks it. */
#ifndef ARGON_VMM_MEMORY_H
#define ARGON_VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct guest_mem_region {
	uint64_t gpa;  /* first guest-physical address */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* where the region is mapped in this process */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	int nregions;
	uint64_t ram_size; /* total RAM bytes, sum of the regions */
	int memfd;	   /* -1 when the memory is not memfd-backed (unit tests) */
	uint8_t *mapping;  /* the single host mapping of all regions */
	/* True until a loader has written: fresh memory reads as zero, so a kernel's bss
	 * need not be cleared (clearing 5 MiB costs ~1,300 page faults at boot). */
	bool zero_filled;
};

/* Lays out ram_size bytes around the MMIO hole (see arch/x86/layout.h), backed by a
 * memfd. Returns 0 or -errno (-ENOMEM when the host cannot map that much). */
int guest_mem_create(struct guest_mem *mem, uint64_t ram_size);
/* Same layout over anonymous memory; for tests that need no KVM. */
int guest_mem_create_anon(struct guest_mem *mem, uint64_t ram_size);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa + len) when the whole range lies inside one RAM region,
 * NULL otherwise (out of RAM, straddling a region end, or wrapping past 2^64).
 * len 0 is treated as 1 so a pointer is never handed out for a hole. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* True when [gpa, gpa + len) is RAM in one region. */
bool guest_mem_contains(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Highest RAM address + 1 below 4 GiB (end of the low region). */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
