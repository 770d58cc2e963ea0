/* The virtio-mmio transport, version 2 (virtio 1.2, 4.2): registers, the
 * driver initialization sequence (3.1.1) and configuration space. */
#include "cpu.h"
#include "printf.h"
#include "timer.h"
#include "virtio/virtio.h"

#define RESET_TIMEOUT_US 100000

uint32_t virtio_read_reg(const struct virtio_dev *d, uint32_t reg)
{
	return mmio_read32(d->base + reg);
}

void virtio_write_reg(const struct virtio_dev *d, uint32_t reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

uint32_t virtio_status(struct virtio_dev *d)
{
	return virtio_read_reg(d, VIRTIO_MMIO_STATUS);
}

void virtio_add_status(struct virtio_dev *d, uint32_t bits)
{
	virtio_write_reg(d, VIRTIO_MMIO_STATUS, virtio_status(d) | bits);
}

void virtio_fail(struct virtio_dev *d, const char *why)
{
	printf("argon-guest: virtio-%s at 0x%lx: %s\n", virtio_name(d->device_id), d->base, why);
	virtio_add_status(d, VIRTIO_STATUS_FAILED);
	d->started = false;
}

/* 4.2.3.1: writing 0 resets; wait until the device reads back 0. */
bool virtio_reset(struct virtio_dev *d)
{
	uint64_t t0 = rdtsc(), limit = RESET_TIMEOUT_US * tsc_khz_upper() / 1000;

	virtio_write_reg(d, VIRTIO_MMIO_STATUS, 0);
	while (virtio_status(d) != 0)
		if (rdtsc() - t0 > limit)
			return false;
	return true;
}

uint64_t virtio_device_features(struct virtio_dev *d)
{
	uint64_t f;

	virtio_write_reg(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	f = virtio_read_reg(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write_reg(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	return f | (uint64_t)virtio_read_reg(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
}

void virtio_write_features(struct virtio_dev *d, uint64_t f)
{
	virtio_write_reg(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write_reg(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	virtio_write_reg(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write_reg(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
}

int virtio_start(struct virtio_dev *d, uint64_t wanted)
{
	if (d->version != 2) {
		virtio_fail(d, "legacy (version 1) transport, not driven");
		return -1;
	}
	d->started = false;
	if (!virtio_reset(d)) {
		printf("argon-guest: virtio-%s at 0x%lx: reset did not complete\n",
		       virtio_name(d->device_id), d->base);
		return -1;
	}
	virtio_add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_add_status(d, VIRTIO_STATUS_DRIVER);
	d->offered = virtio_device_features(d);
	if (!(d->offered & BIT(VIRTIO_F_VERSION_1))) {
		virtio_fail(d, "no VIRTIO_F_VERSION_1 offered");
		return -1;
	}
	d->features = d->offered & (wanted | BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_EVENT_IDX));
	virtio_write_features(d, d->features);
	virtio_add_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_fail(d, "device refused our features (FEATURES_OK did not stick)");
		return -1;
	}
	d->isr_seen = 0;
	virtio_route_irq(d);
	return 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	virtio_add_status(d, VIRTIO_STATUS_DRIVER_OK);
	d->started = true;
}

/* 4.2.2: reads spanning several registers are consistent when the
 * generation did not change around them. */
void virtio_config_read_bytes(struct virtio_dev *d, uint32_t offset, void *buf, uint32_t len)
{
	uint32_t gen;

	do {
		gen = virtio_read_reg(d, VIRTIO_MMIO_CONFIG_GENERATION);
		for (uint32_t i = 0; i < len; i++)
			((uint8_t *)buf)[i] =
				*(volatile uint8_t *)(d->base + VIRTIO_MMIO_CONFIG + offset + i);
	} while (gen != virtio_read_reg(d, VIRTIO_MMIO_CONFIG_GENERATION));
}

static uint64_t read_field(struct virtio_dev *d, uint32_t offset, int len)
{
	uint64_t a = d->base + VIRTIO_MMIO_CONFIG + offset;

	switch (len) {
	case 1:
		return *(volatile uint8_t *)a;
	case 2:
		return *(volatile uint16_t *)a;
	case 4:
		return *(volatile uint32_t *)a;
	default:
		return *(volatile uint32_t *)a | (uint64_t)*(volatile uint32_t *)(a + 4) << 32;
	}
}

/* Fields of up to 32 bits are single accesses (atomic); only 64-bit fields
 * need the generation check, which costs two more exits. */
uint64_t virtio_config_read(struct virtio_dev *d, uint32_t offset, int len)
{
	uint32_t gen;
	uint64_t v;

	if (len <= 4)
		return read_field(d, offset, len);
	do {
		gen = virtio_read_reg(d, VIRTIO_MMIO_CONFIG_GENERATION);
		v = read_field(d, offset, len);
	} while (gen != virtio_read_reg(d, VIRTIO_MMIO_CONFIG_GENERATION));
	return v;
}

void virtio_config_write32(struct virtio_dev *d, uint32_t offset, uint32_t v)
{
	*(volatile uint32_t *)(d->base + VIRTIO_MMIO_CONFIG + offset) = v;
}

uint32_t virtio_take_isr(struct virtio_dev *d)
{
	return __atomic_exchange_n(&d->isr_seen, 0, __ATOMIC_ACQ_REL);
}
