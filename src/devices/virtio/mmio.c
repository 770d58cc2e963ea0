/* The virtio-mmio transport, register layout version 2 (virtio 1.2, 4.2.2). Queue
 * notifications are KVM ioeventfds on QueueNotify and interrupts are irqfds, so the
 * data path costs the guest no exit to user space. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/log.h"
#include "devices/virtio/virtio.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#define MMIO_MAGIC 0x74726976u	/* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR 0x4e475241u /* "ARGN" */

enum mmio_reg {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

#define INTERRUPT_USED_BUFFER VIRTIO_INTERRUPT_USED_BUFFER
#define INTERRUPT_CONFIG_CHANGE VIRTIO_INTERRUPT_CONFIG_CHANGE

/* GSIs for virtio-mmio devices: IOAPIC pins not used by ISA devices argon has. */
static const uint32_t virtio_gsis[] = { 5, 6, 7, 9, 10, 11, 12, 13, 14, 15,
					16, 17, 18, 19, 20, 21, 22, 23 };

/* InterruptStatus (4.2.2) is the low half of dev->interrupt_status; the high half
 * holds the bits raised since the driver last read it. The driver's InterruptACK
 * write is coalesced by KVM (no exit; wire_device) and so may be applied after the
 * device raised the same bit again: a bit raised after the read that the ACK
 * answers stays set, or the driver would read 0 in the handler of an interrupt it
 * has not seen and leave used buffers unnoticed. Raising (event loop), reading and
 * acknowledging (vCPUs) are each one atomic step on the word. */
#define RAISED_SINCE_READ(bits) ((uint64_t)(bits) << 32)

static uint32_t read_interrupt_status(struct virtio_device *dev)
{
	return (uint32_t)__atomic_fetch_and(&dev->interrupt_status, 0xffffffffULL,
					    __ATOMIC_ACQ_REL);
}

static void ack_interrupt(struct virtio_device *dev, uint32_t bits)
{
	uint64_t old = __atomic_load_n(&dev->interrupt_status, __ATOMIC_RELAXED), new;
	do
		new = old & ~(uint64_t)(bits & ~(uint32_t)(old >> 32));
	while (!__atomic_compare_exchange_n(&dev->interrupt_status, &old, new, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
}

static struct virtq *selected_queue(struct virtio_device *dev)
{
	return dev->queue_sel < dev->ops->num_queues ? &dev->queues[dev->queue_sel] : NULL;
}

static uint32_t read_register(struct virtio_device *dev, uint64_t reg)
{
	struct virtq *vq = selected_queue(dev);
	switch (reg) {
	case REG_MAGIC: return MMIO_MAGIC;
	case REG_VERSION: return MMIO_VERSION;
	case REG_DEVICE_ID: return dev->ops->device_id;
	case REG_VENDOR_ID: return MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return dev->device_features_sel < 2
			       ? (uint32_t)(dev->device_features >> (32 * dev->device_features_sel))
			       : 0;
	case REG_QUEUE_NUM_MAX: return vq ? dev->ops->queue_max_size : 0;
	case REG_QUEUE_NUM: return vq ? vq->size : 0;
	case REG_QUEUE_READY: return vq ? vq->ready : 0;
	case REG_INTERRUPT_STATUS: return read_interrupt_status(dev);
	case REG_STATUS: return dev->status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH: return 0xffffffff; /* 4.2.2: no shared memory regions */
	case REG_CONFIG_GENERATION: return dev->config_generation;
	default: return 0;
	}
}

/* 4.2.3.2: queue layout may only change while the queue is not ready. */
static void write_queue_field(struct virtio_device *dev, uint64_t reg, uint32_t v)
{
	struct virtq *vq = selected_queue(dev);
	if (!vq)
		return;
	if (vq->ready) {
		virtio_warn(dev, VIRTIO_LOG_QUEUE_LAYOUT,
			    "queue %u changed while ready (register 0x%llx); ignored", dev->queue_sel,
			    (unsigned long long)reg);
		return;
	}
	uint64_t *field = reg < REG_QUEUE_DRIVER_LOW   ? &vq->desc_gpa
			  : reg < REG_QUEUE_DEVICE_LOW ? &vq->avail_gpa
						       : &vq->used_gpa;
	if (reg == REG_QUEUE_DESC_LOW || reg == REG_QUEUE_DRIVER_LOW || reg == REG_QUEUE_DEVICE_LOW)
		*field = (*field & 0xffffffff00000000ULL) | v;
	else
		*field = (*field & 0xffffffffULL) | ((uint64_t)v << 32);
}

static void set_queue_num(struct virtio_device *dev, uint32_t v)
{
	struct virtq *vq = selected_queue(dev);
	if (vq && !vq->ready)
		vq->size = v > dev->ops->queue_max_size ? 0 : (uint16_t)v;
}

static void set_queue_ready(struct virtio_device *dev, uint32_t v)
{
	struct virtq *vq = selected_queue(dev);
	if (!vq)
		return;
	if (!v) {
		vq->ready = false;
		return;
	}
	if (vq->ready)
		return;
	bool event_idx = virtio_has_feature(dev, VIRTIO_F_EVENT_IDX);
	bool indirect = virtio_has_feature(dev, VIRTIO_F_INDIRECT_DESC);
	if (virtq_activate(vq, &dev->vm->mem, event_idx, indirect))
		virtio_warn(dev, VIRTIO_LOG_QUEUE_REFUSED,
			    "queue %u refused: size %u must be a power of two up to %u and the "
			    "rings aligned inside guest RAM", dev->queue_sel, vq->size,
			    dev->ops->queue_max_size);
}

static void reset_device(struct virtio_device *dev)
{
	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (uint32_t q = 0; q < dev->ops->num_queues; q++) {
		dev->queues[q].size = dev->ops->queue_max_size;
		virtq_reset(&dev->queues[q]);
	}
	dev->status = 0;
	dev->driver_features = 0;
	dev->device_features_sel = dev->driver_features_sel = dev->queue_sel = 0;
	__atomic_store_n(&dev->interrupt_status, 0, __ATOMIC_RELEASE);
}

/* Kicks every queue through its eventfd so work queued before DRIVER_OK is seen. */
static void kick_all_queues(struct virtio_device *dev)
{
	uint64_t one = 1;
	for (uint32_t q = 0; q < dev->ops->num_queues; q++)
		if (write(dev->notify_fds[q], &one, sizeof(one)) < 0)
			log_debug("%s: kick queue %u: %m", dev->ops->name, q);
}

/* 3.1.1: the features are acceptable when VERSION_1 is among them and none was
 * not offered. */
static bool features_acceptable(const struct virtio_device *dev)
{
	return !(dev->driver_features & ~dev->device_features) &&
	       virtio_has_feature(dev, VIRTIO_F_VERSION_1);
}

/* 3.1.1: the device starts only on DRIVER_OK after FEATURES_OK was accepted, and
 * never after the driver set FAILED; otherwise it needs a reset (2.1.2). */
static void start_device(struct virtio_device *dev)
{
	if (!(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_set_needs_reset(dev, "DRIVER_OK without accepted features (FEATURES_OK)");
		return;
	}
	if (dev->status & VIRTIO_STATUS_FAILED) {
		virtio_warn(dev, VIRTIO_LOG_STATUS, "DRIVER_OK after FAILED; not started");
		return;
	}
	if (dev->ops->activate && dev->ops->activate(dev))
		virtio_set_needs_reset(dev, "the device could not start");
	else
		kick_all_queues(dev);
}

/* 2.1: the driver sets status bits one by one and clears them only by writing 0 (a
 * reset); DEVICE_NEEDS_RESET is the device's alone to set. */
static void write_status(struct virtio_device *dev, uint32_t v)
{
	if (v == 0) {
		reset_device(dev);
		return;
	}
	uint32_t added = v & 0xff & ~(uint32_t)VIRTIO_STATUS_NEEDS_RESET & ~dev->status;
	if ((added & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(dev)) {
		/* 3.1.1: leaving FEATURES_OK clear tells the driver we refuse them. */
		virtio_warn(dev, VIRTIO_LOG_FEATURES,
			    "driver features 0x%llx refused (offered 0x%llx, VERSION_1 required)",
			    (unsigned long long)dev->driver_features,
			    (unsigned long long)dev->device_features);
		added &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
	}
	dev->status |= added;
	if (added & VIRTIO_STATUS_FAILED)
		log_debug("%s: the driver gave up (FAILED)", dev->ops->name);
	if (added & VIRTIO_STATUS_DRIVER_OK)
		start_device(dev);
}

static void write_register(struct virtio_device *dev, uint64_t reg, uint32_t v)
{
	switch (reg) {
	case REG_DEVICE_FEATURES_SEL: dev->device_features_sel = v; break;
	case REG_DRIVER_FEATURES:
		if (dev->driver_features_sel < 2 && !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
			unsigned shift = 32 * dev->driver_features_sel;
			dev->driver_features &= ~(0xffffffffULL << shift);
			dev->driver_features |= (uint64_t)v << shift;
		}
		break;
	case REG_DRIVER_FEATURES_SEL: dev->driver_features_sel = v; break;
	case REG_QUEUE_SEL: dev->queue_sel = v; break;
	case REG_QUEUE_NUM: set_queue_num(dev, v); break;
	case REG_QUEUE_READY: set_queue_ready(dev, v); break;
	case REG_QUEUE_NOTIFY:
		/* Normally absorbed by the ioeventfd; here only if it was not a 32-bit write. */
		if (v < dev->ops->num_queues)
			write(dev->notify_fds[v], &(uint64_t){ 1 }, sizeof(uint64_t));
		break;
	case REG_INTERRUPT_ACK: ack_interrupt(dev, v); break;
	case REG_STATUS: write_status(dev, v); break;
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		write_queue_field(dev, reg, v);
		break;
	default: break; /* read-only or reserved: ignored */
	}
}

static bool config_access_ok(struct virtio_device *dev, uint64_t offset, uint32_t len)
{
	uint64_t off = offset - REG_CONFIG;
	return len && off < dev->ops->config_size && len <= dev->ops->config_size - off;
}

static void mmio_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_device *dev = opaque;
	memset(data, 0, len);
	pthread_mutex_lock(&dev->lock);
	if (offset >= REG_CONFIG) {
		if (config_access_ok(dev, offset, len) && dev->ops->read_config)
			dev->ops->read_config(dev, (uint32_t)(offset - REG_CONFIG), data, len);
	} else if (len == 4 && offset % 4 == 0) { /* 4.2.2.2: 32-bit aligned only */
		uint32_t v = read_register(dev, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&dev->lock);
}

static void mmio_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct virtio_device *dev = opaque;
	pthread_mutex_lock(&dev->lock);
	if (offset >= REG_CONFIG) {
		if (config_access_ok(dev, offset, len) && dev->ops->write_config)
			dev->ops->write_config(dev, (uint32_t)(offset - REG_CONFIG), data, len);
	} else if (len == 4 && offset % 4 == 0) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_register(dev, offset, v);
	}
	pthread_mutex_unlock(&dev->lock);
}

void virtio_mmio_access(struct virtio_device *dev, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	if (is_write)
		mmio_write(dev, offset, data, len);
	else
		mmio_read(dev, offset, data, len);
}

static const struct bus_device_ops virtio_mmio_ops = {
	.name = "virtio-mmio",
	.read = mmio_read,
	.write = mmio_write,
};

/* A guest notification, absorbed in the kernel by the ioeventfd, wakes us here. */
static void on_queue_notify(void *opaque, uint32_t events)
{
	struct virtio_notify_ctx *ctx = opaque;
	struct virtio_device *dev = ctx->dev;
	uint64_t count;
	if (read(dev->notify_fds[ctx->queue], &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&dev->lock);
	dev->notifies++;
	struct virtq *vq = &dev->queues[ctx->queue];
	if (virtio_device_running(dev) && vq->ready && dev->ops->queue_notify)
		dev->ops->queue_notify(dev, ctx->queue);
	pthread_mutex_unlock(&dev->lock);
}

static int wire_queue(struct virtio_device *dev, uint32_t q)
{
	dev->notify_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->notify_fds[q] < 0)
		return -errno;
	struct kvm_ioeventfd io = {
		.datamatch = q, .addr = dev->mmio_base + REG_QUEUE_NOTIFY, .len = 4,
		.fd = dev->notify_fds[q], .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};
	if (ioctl(dev->vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	dev->notify_ctx[q] = (struct virtio_notify_ctx){ .dev = dev, .queue = q };
	return event_loop_add(dev->vm->loop, dev->notify_fds[q], EPOLLIN, on_queue_notify,
			      &dev->notify_ctx[q]);
}

static int wire_device(struct virtio_device *dev)
{
	dev->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->irq_fd < 0)
		return -errno;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)dev->irq_fd, .gsi = dev->gsi };
	if (ioctl(dev->vm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	for (uint32_t q = 0; q < dev->ops->num_queues; q++) {
		int err = wire_queue(dev, q);
		if (err)
			return err;
	}
	int err = bus_register(&dev->vm->mmio_bus, dev->mmio_base, LAYOUT_VIRTIO_MMIO_SIZE,
			       &virtio_mmio_ops, dev);
	/* Every interrupt the driver handles is a read of InterruptStatus and a write
	 * of InterruptACK, two exits to user space; the write need not be one (see
	 * ack_interrupt). Without coalescing it still works, one exit dearer. */
	if (!err)
		vm_coalesce_mmio(dev->vm, dev->mmio_base + REG_INTERRUPT_ACK, 4);
	return err;
}

int virtio_mmio_create(struct vm *vm, const struct virtio_device_ops *ops, void *backend,
		       struct virtio_device **out)
{
	int slot = vm->nvirtio;
	if (slot >= VM_MAX_VIRTIO_DEVICES || slot >= (int)(sizeof(virtio_gsis) / sizeof(virtio_gsis[0])) ||
	    ops->num_queues > VIRTIO_MAX_QUEUES || ops->queue_max_size > VIRTQ_MAX_SIZE)
		return -ENOSPC;
	struct virtio_device *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	*dev = (struct virtio_device){
		.vm = vm, .ops = ops, .backend = backend, .irq_fd = -1,
		.mmio_base = LAYOUT_VIRTIO_MMIO_BASE + (uint64_t)slot * LAYOUT_VIRTIO_MMIO_SIZE,
		.gsi = virtio_gsis[slot],
	};
	pthread_mutex_init(&dev->lock, NULL);
	for (uint32_t q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		dev->notify_fds[q] = -1;
		dev->queues[q].size = ops->queue_max_size;
	}
	uint64_t device = ops->features ? ops->features(dev) : 0;
	dev->device_features = device | (1ULL << VIRTIO_F_VERSION_1) |
			       (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);
	int err = wire_device(dev);
	if (err) {
		log_error("%s: cannot wire virtio-mmio at 0x%llx (GSI %u): %s", ops->name,
			  (unsigned long long)dev->mmio_base, dev->gsi, strerror(-err));
		return err; /* fds close with the VM; the struct is small and the VM is ending */
	}
	vm->virtio[vm->nvirtio++] = dev;
	log_info("%s at 0x%llx, GSI %u, %u queues", ops->name, (unsigned long long)dev->mmio_base,
		 dev->gsi, ops->num_queues);
	*out = dev;
	return 0;
}

void virtio_mmio_destroy(struct virtio_device *dev)
{
	if (!dev)
		return;
	if (dev->ops->destroy)
		dev->ops->destroy(dev);
	for (uint32_t q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (dev->notify_fds[q] >= 0)
			close(dev->notify_fds[q]);
	if (dev->irq_fd >= 0)
		close(dev->irq_fd);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

static void raise_interrupt(struct virtio_device *dev, uint32_t why)
{
	__atomic_or_fetch(&dev->interrupt_status, why | RAISED_SINCE_READ(why), __ATOMIC_RELEASE);
	dev->interrupts++;
	uint64_t one = 1;
	if (write(dev->irq_fd, &one, sizeof(one)) < 0)
		log_debug("%s: irqfd: %m", dev->ops->name);
}

void virtio_notify_used(struct virtio_device *dev, uint32_t q)
{
	if (q < dev->ops->num_queues && virtq_should_notify(&dev->queues[q]))
		raise_interrupt(dev, INTERRUPT_USED_BUFFER);
}

void virtio_notify_used_queues(struct virtio_device *dev, uint32_t mask)
{
	bool raise = false;
	for (uint32_t q = 0; q < dev->ops->num_queues && q < 32; q++)
		if ((mask & (1u << q)) && virtq_should_notify(&dev->queues[q]))
			raise = true; /* every queue asked: each records what it signalled */
	if (raise)
		raise_interrupt(dev, INTERRUPT_USED_BUFFER);
}

void virtio_notify_config(struct virtio_device *dev)
{
	dev->config_generation++;
	raise_interrupt(dev, INTERRUPT_CONFIG_CHANGE);
}

void virtio_set_needs_reset(struct virtio_device *dev, const char *why)
{
	if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	const struct virtq *broken = NULL;
	for (uint32_t q = 0; q < dev->ops->num_queues && !broken; q++)
		if (dev->queues[q].broken && dev->queues[q].broken_why)
			broken = &dev->queues[q];
	if (broken)
		virtio_warn(dev, VIRTIO_LOG_NEEDS_RESET, "%s (queue %u: %s): device needs reset", why,
			    (unsigned)(broken - dev->queues), broken->broken_why);
	else
		virtio_warn(dev, VIRTIO_LOG_NEEDS_RESET, "%s: device needs reset", why);
	dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	raise_interrupt(dev, INTERRUPT_CONFIG_CHANGE); /* 2.1.2 */
}

/* ---- snapshots ---- */

static void get_queue_state(const struct virtq *vq, struct virtq_state *q)
{
	*q = (struct virtq_state){
		.size = vq->size, .ready = vq->ready, .event_idx = vq->event_idx,
		.indirect = vq->indirect, .desc_gpa = vq->desc_gpa, .avail_gpa = vq->avail_gpa,
		.used_gpa = vq->used_gpa, .last_avail_idx = vq->last_avail_idx,
		.used_idx = vq->used_idx, .signalled_used = vq->signalled_used,
		.signalled_valid = vq->signalled_valid,
	};
}

void virtio_mmio_get_state(struct virtio_device *dev, struct virtio_transport_state *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&dev->lock);
	s->device_id = dev->ops->device_id;
	s->num_queues = dev->ops->num_queues;
	s->mmio_base = dev->mmio_base;
	s->gsi = dev->gsi;
	s->status = dev->status;
	s->device_features_sel = dev->device_features_sel;
	s->driver_features_sel = dev->driver_features_sel;
	s->queue_sel = dev->queue_sel;
	s->device_features = dev->device_features;
	s->driver_features = dev->driver_features;
	/* The bits the driver has not acknowledged; "raised since read" is a detail of
	 * one process's coalesced ACKs and starts afresh. */
	s->interrupt_status = (uint32_t)__atomic_load_n(&dev->interrupt_status, __ATOMIC_ACQUIRE);
	s->config_generation = dev->config_generation;
	for (uint32_t q = 0; q < dev->ops->num_queues; q++)
		get_queue_state(&dev->queues[q], &s->queues[q]);
	pthread_mutex_unlock(&dev->lock);
}

/* 2.7: the queue as the driver left it, mapped again over the restored memory; its
 * indices go on from where they were (virtq_activate starts them at 0). */
static int set_queue_state(struct virtio_device *dev, struct virtq *vq, const struct virtq_state *q)
{
	virtq_reset(vq);
	vq->size = q->size;
	vq->desc_gpa = q->desc_gpa;
	vq->avail_gpa = q->avail_gpa;
	vq->used_gpa = q->used_gpa;
	if (!q->ready)
		return 0;
	if (virtq_activate(vq, &dev->vm->mem, q->event_idx, q->indirect))
		return -EINVAL;
	vq->last_avail_idx = q->last_avail_idx;
	vq->used_idx = q->used_idx;
	vq->signalled_used = q->signalled_used;
	vq->signalled_valid = q->signalled_valid;
	return 0;
}

int virtio_mmio_set_state(struct virtio_device *dev, const struct virtio_transport_state *s)
{
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	dev->status = s->status;
	dev->device_features_sel = s->device_features_sel;
	dev->driver_features_sel = s->driver_features_sel;
	dev->queue_sel = s->queue_sel;
	dev->driver_features = s->driver_features;
	dev->config_generation = s->config_generation;
	__atomic_store_n(&dev->interrupt_status, s->interrupt_status, __ATOMIC_RELEASE);
	for (uint32_t q = 0; !err && q < dev->ops->num_queues; q++)
		err = set_queue_state(dev, &dev->queues[q], &s->queues[q]);
	pthread_mutex_unlock(&dev->lock);
	return err;
}

int virtio_mmio_resume(struct virtio_device *dev)
{
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (virtio_device_running(dev) && dev->ops->activate)
		err = dev->ops->activate(dev);
	if (!err && virtio_device_running(dev))
		kick_all_queues(dev);
	uint32_t pending = (uint32_t)__atomic_load_n(&dev->interrupt_status, __ATOMIC_ACQUIRE);
	if (!err && pending)
		raise_interrupt(dev, pending); /* 4.2.3.4: the driver has not seen it yet */
	pthread_mutex_unlock(&dev->lock);
	return err;
}
