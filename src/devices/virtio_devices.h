/* Constructors of argon's virtio devices. Each creates its backend (opening files,
 * taps, sockets), then a virtio-mmio transport for it with virtio_mmio_create().
 * Returns 0, or a negative errno after logging one message naming the file, device
 * or field at fault. Called from main before the vCPUs start. */
#ifndef ARGON_DEVICES_VIRTIO_DEVICES_H
#define ARGON_DEVICES_VIRTIO_DEVICES_H

#include <stdint.h>

#include "vmm/config.h"

struct vm;
struct virtio_device;

int virtio_blk_create(struct vm *vm, const struct drive_config *cfg);
int virtio_net_create(struct vm *vm, const struct net_config *cfg);
int virtio_vsock_create(struct vm *vm, const struct vsock_config *cfg);
int virtio_rng_create(struct vm *vm, const struct entropy_config *cfg);
int virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg);

/* virtio-vsock's counters (tx: from the guest), kept by the device and read for
 * GET /metrics. */
struct vsock_stats {
	uint64_t tx_packets, rx_packets, tx_bytes, rx_bytes;
	uint64_t dropped;	     /* malformed or misaddressed guest packets */
	uint64_t rst_sent;	     /* RSTs sent to the guest */
	uint64_t refused;	     /* connections refused (limits, no listener) */
	uint64_t credit_violations; /* guest data beyond the credit we gave */
	uint64_t host_sends, host_recvs; /* data syscalls on host sockets */
};
/* The counters and the number of streams open now. Any thread; takes dev->lock. */
void virtio_vsock_get_stats(struct virtio_device *dev, struct vsock_stats *out,
			    uint32_t *open_streams);

#endif
