/* libFuzzer target for the virtio-mmio transport: the input is a sequence of register
 * and configuration-space accesses (any offset, width, alignment and value), as a
 * hostile driver's vCPU would make them, against a device with two queues and an
 * 8-byte configuration that pops every chain it is notified about. It covers
 * QueueSel/QueueNum/QueueNotify out of range, queue sizes of 0 or not powers of two,
 * ring addresses changed after QueueReady or DRIVER_OK, features outside the offer,
 * status sequences and resets, and configuration accesses past the end or unaligned.
 *
 * Input: records of 8 bytes: [0] flags (bit 0 write, bits 1-2 width 1/2/4/8,
 * bit 3 notify queue (value & 1) through the device after the access), [1-2] offset
 * (little-endian, 0..0x1ff), [3-7] value (the low bytes are written). */
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "virtio_test_driver.h"

struct echo {
	struct virtq_chain chain;
	uint8_t config[8];
};

static void echo_notify(struct virtio_device *dev, uint32_t q)
{
	struct echo *e = dev->backend;
	struct virtq *vq = &dev->queues[q];
	for (int n = 0; n < 64; n++) {
		int rc = virtq_pop(vq, &e->chain);
		if (rc == 0 || rc == -5)
			return;
		virtq_push(vq, e->chain.head, 0);
		virtio_notify_used(dev, q);
	}
}

static void echo_read_config(struct virtio_device *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct echo *e = dev->backend;
	if (off + len > sizeof(e->config))
		__builtin_trap(); /* the transport must have refused this */
	memcpy(data, e->config + off, len);
}

static void echo_write_config(struct virtio_device *dev, uint32_t off, const uint8_t *data,
			      uint32_t len)
{
	struct echo *e = dev->backend;
	if (off + len > sizeof(e->config))
		__builtin_trap();
	memcpy(e->config + off, data, len);
}

static const struct virtio_device_ops echo_ops = {
	.name = "fuzz-echo", .device_id = 99, .num_queues = 2, .queue_max_size = 16,
	.config_size = 8, .read_config = echo_read_config, .write_config = echo_write_config,
	.queue_notify = echo_notify,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vtd t;
	static struct echo e;
	log_init("fuzz", LOG_ERROR);
	if (vtd_init(&t, &echo_ops, &e, 4, 0, 16))
		__builtin_trap();
	/* Start from reset, as a driver probing a fresh device would. */
	uint8_t zero[4] = { 0 };
	virtio_mmio_access(&t.dev, 0x70, zero, 4, true);
	for (size_t i = 0; i + 8 <= size && i < 8 * 512; i += 8) {
		const uint8_t *r = data + i;
		uint32_t len = 1u << ((r[0] >> 1) & 3);
		uint64_t offset = (uint64_t)(r[1] | (r[2] << 8)) & 0x1ff;
		uint8_t value[8] = { 0 };
		memcpy(value, r + 3, 5);
		virtio_mmio_access(&t.dev, offset, value, len, r[0] & 1);
		if ((r[0] & 8) && (t.dev.status & VIRTIO_STATUS_DRIVER_OK) &&
		    t.dev.queues[r[3] & 1].ready) {
			pthread_mutex_lock(&t.dev.lock);
			echo_notify(&t.dev, r[3] & 1);
			pthread_mutex_unlock(&t.dev.lock);
		}
	}
	vtd_destroy(&t);
	return 0;
}
