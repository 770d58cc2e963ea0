/* Linux tap devices for virtio-net: a non-blocking fd that carries one Ethernet frame
 * per read/write, each preceded by a 12-byte virtio_net_hdr_v1 (IFF_VNET_HDR), so
 * checksum and segmentation offloads pass between the guest and the host stack.
 * Behind this small API so tests can hand the device any packet fd instead. */
#ifndef ARGON_DEVICES_TAP_H
#define ARGON_DEVICES_TAP_H

#include <net/if.h>
#include <stdbool.h>

/* linux/if_tun.h's offload flags, for tap_set_offload(). */
#define TAP_OFFLOAD_CSUM 0x01
#define TAP_OFFLOAD_TSO4 0x02
#define TAP_OFFLOAD_TSO6 0x04
#define TAP_OFFLOAD_TSO_ECN 0x08

#define TAP_VNET_HDR_LEN 12 /* virtio 1.2, 5.1.6: virtio_net_hdr with num_buffers */

struct tap {
	int fd;
	char name[IFNAMSIZ]; /* "" for a plain packet fd (tests) */
	bool is_tap;	     /* false: offload requests are accepted and ignored */
};

/* Attaches to the tap `name`, creating it if missing (a tap this process creates is
 * not persistent: it disappears when the fd closes, and is brought up here). Returns
 * 0, or -errno after logging one message naming the tap and the likely cause. */
int tap_open(struct tap *tap, const char *name);
/* Adopts an already open tap fd (passed by a parent); it must have IFF_VNET_HDR.
 * Returns 0 or -errno after logging. On success the tap owns fd. */
int tap_adopt_fd(struct tap *tap, int fd);
/* Wraps any packet-preserving fd (a SOCK_SEQPACKET socket in tests): frames carry the
 * same 12-byte header, offloads are ignored. Makes the fd non-blocking. */
int tap_from_packet_fd(struct tap *tap, int fd);
/* Tells the tap which offloads the guest accepts on receive (TAP_OFFLOAD_*); frames
 * the guest could not take are then segmented and checksummed by the host. */
int tap_set_offload(struct tap *tap, unsigned offloads);
/* Sets the tap's MTU on the host side (SIOCSIFMTU). Returns 0 or -errno after logging. */
int tap_set_mtu(struct tap *tap, int mtu);
/* -EBUSY when the tap name exists and another file (process, or this one's device)
 * holds it attached, else 0: also when it cannot be told (no permission), which the
 * open at boot then reports. Attaches for a moment and detaches; a tap it creates
 * vanishes again. */
int tap_check_free(const char *name);
void tap_close(struct tap *tap);

#endif
