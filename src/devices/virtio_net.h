/* virtio-net over a tap (virtio 1.2, 5.1): the backend's pieces, for the constructor, the metrics, and the unit tests that drive the device through
 * the fake driver with a socket in place of the tap. */
#ifndef ARGON_DEVICES_VIRTIO_NET_H
#define ARGON_DEVICES_VIRTIO_NET_H

#include <stdint.h>

#include "devices/tap.h"
#include "devices/virtio/virtio.h"
#include "devices/rate_limiter.h"

struct vm;

/* A network interface's settings: Firecracker's network-interfaces[] entry
 * (virtio_net_kind.c reads them). */
struct net_config {
	char *iface_id;	      /* network-interfaces[].iface_id */
	char *host_dev_name;  /* tap name; created if missing */
	int tap_fd;	      /* an already open tap, or -1 */
	uint8_t guest_mac[6];
	bool has_guest_mac;   /* else the device derives one */
	uint16_t mtu;	      /* network-interfaces[].mtu, 68..65535; 0: none given */
	struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
};

#define VIRTIO_NET_MAX_IFACES 4

/* Opens (or creates) the tap and adds the device to vm. Returns 0, or -errno after
 * logging one message naming the interface at fault. */
int virtio_net_create(struct vm *vm, const struct net_config *cfg);

/* virtio 1.2, 5.1.3: the feature bits argon offers. */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16

/* virtio 1.2, 5.1.2: receiveq1 and transmitq1; no multiqueue, no control queue. */
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1

/* virtio 1.2, 5.1.6: struct virtio_net_hdr (with num_buffers, always there in 1.x). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Counters for metrics. A frame lost on the way in is rx_dropped (no guest buffer
 * could take it, a runt, a reset); rx_errors counts malformed receive chains and
 * tap read errors; tx_errors counts malformed transmit chains (the frame is not sent);
 * tx_dropped counts frames the tap refused. *_throttled: times a rate limiter said
 * wait. */
struct virtio_net_stats {
	uint64_t rx_bytes, rx_packets, rx_dropped, rx_errors, rx_throttled;
	uint64_t tx_bytes, tx_packets, tx_dropped, tx_errors, tx_throttled;
};

struct virtio_net;

extern const struct virtio_device_ops virtio_net_ops;

/* The backend over an open tap (which it takes over): MAC from cfg or derived from
 * the tap's name and iface_id, rate limiters from cfg. It joins the event loop of the
 * device it is attached to: by virtio_net_create, or at its first activation when a
 * test driver built the device. Returns 0 or -errno after logging. */
int virtio_net_backend_new(const struct net_config *cfg, const struct tap *tap,
			   struct virtio_net **out);
/* Closes the tap and timers and frees the backend; only once no event loop can call
 * it any more (tests: after vtd_destroy). */
void virtio_net_backend_free(struct virtio_net *net);
/* A consistent copy of the counters (takes dev->lock). */
void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out);
/* Replaces the rx and/or tx rate limiter at runtime (NULL: unchanged), as Firecracker's
 * PATCH /network-interfaces; work parked by the old limiter is retried at once.
 * -EINVAL when dev is no virtio-net. Safe from any thread (takes dev->lock). */
int virtio_net_set_rate_limiters(struct virtio_device *dev, const struct rate_limiter_config *rx,
				 const struct rate_limiter_config *tx);

/* Snapshots (device_kind.h's hooks): MAC and the limiters' buckets. */
struct section_in;
struct snap_writer;
void virtio_net_quiesce(struct virtio_device *dev);
void virtio_net_save(struct virtio_device *dev, struct snap_writer *w);
int virtio_net_restore(struct virtio_device *dev, struct section_in *in);

#endif
