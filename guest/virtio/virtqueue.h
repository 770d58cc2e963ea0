/* Split virtqueues (virtio 1.2, 2.7), driver side, with EVENT_IDX (2.7.10):
 * the driver publishes many buffers and notifies once per batch, and only
 * when the device asked for it through avail_event; completions are polled
 * from the used ring, and interrupts are wanted (used_event) only just
 * before the driver goes to sleep. Indirect tables (2.7.5.3) make any
 * request cost one ring slot. One user at a time: no locking. */
#ifndef GUEST_VIRTIO_VIRTQUEUE_H
#define GUEST_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio.h"

#define VQ_MAX_SIZE 256	   /* we ask for at most this many entries */
#define VQ_INDIRECT_MAX 16 /* buffers per indirect table */

#define VQ_DESC_F_NEXT 1
#define VQ_DESC_F_WRITE 2
#define VQ_DESC_F_INDIRECT 4

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One buffer of a request: device-readable ones come first (2.7.4.2). */
struct vq_buf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq {
	struct virtio_dev *dev;
	uint16_t index, size;
	struct vq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint8_t *used;	  /* flags, idx, ring[size], avail_event */
	struct vq_desc *indirect; /* VQ_INDIRECT_MAX entries per head, or NULL */
	void **cookies;		  /* per head */
	uint16_t free_head, num_free;
	uint16_t avail_idx;  /* next avail index we will publish */
	uint16_t kicked_idx; /* avail index at the last notify decision */
	uint16_t last_used;  /* next used entry we will read */
	bool irq_wanted;     /* used_event armed */
	uint64_t kicks, added, completed;
};

/* Sets up queue index of d with up to max entries (4.2.3.2): QueueNumMax,
 * QueueNum, ring addresses, QueueReady. Call between virtio_start and
 * virtio_driver_ok. Returns 0, or -1 after printing why. */
int vq_setup(struct virtq *vq, struct virtio_dev *d, uint16_t index, uint16_t max);

/* With the queue selected (QueueSel), writes its registers from its rings
 * (QueueNum, the three addresses, QueueReady); true when QueueReady reads back
 * 1. vq_setup's last step, and how virtio-abuse re-arms a queue after a reset. */
bool vq_program(const struct virtq *vq);

/* Adds one request of n buffers, remembered as cookie (not NULL). Uses an
 * indirect table when negotiated and n > 1. Not visible to the device until
 * vq_kick. Returns 0, or -1 when the ring is full. */
int vq_add(struct virtq *vq, const struct vq_buf *bufs, int n, void *cookie);

/* Free ring slots for requests of n buffers. */
bool vq_has_room(const struct virtq *vq, int n);

/* Publishes what vq_add queued and notifies the device if its avail_event
 * says it is waiting (2.7.10). Returns true when it notified. */
bool vq_kick(struct virtq *vq);

/* Next completed request's cookie (and bytes written by the device), or
 * NULL when none. Its descriptors are free again. */
void *vq_get_used(struct virtq *vq, uint32_t *len);

/* True when a completion is waiting. */
bool vq_has_used(const struct virtq *vq);

/* Before sleeping: ask for an interrupt at the next completion. Returns true
 * when one is already there (then do not sleep). */
bool vq_arm_irq(struct virtq *vq);

/* While polling: push the interrupt threshold out of reach. */
void vq_disarm_irq(struct virtq *vq);

/* wait.c: waiting for completions. */

/* Sleeps once: arms interrupts on the n queues, halts until any interrupt
 * (a completion, the 100 Hz timer, the console) unless a completion is
 * already there, then disarms. Callers loop and re-check their conditions. */
void vq_idle(struct virtq *const *vqs, int n);

/* Waits for a completion on vq: spins for a while (a completion usually
 * takes microseconds, an interrupt costs two exits to the VMM), then sleeps
 * in vq_idle. Returns false when timeout_us passed first. */
bool vq_wait_used(struct virtq *vq, uint64_t timeout_us);

/* TSC value timeout_us from now. */
uint64_t deadline_after_us(uint64_t timeout_us);

/* Requests added and not completed. */
static inline uint16_t vq_in_flight(const struct virtq *vq)
{
	return (uint16_t)(vq->added - vq->completed);
}

#endif
