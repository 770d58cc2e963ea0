/* Port I/O and MMIO buses: devices claim address ranges; a vCPU exit is routed to
 * the device whose range holds the address (kvmtool's and bhyve's shape). */
#ifndef ARGON_VMM_BUS_H
#define ARGON_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

/* A device's callbacks. offset is relative to the start of the claimed range; data
 * has len bytes (1, 2, 4 or 8). read fills data; an unset callback reads as all-ones
 * and ignores writes. Called on vCPU threads: a device protects its own state. */
struct bus_device_ops {
	const char *name;
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t size;
	const struct bus_device_ops *ops;
	void *opaque;
	uint64_t accesses; /* counted for metrics; updated atomically */
};

#define BUS_MAX_RANGES 32

struct bus {
	const char *name; /* "pio" or "mmio" */
	struct bus_range ranges[BUS_MAX_RANGES];
	int nranges;
};

void bus_init(struct bus *bus, const char *name);
/* Claims [base, base + size). Returns 0, -EEXIST on overlap, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t size, const struct bus_device_ops *ops,
		 void *opaque);
/* Routes an access; returns false when no device claims the address (reads then
 * return all-ones, as on a real bus with nothing behind it). */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
