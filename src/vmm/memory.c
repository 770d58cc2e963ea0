#include "vmm/memory.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/util.h"

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

static int map_regions(struct guest_mem *mem, int fd)
{
	int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
	/* MAP_NORESERVE: guest memory is committed as the guest touches it, like any VMM. */
	void *p = mmap(NULL, mem->ram_size, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, fd, 0);
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

int guest_mem_create(struct guest_mem *mem, uint64_t ram_size)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	if (ram_size == 0 || ram_size % 4096)
		return -EINVAL;
	layout_regions(mem, ram_size);
	int fd = memfd_create("argon-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)ram_size) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	int err = map_regions(mem, fd);
	if (err) {
		close(fd);
		return err;
	}
	mem->memfd = fd;
	return 0;
}

int guest_mem_create_anon(struct guest_mem *mem, uint64_t ram_size)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	if (ram_size == 0 || ram_size % 4096)
		return -EINVAL;
	layout_regions(mem, ram_size);
	return map_regions(mem, -1);
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->mapping)
		munmap(mem->mapping, mem->ram_size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
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
