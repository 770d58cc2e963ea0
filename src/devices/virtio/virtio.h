/* The virtio device model, independent of the transport (bhyve's split): a device is
 * a static const ops table plus its backend; the virtio-mmio transport owns feature
 * negotiation, status, queues, notifications (ioeventfd) and interrupts (irqfd).
 * Queue work runs on the VM's event loop thread, never on a vCPU. */
#ifndef ARGON_DEVICES_VIRTIO_VIRTIO_H
#define ARGON_DEVICES_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "devices/virtio/virtqueue.h"

struct vm;
struct virtio_device;

/* virtio 1.2, 5: device IDs. */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* virtio 1.2, 6: reserved feature bits the transport handles. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* virtio 1.2, 2.1: device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

#define VIRTIO_MAX_QUEUES 8

struct virtio_device_ops {
	const char *name;	   /* "virtio-blk": in logs and metrics */
	uint32_t device_id;
	uint32_t num_queues;
	uint16_t queue_max_size;   /* power of two, <= VIRTQ_MAX_SIZE */
	uint32_t config_size;	   /* bytes of device-specific configuration */
	/* Device-specific feature bits offered (the transport adds VERSION_1, EVENT_IDX
	 * and INDIRECT_DESC). May be NULL for none. */
	uint64_t (*features)(struct virtio_device *dev);
	/* Reads/writes device configuration; offset + len <= config_size, checked by the
	 * transport. write_config may be NULL (read-only configuration). Called on vCPU
	 * threads with dev->lock held. */
	void (*read_config)(struct virtio_device *dev, uint32_t offset, uint8_t *data,
			    uint32_t len);
	void (*write_config)(struct virtio_device *dev, uint32_t offset, const uint8_t *data,
			     uint32_t len);
	/* The driver set DRIVER_OK: queues are ready, features final. Return 0, or a
	 * negative errno to refuse (the device then reports NEEDS_RESET). */
	int (*activate)(struct virtio_device *dev);
	/* The driver wrote status 0; drop all in-flight state. dev->lock held. */
	void (*reset)(struct virtio_device *dev);
	/* The driver notified queue q (or the transport re-polls it). Runs on the event
	 * loop thread with dev->lock held. */
	void (*queue_notify)(struct virtio_device *dev, uint32_t q);
	/* The VM is going away (its vCPUs and event loop have stopped): release the
	 * backend (files, sockets, memory). May be NULL. */
	void (*destroy)(struct virtio_device *dev);
};

/* Warnings a driver can trigger, each rate-limited per device (common/log.h). */
enum virtio_log_reason {
	VIRTIO_LOG_QUEUE_LAYOUT,   /* ring address or size written while the queue is ready */
	VIRTIO_LOG_QUEUE_REFUSED,  /* QueueReady refused: size or ring addresses */
	VIRTIO_LOG_FEATURES,	   /* FEATURES_OK refused */
	VIRTIO_LOG_STATUS,	   /* DRIVER_OK out of order, FAILED */
	VIRTIO_LOG_NEEDS_RESET,	   /* the device stopped until the driver resets it */
	VIRTIO_LOG_DEVICE,	   /* the device's own request errors */
	VIRTIO_LOG_REASONS
};

struct virtio_notify_ctx {
	struct virtio_device *dev;
	uint32_t queue;
};

struct virtio_device {
	struct vm *vm;
	const struct virtio_device_ops *ops;
	void *backend; /* the device's own state */
	uint64_t mmio_base;
	uint32_t gsi;
	pthread_mutex_t lock;
	/* Transport state (virtio-mmio registers). */
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t device_features, driver_features;
	/* atomic: InterruptStatus in the low 32 bits, the bits raised since the driver
	 * last read it in the high 32 (mmio.c, ack_interrupt) */
	uint64_t interrupt_status;
	uint32_t config_generation;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	int notify_fds[VIRTIO_MAX_QUEUES]; /* ioeventfds on QueueNotify */
	struct virtio_notify_ctx notify_ctx[VIRTIO_MAX_QUEUES];
	int irq_fd;			   /* irqfd on gsi */
	uint64_t notifies, interrupts;	   /* counted for metrics */
	/* Kept across device resets, so a driver cannot renew them. */
	struct log_limit log_limits[VIRTIO_LOG_REASONS];
};

/* A warning the driver caused, named by device and rate-limited per reason. */
#define virtio_warn(dev, reason, fmt, ...)                                           \
	log_limited(&(dev)->log_limits[reason], LOG_WARN, __func__, "%s: " fmt,        \
		    (dev)->ops->name, ##__VA_ARGS__)

/* True while the device may use its queues: the driver accepted the features
 * (FEATURES_OK) and set DRIVER_OK, has not given up (FAILED), and the device does
 * not need a reset (virtio 1.2, 2.1 and 3.1.1). */
static inline bool virtio_device_running(const struct virtio_device *dev)
{
	const uint32_t need = VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	const uint32_t stop = VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET;
	return (dev->status & (need | stop)) == need;
}

/* True when the driver accepted feature bit `bit`. */
static inline bool virtio_has_feature(const struct virtio_device *dev, unsigned bit)
{
	return (dev->driver_features >> bit) & 1;
}

/* ---- snapshots (issue 9): the transport's state, as snapshot/virtio_section.c
 * writes and reads it ---- */
struct virtq_state {
	uint16_t size;
	bool ready, event_idx, indirect;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t last_avail_idx, used_idx, signalled_used;
	bool signalled_valid;
};

struct virtio_transport_state {
	uint32_t device_id, num_queues; /* what the device was: checked, not set */
	uint64_t mmio_base;
	uint32_t gsi;
	uint32_t status;
	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t device_features, driver_features;
	uint32_t interrupt_status; /* InterruptStatus (4.2.2): USED_BUFFER, CONFIG_CHANGE */
	uint32_t config_generation;
	struct virtq_state queues[VIRTIO_MAX_QUEUES];
};

#define VIRTIO_INTERRUPT_USED_BUFFER 1
#define VIRTIO_INTERRUPT_CONFIG_CHANGE 2

/* The transport's state; dev->lock taken. The device must be quiet (VM paused). */
void virtio_mmio_get_state(struct virtio_device *dev, struct virtio_transport_state *s);
/* Puts a state that snapshot/virtio_section.c checked against dev back into a device
 * just created, without the driver renegotiating: registers, features, status, and
 * every ready queue activated against guest memory with its indices. Returns 0, or
 * -EINVAL when a queue's rings do not map (nothing is started then). */
int virtio_mmio_set_state(struct virtio_device *dev, const struct virtio_transport_state *s);
/* After the device's own state is back: a running device's backend is activated
 * (ops->activate, as on DRIVER_OK), its queues kicked so work the driver queued is
 * seen, and an interrupt the driver had not acknowledged raised again. Returns 0 or
 * the activation's -errno. */
int virtio_mmio_resume(struct virtio_device *dev);

/* Creates a virtio-mmio device at the next free slot (LAYOUT_VIRTIO_MMIO_BASE + n *
 * LAYOUT_VIRTIO_MMIO_SIZE) with the next free GSI, and registers it with the VM (MMIO
 * bus, ioeventfds, irqfd, and the firmware/command-line description). Returns 0 with
 * *out set, or -errno. */
int virtio_mmio_create(struct vm *vm, const struct virtio_device_ops *ops, void *backend,
		       struct virtio_device **out);

/* A register or configuration access as a vCPU makes it (tests and fuzzing). */
void virtio_mmio_access(struct virtio_device *dev, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write);

/* Tears the device down with its VM: ops->destroy, then the transport's fds. Call
 * after the vCPUs and the event loop have stopped. */
void virtio_mmio_destroy(struct virtio_device *dev);

/* Raises the used-buffer interrupt when virtq_should_notify() says the driver wants it. */
void virtio_notify_used(struct virtio_device *dev, uint32_t q);
/* The same for the queues in mask (bit q for queue q) at once: virtio-mmio has one
 * interrupt per device and its handler looks at every queue (virtio 1.2, 4.2.3.4), so
 * at most one interrupt is raised however many queues want one. */
void virtio_notify_used_queues(struct virtio_device *dev, uint32_t mask);
/* Raises the configuration-change interrupt (after the device changed its config). */
void virtio_notify_config(struct virtio_device *dev);
/* The driver broke the rules: set DEVICE_NEEDS_RESET and tell it (virtio 1.2, 2.1.2). */
void virtio_set_needs_reset(struct virtio_device *dev, const char *why);

/* virtq_pop as every device needs it (virtio_pop.c): on an empty queue, notifications
 * are re-enabled (when rearm: a polling loop leaves them off) and the queue looked at
 * once more, since work may have arrived meanwhile (2.7.10); a broken ring puts the
 * device in NEEDS_RESET, `broken` saying which queue. Returns what virtq_pop does: 1
 * with a chain, 0 when empty, -EINVAL for a malformed chain (its head in c: give it
 * back), -EIO when the ring is broken (the reset is already asked for). */
int virtio_pop(struct virtio_device *dev, struct virtq *vq, struct virtq_chain *c, bool rearm,
	       const char *broken);

#endif
