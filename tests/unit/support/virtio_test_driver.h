/* A host-side virtio driver for unit tests: it lays out split rings in (anonymous)
 * guest memory, offers chains and kicks a device's ops directly, with no KVM and no
 * guest. Raw access to the rings lets tests write hostile descriptors. */
#ifndef ARGON_TESTS_VIRTIO_TEST_DRIVER_H
#define ARGON_TESTS_VIRTIO_TEST_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/virtio.h"
#include "vmm/vm.h"

struct vtd_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vtd_queue {
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t next_desc;  /* descriptors are handed out round-robin */
	uint16_t avail_idx;  /* driver's copy of avail->idx */
	uint16_t last_used;  /* next used entry the driver will read */
};

struct vtd {
	struct vm vm; /* only mem and loop are real */
	struct virtio_device dev;
	struct vtd_queue q[VIRTIO_MAX_QUEUES];
	uint64_t next_free; /* bump allocator for buffers, in guest-physical space */
};

/* One buffer of a chain to offer: gpa from vtd_alloc, device-writable or not. */
struct vtd_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Builds guest memory (mem_mib), an event loop, the device with ops/backend, queues of
 * queue_size (0: ops->queue_max_size) negotiated with features (transport bits
 * VERSION_1 | EVENT_IDX | INDIRECT_DESC added when add_transport_features), then
 * calls ops->activate. Returns 0 or the failing step's negative errno. */
int vtd_init(struct vtd *t, const struct virtio_device_ops *ops, void *backend,
	     uint64_t mem_mib, uint64_t features, uint16_t queue_size);
void vtd_destroy(struct vtd *t);

/* Guest memory for buffers: returns a gpa (16-byte aligned) and, in *hva, its host view. */
uint64_t vtd_alloc(struct vtd *t, uint32_t len, void **hva);
/* Offers a chain of n buffers on queue q (without kicking); returns its head. */
uint16_t vtd_add_chain(struct vtd *t, uint32_t q, const struct vtd_buf *bufs, int n);
/* Publishes head in the available ring as the driver would, whatever it points at. */
void vtd_add_head(struct vtd *t, uint32_t q, uint16_t head);
/* The descriptor table, for writing hostile chains by hand. */
struct vtd_desc *vtd_desc_table(struct vtd *t, uint32_t q);
/* Overwrites avail->idx (hostile index tests). */
void vtd_set_avail_idx(struct vtd *t, uint32_t q, uint16_t idx);
/* Calls the device's queue_notify for q as the transport would. */
void vtd_kick(struct vtd *t, uint32_t q);
/* Takes the next used element: 1 with id/len set, 0 when none. */
int vtd_get_used(struct vtd *t, uint32_t q, uint32_t *id, uint32_t *len);
/* Runs the event loop until a used element is on q or timeout_ms passes; 1 if one is. */
int vtd_wait_used(struct vtd *t, uint32_t q, int timeout_ms);
/* Interrupts the device raised since the last call (reads the irq eventfd). */
uint64_t vtd_interrupts(struct vtd *t);

#endif
