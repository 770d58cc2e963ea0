/* virtio-vsock driver (virtio 1.2, 5.10): rx, tx and event queues; each
 * packet is a 44-byte header and its payload in one buffer. The stream
 * sockets on top are in vsock/socket.h. */
#ifndef GUEST_VIRTIO_VSOCK_H
#define GUEST_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

#define VIRTIO_VSOCK_F_STREAM 0
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_PKT_MAX 4096 /* payload bytes per packet we send or take */

/* 5.10.6: ops and SHUTDOWN flags. */
enum {
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio 1.2, 5.10.6");

struct vsock_dev {
	struct virtio_dev *vdev;
	struct virtq rxq, txq, evq;
	uint64_t guest_cid;
	uint8_t *rx_bufs, *tx_bufs;
	uint32_t *ev_bufs;
	uint16_t *tx_free, ntx_free;
	bool tx_pending;
	bool rx_posted;
	uint64_t resets; /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET events seen */
	uint64_t rx_pkts, tx_pkts, rx_dropped;
};

/* The first virtio-vsock device, started on first use; NULL after a message
 * naming cmd. */
struct vsock_dev *vsock_open(const char *cmd);
/* Starts it afresh (reset, new rings); with post_rx false no receive buffer is
 * posted, so the device can send the driver nothing until vsock_post_rx. */
struct vsock_dev *vsock_restart(const char *cmd, bool post_rx);
void vsock_post_rx(struct vsock_dev *v);

typedef void (*vsock_rx_fn)(void *ctx, const struct vsock_hdr *h, const uint8_t *payload);

/* Hands every received packet to fn (payload of h->len bytes), handles
 * events, reposts buffers, reclaims transmit slots, kicks once. Returns the
 * number of packets. */
int vsock_poll(struct vsock_dev *v, vsock_rx_fn fn, void *ctx);

/* Room for another packet to send (after reclaiming). */
bool vsock_can_send(struct vsock_dev *v);
/* Queues one packet (header and up to VSOCK_PKT_MAX bytes of payload,
 * h->len is set); false when no transmit slot is free. */
bool vsock_send(struct vsock_dev *v, struct vsock_hdr *h, const void *payload, uint32_t len);
/* Queues a packet the caller built whole (header and payload, len bytes) in
 * its own buffer, untouched until the device used it. Not for normal traffic:
 * nothing checks it (vsock-abuse). false when the ring is full. */
bool vsock_send_raw(struct vsock_dev *v, const void *pkt, uint32_t len);
void vsock_kick(struct vsock_dev *v);

/* Sleeps until a packet or transmit slot may be there (or any interrupt). */
void vsock_idle(struct vsock_dev *v);

#endif
