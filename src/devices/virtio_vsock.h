/* virtio-vsock's face to the rest of the VMM: its settings, its constructor and its
 * counters (vsock.h holds the device's inside). */
#ifndef ARGON_DEVICES_VIRTIO_VSOCK_H
#define ARGON_DEVICES_VIRTIO_VSOCK_H

#include <stdint.h>

struct vm;
struct virtio_device;

/* Firecracker's "vsock" object (virtio_vsock_kind.c reads it). */
struct vsock_config {
	uint32_t guest_cid; /* >= 3 */
	char *uds_path;
	bool vsock_id_given; /* Firecracker's deprecated vsock_id: warned about, not kept */
};

/* Creates the backend (the listening socket at uds_path) and adds the device to vm.
 * Returns 0, or -errno after logging one message naming what was wrong. */
int virtio_vsock_create(struct vm *vm, const struct vsock_config *cfg);

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

/* Snapshots (device_kind.h's hooks): streams are not saved; after a restore the
 * guest is sent a TRANSPORT_RESET event (virtio 1.2, 5.10.6.6). */
struct section_in;
void virtio_vsock_quiesce(struct virtio_device *dev);
int virtio_vsock_restore(struct virtio_device *dev, struct section_in *in);

#endif
