/* The guest's one IPv4 interface on the first virtio-net device: answers
 * ARP and ICMP echo requests whenever it is polled, resolves neighbours,
 * sends IPv4 packets on the local subnet (no routing), counts UDP it
 * receives, and reports echo replies to whoever is pinging. */
#ifndef GUEST_NET_NETIF_H
#define GUEST_NET_NETIF_H

#include <stdbool.h>
#include <stdint.h>

#include "net/inet.h"
#include "virtio/net.h"

#define ARP_CACHE_SIZE 8

struct arp_entry {
	uint32_t ip;
	uint8_t mac[6];
};

struct netif {
	struct net_dev *dev;
	uint32_t ip; /* host order; 0 = not configured */
	int prefix;
	struct arp_entry arp[ARP_CACHE_SIZE];
	int arp_next;
	uint16_t ip_id;
	/* Counters. */
	uint64_t arp_replies, echo_replies_sent;
	uint64_t udp_frames, udp_bytes, udp_first_tsc, udp_last_tsc;
	/* net-ping: the echo replies that match ping_id. */
	uint16_t ping_id;
	uint64_t ping_replies, ping_rtt_cycles;
	uint64_t ping_rtt_min, ping_rtt_max;
};

/* Opens virtio-net and configures the address: ip_arg ("a.b.c.d/n") when
 * given, else argon.ip= from the command line, else the address set before.
 * Returns NULL after a message naming cmd. */
struct netif *netif_get(const char *cmd, const char *ip_arg);

/* Handles every frame received so far (ARP, ICMP, UDP); returns how many. */
int netif_poll(struct netif *ifc);

/* Starts an IPv4 packet to dst (whose MAC is dst_mac) in a transmit buffer:
 * returns where its payload goes, or NULL when no buffer is free. */
uint8_t *ip_begin(struct netif *ifc, const uint8_t *dst_mac, uint32_t dst, uint8_t proto);
/* Completes the packet begun by ip_begin with payload_len bytes and queues it. */
void ip_send(struct netif *ifc, uint8_t *payload, uint32_t payload_len);

/* net/arp.c */
void arp_input(struct netif *ifc, const uint8_t *frame, uint32_t len);
/* The MAC of ip on the local subnet, asking with ARP requests (and polling)
 * for up to timeout_us. */
bool arp_resolve(struct netif *ifc, uint32_t ip, uint8_t *mac, uint64_t timeout_us);

/* net/icmp.c */
void icmp_input(struct netif *ifc, const uint8_t *frame, uint32_t len);
/* Sends an echo request with ping_id, seq, and the TSC in the payload. */
bool icmp_send_echo(struct netif *ifc, const uint8_t *mac, uint32_t dst, uint16_t seq);

#endif
