/* virtio-list: the virtio-mmio transports the command line announced. */
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "virtio/virtio.h"

static int virtio_list(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		printf("virtio-list: takes no arguments\n");
		return STATUS_USAGE;
	}
	for (int i = 0; i < virtio_count(); i++) {
		struct virtio_dev *d = virtio_at(i);

		printf("virtio-list: %d %s id %u version %u base 0x%lx gsi %u irqs %lu\n", i,
		       virtio_name(d->device_id), d->device_id, d->version, d->base, d->gsi,
		       d->irqs);
	}
	printf("virtio-list: devices %d\n", virtio_count());
	return STATUS_OK;
}

const struct command cmd_virtio_list = { "virtio-list", "", "list the virtio-mmio devices",
					 virtio_list };
