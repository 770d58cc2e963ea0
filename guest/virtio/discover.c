/* Finding virtio-mmio devices: the kernel command line names each one as
 * virtio_mmio.device=<size>@<base>:<gsi> (what argon-vmm and QEMU's microvm
 * append, and what Linux reads). Each is probed once: magic, version, device
 * ID. Its GSI is routed (edge, active high) to the boot vCPU when a driver
 * starts it; the handler acknowledges InterruptStatus and leaves the rest to
 * the driver, which polls its rings. */
#include "boot_info.h"
#include "cmdline.h"
#include "idt.h"
#include "ioapic.h"
#include "percpu.h"
#include "printf.h"
#include "virtio/virtio.h"

static struct virtio_dev devices[VIRTIO_MAX_DEVICES];
static int ndevices = -1; /* -1: not discovered yet */

static void on_virtio_irq(struct irq_frame *f)
{
	struct virtio_dev *d = &devices[f->vector - VEC_VIRTIO_BASE];
	uint32_t isr = virtio_read_reg(d, VIRTIO_MMIO_INTERRUPT_STATUS);

	if (isr)
		virtio_write_reg(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	__atomic_or_fetch(&d->isr_seen, isr, __ATOMIC_RELEASE);
	d->irqs++;
}

/* Reads the transport's identity; false when nothing virtio answers. */
static bool probe(struct virtio_dev *d)
{
	if (virtio_read_reg(d, VIRTIO_MMIO_MAGIC) != VIRTIO_MMIO_MAGIC_VALUE) {
		printf("argon-guest: virtio-mmio at 0x%lx: bad magic, ignored\n", d->base);
		return false;
	}
	d->version = virtio_read_reg(d, VIRTIO_MMIO_VERSION);
	d->device_id = virtio_read_reg(d, VIRTIO_MMIO_DEVICE_ID);
	return true;
}

static void discover(void)
{
	struct mmio_device_arg arg;
	char value[64];

	ndevices = 0;
	for (int i = 0; cmdline_get_nth(boot_info.cmdline, "virtio_mmio.device", i, value,
					 sizeof(value)); i++) {
		struct virtio_dev *d = &devices[ndevices];

		if (!parse_mmio_device(value, &arg) || arg.size < VIRTIO_MMIO_CONFIG) {
			printf("argon-guest: virtio_mmio.device=%s: malformed, ignored\n", value);
			continue;
		}
		if (ndevices == VIRTIO_MAX_DEVICES) {
			printf("argon-guest: more than %d virtio devices, the rest ignored\n",
			       VIRTIO_MAX_DEVICES);
			return;
		}
		*d = (struct virtio_dev){ .index = ndevices, .base = arg.base, .gsi = arg.irq };
		if (probe(d))
			ndevices++;
	}
}

int virtio_count(void)
{
	if (ndevices < 0)
		discover();
	return ndevices;
}

struct virtio_dev *virtio_at(int index)
{
	return index >= 0 && index < virtio_count() ? &devices[index] : 0;
}

struct virtio_dev *virtio_find(uint32_t device_id, int n)
{
	for (int i = 0; i < virtio_count(); i++)
		if (devices[i].device_id == device_id && devices[i].version == 2 && n-- == 0)
			return &devices[i];
	return 0;
}

const char *virtio_name(uint32_t device_id)
{
	switch (device_id) {
	case 0:
		return "none";
	case VIRTIO_ID_NET:
		return "net";
	case VIRTIO_ID_BLOCK:
		return "blk";
	case VIRTIO_ID_RNG:
		return "rng";
	case VIRTIO_ID_BALLOON:
		return "balloon";
	case VIRTIO_ID_VSOCK:
		return "vsock";
	default:
		return "other";
	}
}

/* Without a route the drivers still work: they poll, and the 100 Hz timer
 * bounds every sleep. */
void virtio_route_irq(struct virtio_dev *d)
{
	if (d->irq_routed)
		return;
	idt_set_handler(VEC_VIRTIO_BASE + d->index, on_virtio_irq);
	d->irq_routed = ioapic_route_gsi(d->gsi, VEC_VIRTIO_BASE + d->index, cpus[0].apic_id,
					 false, false);
}
