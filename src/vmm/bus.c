#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

static bool ranges_overlap(uint64_t a, uint64_t asize, uint64_t b, uint64_t bsize)
{
	return a < b + bsize && b < a + asize;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t size, const struct bus_device_ops *ops,
		 void *opaque)
{
	if (size == 0 || base + size < base)
		return -EINVAL;
	for (int i = 0; i < bus->nranges; i++)
		if (ranges_overlap(base, size, bus->ranges[i].base, bus->ranges[i].size))
			return -EEXIST;
	if (bus->nranges == BUS_MAX_RANGES)
		return -ENOSPC;
	bus->ranges[bus->nranges++] = (struct bus_range){
		.base = base, .size = size, .ops = ops, .opaque = opaque,
	};
	return 0;
}

static struct bus_range *bus_find(struct bus *bus, uint64_t addr)
{
	/* A handful of ranges: a linear scan beats anything cleverer. */
	for (int i = 0; i < bus->nranges; i++) {
		struct bus_range *r = &bus->ranges[i];
		if (addr >= r->base && addr - r->base < r->size)
			return r;
	}
	return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct bus_range *r = bus_find(bus, addr);
	if (!r) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	__atomic_add_fetch(&r->accesses, 1, __ATOMIC_RELAXED);
	uint64_t offset = addr - r->base;
	if (is_write) {
		if (r->ops->write)
			r->ops->write(r->opaque, offset, data, len);
	} else if (r->ops->read) {
		r->ops->read(r->opaque, offset, data, len);
	} else {
		memset(data, 0xff, len);
	}
	return true;
}
