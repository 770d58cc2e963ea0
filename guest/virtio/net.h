/* virtio-net driver (virtio 1.2, 5.1): one receive and one transmit queue,
 * 2 KiB buffers (a whole Ethernet frame plus the 12-byte header), no
 * offloads: checksums are computed by the guest, and the host delivers
 * frames fully checksummed. */
#ifndef GUEST_VIRTIO_NET_H
#define GUEST_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

/* 5.1.3: feature bits. */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define NET_HDR_LEN 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */
#define NET_BUF_SIZE 2048
#define NET_FRAME_MAX (NET_BUF_SIZE - NET_HDR_LEN)

struct net_dev {
	struct virtio_dev *vdev;
	struct virtq rxq, txq;
	uint8_t mac[6];
	uint8_t *rx_bufs, *tx_bufs; /* queue size * NET_BUF_SIZE each */
	uint16_t *tx_free;	    /* stack of free transmit slots */
	uint16_t ntx_free;
	bool tx_pending; /* queued, not kicked */
	uint64_t rx_frames, rx_bytes, rx_dropped, tx_frames, tx_bytes;
};

/* The first virtio-net device, started on first use; NULL after a message
 * naming cmd. */
struct net_dev *net_open(const char *cmd);

/* Link state from the config space (up when STATUS was not negotiated). */
bool net_link_up(struct net_dev *n);

/* A transmit buffer for one frame of up to NET_FRAME_MAX bytes, or NULL when
 * every slot is in flight even after reclaiming completions. */
uint8_t *net_tx_buf(struct net_dev *n);
/* Queues the frame written into a buffer from net_tx_buf; net_tx_kick (or
 * net_poll) publishes it. */
void net_tx_queue(struct net_dev *n, uint8_t *frame, uint32_t len);
void net_tx_kick(struct net_dev *n);
/* Takes back transmit slots the device has finished with. */
void net_tx_reclaim(struct net_dev *n);

typedef void (*net_rx_fn)(void *ctx, uint8_t *frame, uint32_t len);

/* Hands every received frame to fn, gives the buffers back to the device,
 * and kicks both queues once. Returns the number of frames. */
int net_poll(struct net_dev *n, net_rx_fn fn, void *ctx);

/* Sleeps until a frame may have arrived (or any interrupt). */
void net_idle(struct net_dev *n);

#endif
