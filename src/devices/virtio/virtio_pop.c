/* Taking the next chain off a queue, with what every device does around virtq_pop:
 * re-arming notifications on an empty queue and the reset a broken ring needs. */
#include <errno.h>

#include "devices/virtio/virtio.h"

int virtio_pop(struct virtio_device *dev, struct virtq *vq, struct virtq_chain *c, bool rearm,
	       const char *broken)
{
	for (;;) {
		int r = virtq_pop(vq, c);
		if (r == 0 && rearm && virtq_enable_notify(vq))
			continue; /* 2.7.10: work arrived while we re-armed */
		if (r == -EIO)
			virtio_set_needs_reset(dev, broken);
		return r;
	}
}
