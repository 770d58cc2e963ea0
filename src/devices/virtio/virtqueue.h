/* Split virtqueues (virtio 1.2, 2.7): the one descriptor-chain walker every device
 * uses. Everything in the rings is guest-controlled and validated here: indices below
 * the queue size, chains bounded by the queue size (no loops), indirect tables well
 * formed and not nested, every buffer inside guest RAM, device-readable buffers
 * before device-writable ones. */
#ifndef ARGON_DEVICES_VIRTIO_VIRTQUEUE_H
#define ARGON_DEVICES_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"

#define VIRTQ_MAX_SIZE 1024 /* largest queue size argon offers */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/* One guest buffer of a chain, already translated and bounds-checked. */
struct virtq_buf {
	uint8_t *hva;
	uint32_t len;
	uint64_t gpa;
};

/* A validated chain: nread device-readable buffers, then nwrite device-writable. */
struct virtq_chain {
	uint16_t head;	  /* what goes back in the used ring */
	uint16_t nread, nwrite;
	uint32_t read_len;  /* total bytes the device may read */
	uint32_t write_len; /* total bytes the device may write */
	struct virtq_buf bufs[VIRTQ_MAX_SIZE];
};

struct virtq {
	struct guest_mem *mem;
	uint16_t size; /* power of two, 1..VIRTQ_MAX_SIZE */
	bool ready;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_INDIRECT_DESC negotiated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the rings, set by virtq_activate. */
	void *desc, *avail, *used;
	uint16_t last_avail_idx; /* next avail entry the device will take */
	uint16_t used_idx;	 /* next used entry the device will fill */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool signalled_valid;
	bool broken; /* the driver broke the ring's rules: the device needs a reset */
	const char *broken_why; /* which rule, for the device's NEEDS_RESET line */
};

/* Checks size and ring addresses (alignment, inside RAM) and maps the rings. Returns 0
 * or -EINVAL; on error the queue stays not ready. */
int virtq_activate(struct virtq *vq, struct guest_mem *mem, bool event_idx, bool indirect);
void virtq_reset(struct virtq *vq);

/* Takes the next available chain. Returns 1 with *chain filled, 0 when none is
 * available, -EINVAL when this chain is malformed (its head is in chain->head: give
 * it back with virtq_push(len 0) and carry on), or -EIO when the ring itself is broken
 * (vq->broken is set: stop using the queue; the device needs a reset). */
int virtq_pop(struct virtq *vq, struct virtq_chain *chain);
/* Gives back the last n chains virtq_pop took and nobody pushed: the next virtq_pop
 * takes them again (the driver never sees the difference). */
void virtq_unpop(struct virtq *vq, uint16_t n);
/* Returns a chain to the driver with len bytes written. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* After pushing: true when the driver asked to be interrupted now (EVENT_IDX's
 * used_event, or no VIRTQ_AVAIL_F_NO_INTERRUPT). */
bool virtq_should_notify(struct virtq *vq);
/* Before sleeping: publishes how far the device has read (avail_event) so the driver
 * notifies only for new work; returns true when more work arrived meanwhile. */
bool virtq_enable_notify(struct virtq *vq);
/* Number of chains available and not yet taken (0 when the ring is broken). */
uint16_t virtq_available(struct virtq *vq);

/* Copies up to len bytes of the chain's readable part, from offset, into dst;
 * returns the bytes copied. */
uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t offset, void *dst, uint32_t len);
/* Copies len bytes into the chain's writable part at offset; returns bytes copied. */
uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t offset, const void *src,
			   uint32_t len);

#endif
