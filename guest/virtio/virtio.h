/* virtio over virtio-mmio (virtio 1.2, 4.2; register layout version 2 only):
 * discovery from the command line, the driver initialization sequence of
 * 3.1.1, device configuration and interrupts. Queues are in virtqueue.h.
 *
 * Every register access is an exit; on a PVM host one that reaches the VMM's
 * user space costs ~30 us, while a QueueNotify write is absorbed by a KVM
 * ioeventfd (~2-3 us). So drivers initialize a device once, on first use,
 * read configuration only when told it changed, and poll used rings instead
 * of taking interrupts while they are busy. */
#ifndef GUEST_VIRTIO_VIRTIO_H
#define GUEST_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* 5: device IDs. */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* 6: reserved feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* 2.1: device status. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* 4.2.2: InterruptStatus bits. */
#define VIRTIO_ISR_USED 1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_MAX_DEVICES 16

#define BIT(n) (1ull << (n))

struct virtio_dev {
	int index;	    /* in discovery order */
	uint64_t base;	    /* MMIO register block */
	uint32_t gsi;
	uint32_t device_id; /* 0: an empty slot (QEMU microvm has many) */
	uint32_t version;   /* 2 = modern; 1 (legacy) is not driven */
	uint64_t offered;   /* device features, read at start */
	uint64_t features;  /* negotiated */
	bool started;	    /* DRIVER_OK written */
	bool irq_routed;
	/* Set by the interrupt handler (InterruptStatus bits it acknowledged),
	 * cleared by the driver that looks at them. */
	volatile uint32_t isr_seen;
	volatile uint64_t irqs;
	void *driver; /* the driver's state */
};

/* The n-th (from 0) device with this ID, discovering devices on first call;
 * NULL when there is none. */
struct virtio_dev *virtio_find(uint32_t device_id, int n);

/* Every discovered transport, for virtio-list. */
int virtio_count(void);
struct virtio_dev *virtio_at(int index);
const char *virtio_name(uint32_t device_id);

/* 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, negotiate (wanted &
 * offered; VERSION_1 required, EVENT_IDX taken when offered), FEATURES_OK
 * and check that it stuck. Routes the device's interrupt. Returns 0, or -1
 * after printing why (the device is then marked FAILED). */
int virtio_start(struct virtio_dev *d, uint64_t wanted);

/* 3.1.1 step 8: DRIVER_OK. */
void virtio_driver_ok(struct virtio_dev *d);

/* Marks the device FAILED (3.1.1: the driver gives up) and prints why. */
void virtio_fail(struct virtio_dev *d, const char *why);

static inline bool virtio_has(const struct virtio_dev *d, unsigned bit)
{
	return (d->features >> bit) & 1;
}

/* Device configuration space (4.2.2, offset 0x100), read consistently with
 * ConfigGeneration around it. len is 1, 2, 4 or 8. */
uint64_t virtio_config_read(struct virtio_dev *d, uint32_t offset, int len);
void virtio_config_read_bytes(struct virtio_dev *d, uint32_t offset, void *buf, uint32_t len);
void virtio_config_write32(struct virtio_dev *d, uint32_t offset, uint32_t v);

/* Device status register (NEEDS_RESET shows up here). */
uint32_t virtio_status(struct virtio_dev *d);

/* Takes the InterruptStatus bits the handler saw and clears them. */
uint32_t virtio_take_isr(struct virtio_dev *d);

/* The steps of 3.1.1 one by one, for virtio_start and for commands that play a
 * driver breaking the rules (virtio-abuse). */
bool virtio_reset(struct virtio_dev *d); /* false: Status did not read 0 in time */
void virtio_add_status(struct virtio_dev *d, uint32_t bits);
uint64_t virtio_device_features(struct virtio_dev *d);
void virtio_write_features(struct virtio_dev *d, uint64_t f);

/* Register access, between the transport files. */
uint32_t virtio_read_reg(const struct virtio_dev *d, uint32_t reg);
void virtio_write_reg(const struct virtio_dev *d, uint32_t reg, uint32_t v);
/* Routes the device's GSI to its vector on the boot vCPU (once). */
void virtio_route_irq(struct virtio_dev *d);

/* virtio-mmio registers (4.2.2). */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC_VALUE 0x74726976 /* "virt" */

#endif
