/* Guest physical memory: one memfd mapped once, registered with KVM as one slot
 * below the 32-bit MMIO hole and one above it. Every guest address the VMM
 * touches goes through guest_mem_ptr(), which bounds-checks it. */
#ifndef ARGON_VMM_MEMORY_H
#define ARGON_VMM_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

/* What backs guest RAM: Firecracker's machine-config.huge_pages ("None",
 * "Transparent", "2M"). */
enum guest_mem_pages {
	GUEST_MEM_PAGES_4K,	     /* a memfd of ordinary pages */
	GUEST_MEM_PAGES_THP,	     /* anonymous memory, madvise(MADV_HUGEPAGE) */
	GUEST_MEM_PAGES_HUGETLB_2M, /* a memfd of 2 MiB hugetlbfs pages, reserved at map */
};
#define GUEST_MEM_HUGE_PAGE (2ULL << 20)

struct guest_mem_region {
	uint64_t gpa;  /* first guest-physical address */
	uint64_t size; /* bytes */
	uint8_t *hva;  /* where the region is mapped in this process */
};

struct guest_mem {
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
	int nregions;
	uint64_t ram_size; /* total RAM bytes, sum of the regions */
	int memfd;	   /* -1 when the memory is not memfd-backed (unit tests, restores) */
	int file_fd;	   /* a restored VM's memory file (mapped private), or -1 */
	uint8_t *mapping;  /* the single host mapping of all regions */
	/* True until a loader has written: fresh memory reads as zero, so a kernel's bss
	 * need not be cleared (clearing 5 MiB costs ~1,300 page faults at boot). */
	bool zero_filled;
};

/* Lays out ram_size bytes around the MMIO hole (see arch/x86/layout.h), backed by a
 * memfd. Returns 0 or -errno (-ENOMEM when the host cannot map that much). */
int guest_mem_create(struct guest_mem *mem, uint64_t ram_size);
/* The same backed as pages says. THP: anonymous memory advised MADV_HUGEPAGE (no
 * memfd). 2M: ram_size must be a multiple of 2 MiB, and every huge page is reserved
 * when mapped: -ENOMEM when the host has too few free (see guest_mem_huge_pages_free).
 * Returns 0 or -errno. */
int guest_mem_create_pages(struct guest_mem *mem, uint64_t ram_size, enum guest_mem_pages pages);
/* Free 2 MiB huge pages on the host (/proc/meminfo HugePages_Free when Hugepagesize
 * is 2048 kB), or -errno. */
long guest_mem_huge_pages_free(void);
/* Same layout over anonymous memory; for tests that need no KVM. */
int guest_mem_create_anon(struct guest_mem *mem, uint64_t ram_size);
/* Same layout over a snapshot's memory file (the regions one after the other, as
 * guest_mem_write_file writes them), mapped MAP_PRIVATE: pages load from the file when
 * the guest first touches them, and the guest's writes stay in this process. The file
 * must be exactly ram_size bytes; fd is kept (and closed by guest_mem_destroy).
 * Returns 0 or -errno (-EINVAL: another size). */
int guest_mem_create_private(struct guest_mem *mem, uint64_t ram_size, int fd);
void guest_mem_destroy(struct guest_mem *mem);

struct guest_mem_dump_stats {
	uint64_t written;  /* bytes of non-zero pages written */
	uint64_t skipped;  /* bytes left as holes: never touched, or all zeros */
};
/* Writes all guest RAM to fd (a regular file, truncated to ram_size first), region
 * after region, as a sparse file: pages the guest never touched (holes of the memfd)
 * and pages of zeros are not written, so they stay holes and read back as zeros.
 * Ends with fdatasync. Returns 0 or -errno. */
int guest_mem_write_file(const struct guest_mem *mem, int fd, struct guest_mem_dump_stats *st);

/* Host pointer to [gpa, gpa + len) when the whole range lies inside one RAM region,
 * NULL otherwise (out of RAM, straddling a region end, or wrapping past 2^64).
 * len 0 is treated as 1 so a pointer is never handed out for a hole. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* True when [gpa, gpa + len) is RAM in one region. */
bool guest_mem_contains(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* Highest RAM address + 1 below 4 GiB (end of the low region). */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
