/* Constructors of argon's virtio devices. Each creates its backend (opening files,
 * taps, sockets), then a virtio-mmio transport for it with virtio_mmio_create().
 * Returns 0, or a negative errno after logging one message naming the file, device
 * or field at fault. Called from main before the vCPUs start. */
#ifndef ARGON_DEVICES_VIRTIO_DEVICES_H
#define ARGON_DEVICES_VIRTIO_DEVICES_H

#include "vmm/config.h"

struct vm;

int virtio_blk_create(struct vm *vm, const struct drive_config *cfg);
int virtio_net_create(struct vm *vm, const struct net_config *cfg);
int virtio_vsock_create(struct vm *vm, const struct vsock_config *cfg);
int virtio_rng_create(struct vm *vm, const struct entropy_config *cfg);
int virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg);

#endif
