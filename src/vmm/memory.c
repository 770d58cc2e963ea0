#include "vmm/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/util.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26) /* linux/memfd.h: log2(2 MiB) << MFD_HUGE_SHIFT */
#endif

/* RAM fills [0, hole start) first; whatever is left goes above 4 GiB. */
static void layout_regions(struct guest_mem *mem, uint64_t ram_size)
{
	uint64_t low = MIN(ram_size, LAYOUT_MMIO_HOLE_START);
	mem->regions[0] = (struct guest_mem_region){ .gpa = 0, .size = low };
	mem->nregions = 1;
	if (ram_size > low) {
		mem->regions[1] = (struct guest_mem_region){
			.gpa = LAYOUT_MMIO_HOLE_END,
			.size = ram_size - low,
		};
		mem->nregions = 2;
	}
	mem->ram_size = ram_size;
}

/* reserve: hugetlbfs pages are taken from the pool when mapped, so a host short of
 * them fails here (ENOMEM) rather than with SIGBUS when the guest first touches one. */
static int map_regions_as(struct guest_mem *mem, int fd, bool private, bool reserve)
{
	int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : private ? MAP_PRIVATE : MAP_SHARED;
	/* MAP_NORESERVE: guest memory is committed as the guest touches it, like any VMM. */
	flags |= reserve ? 0 : MAP_NORESERVE;
	void *p = mmap(NULL, mem->ram_size, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	mem->mapping = p;
	mem->zero_filled = true;
	uint64_t offset = 0;
	for (int i = 0; i < mem->nregions; i++) {
		mem->regions[i].hva = mem->mapping + offset;
		offset += mem->regions[i].size;
	}
	return 0;
}

static int map_regions(struct guest_mem *mem, int fd, bool private)
{
	return map_regions_as(mem, fd, private, false);
}

/* Anonymous memory the kernel may back with transparent huge pages (the THP setting
 * "madvise" or "always"); the snapshot writer and the balloon handle memfd-less RAM. */
static int create_thp(struct guest_mem *mem)
{
	int err = map_regions(mem, -1, false);
	if (!err && madvise(mem->mapping, mem->ram_size, MADV_HUGEPAGE) < 0) {
		err = -errno;
		guest_mem_destroy(mem);
	}
	return err;
}

int guest_mem_create_pages(struct guest_mem *mem, uint64_t ram_size, enum guest_mem_pages pages)
{
	bool huge = pages == GUEST_MEM_PAGES_HUGETLB_2M;
	memset(mem, 0, sizeof(*mem));
	mem->memfd = mem->file_fd = -1;
	if (ram_size == 0 || ram_size % (huge ? GUEST_MEM_HUGE_PAGE : 4096))
		return -EINVAL;
	layout_regions(mem, ram_size);
	if (pages == GUEST_MEM_PAGES_THP)
		return create_thp(mem);
	int fd = memfd_create("argon-guest-ram", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)ram_size) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	int err = map_regions_as(mem, fd, false, huge);
	if (err) {
		close(fd);
		return err;
	}
	mem->memfd = fd;
	return 0;
}

int guest_mem_create(struct guest_mem *mem, uint64_t ram_size)
{
	return guest_mem_create_pages(mem, ram_size, GUEST_MEM_PAGES_4K);
}

long guest_mem_huge_pages_free(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	char line[128];
	long free_pages = -ENOENT, size_kb = 0, v;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
			free_pages = v;
		else if (sscanf(line, "Hugepagesize: %ld kB", &v) == 1)
			size_kb = v;
	}
	fclose(f);
	if (free_pages >= 0 && size_kb != (long)(GUEST_MEM_HUGE_PAGE >> 10))
		return -EOPNOTSUPP; /* another default size: count 2 MiB pages in sysfs instead */
	return free_pages;
}

int guest_mem_create_anon(struct guest_mem *mem, uint64_t ram_size)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = mem->file_fd = -1;
	if (ram_size == 0 || ram_size % 4096)
		return -EINVAL;
	layout_regions(mem, ram_size);
	return map_regions(mem, -1, false);
}

int guest_mem_create_private(struct guest_mem *mem, uint64_t ram_size, int fd)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = mem->file_fd = -1;
	struct stat st;
	if (ram_size == 0 || ram_size % 4096)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_size)
		return -EINVAL;
	layout_regions(mem, ram_size);
	int err = map_regions(mem, fd, true);
	mem->zero_filled = false; /* the file's content is the guest's */
	if (!err)
		mem->file_fd = fd;
	return err;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->mapping)
		munmap(mem->mapping, mem->ram_size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	if (mem->file_fd >= 0)
		close(mem->file_fd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = mem->file_fd = -1;
}

/* ---- the memory file of a snapshot ---- */

#define DUMP_PAGE 4096ULL
#define DUMP_CHUNK (1ULL << 20) /* the most one pwrite takes */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < DUMP_PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

static int write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, MIN(len, DUMP_CHUNK), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n, off += (uint64_t)n, len -= (uint64_t)n;
	}
	return 0;
}

/* [off, end) of the mapping (file offsets = mapping offsets): runs of non-zero pages
 * written, zero pages skipped. */
static int dump_range(const struct guest_mem *mem, int fd, uint64_t off, uint64_t end,
		      struct guest_mem_dump_stats *st)
{
	uint64_t run = off; /* start of the current run of non-zero pages */
	for (uint64_t p = off; p <= end; p += DUMP_PAGE) {
		bool zero = p == end || page_is_zero(mem->mapping + p);
		if (!zero && p - run < DUMP_CHUNK)
			continue;
		if (p > run) {
			int err = write_all(fd, mem->mapping + run, p - run, run);
			if (err)
				return err;
			st->written += p - run;
		}
		st->skipped += zero && p < end ? DUMP_PAGE : 0;
		run = zero ? p + DUMP_PAGE : p;
	}
	return 0;
}

/* Where a restored VM's memory may hold more than zeros (its memory is the memory file
 * mapped private): pages this process has its own copy of, present or swapped in
 * /proc/self/pagemap (the guest wrote or read them), and pages where the file has
 * data. Any other page is a hole of the file the guest never touched. Without
 * pagemap every page counts as used. Read a block of pagemap at a time. */
#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62)
#define PAGEMAP_BLOCK 512

struct used_pages {
	const struct guest_mem *mem;
	int pagemap;
	uint64_t block; /* first page of entries[], or UINT64_MAX */
	uint64_t entries[PAGEMAP_BLOCK];
	/* The file from `from` on: no data before `data`, data in [data, hole). */
	uint64_t from, data, hole;
};

static bool file_has_data(struct used_pages *u, uint64_t off)
{
	if (off < u->from || off >= u->hole) {
		off_t d = lseek(u->mem->file_fd, (off_t)off, SEEK_DATA);
		off_t h = d < 0 ? -1 : lseek(u->mem->file_fd, d, SEEK_HOLE);
		u->from = off;
		u->data = d < 0 ? u->mem->ram_size : (uint64_t)d;
		u->hole = h < 0 ? u->mem->ram_size : (uint64_t)h;
	}
	return off + DUMP_PAGE > u->data && off < u->hole;
}

static bool page_used(struct used_pages *u, uint64_t off)
{
	uint64_t page = ((uintptr_t)u->mem->mapping + off) / DUMP_PAGE;
	if (u->pagemap < 0)
		return true;
	if (page - u->block >= PAGEMAP_BLOCK) {
		u->block = page;
		if (pread(u->pagemap, u->entries, sizeof(u->entries), (off_t)(page * 8)) <= 0)
			return true;
	}
	return (u->entries[page - u->block] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED)) ||
	       file_has_data(u, off);
}

/* The next range at or after from that may hold data: the memfd's populated ranges
 * (SEEK_DATA/SEEK_HOLE on shmem: a guest of 2 GiB that touched 20 MiB costs 20 MiB of
 * reading), a restored VM's used pages, or everything. -ENXIO past the end. */
static int next_data(const struct guest_mem *mem, struct used_pages *u, uint64_t from,
		     uint64_t *start, uint64_t *end)
{
	if (mem->memfd >= 0) {
		off_t d = lseek(mem->memfd, (off_t)from, SEEK_DATA);
		if (d < 0)
			return errno == ENXIO ? -ENXIO : -errno;
		off_t h = lseek(mem->memfd, d, SEEK_HOLE);
		*start = ALIGN_DOWN((uint64_t)d, DUMP_PAGE);
		*end = MIN(ALIGN_UP(h < 0 ? mem->ram_size : (uint64_t)h, DUMP_PAGE), mem->ram_size);
		return 0;
	}
	uint64_t at = from;
	while (at < mem->ram_size && mem->file_fd >= 0 && !page_used(u, at))
		at += DUMP_PAGE;
	if (at >= mem->ram_size)
		return -ENXIO;
	*start = at;
	while (at < mem->ram_size && (mem->file_fd < 0 || page_used(u, at)))
		at += DUMP_PAGE;
	*end = at;
	return 0;
}

int guest_mem_write_file(const struct guest_mem *mem, int fd, struct guest_mem_dump_stats *st)
{
	*st = (struct guest_mem_dump_stats){ 0 };
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)mem->ram_size) < 0)
		return -errno;
	struct used_pages u = { .mem = mem, .block = UINT64_MAX, .from = 1 };
	u.pagemap = mem->memfd < 0 ? open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC) : -1;
	uint64_t at = 0, start = 0, end = 0;
	int err;
	while ((err = next_data(mem, &u, at, &start, &end)) == 0) {
		st->skipped += start - at;
		err = dump_range(mem, fd, start, end, st);
		if (err)
			break;
		at = end;
	}
	if (u.pagemap >= 0)
		close(u.pagemap);
	if (err != -ENXIO)
		return err;
	st->skipped += mem->ram_size - at;
	return fdatasync(fd) < 0 ? -errno : 0;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		/* Written so no sum can wrap: gpa >= r->gpa, then compare remaining room. */
		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

bool guest_mem_contains(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(mem, gpa, len) != NULL;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->nregions > 0 ? mem->regions[0].size : 0;
}
