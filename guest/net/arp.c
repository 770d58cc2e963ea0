/* ARP (RFC 826) for IPv4 over Ethernet: answer requests for our address,
 * learn from replies and requests, resolve neighbours. */
#include "cpu.h"
#include "net/netif.h"
#include "string.h"
#include "virtio/virtqueue.h"

#define ARP_REQUEST 1
#define ARP_REPLY 2
#define RETRY_US 200000

static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t get_ip(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static void put_ip(uint8_t *p, uint32_t ip)
{
	uint32_t be = htonl(ip);

	memcpy(p, &be, 4);
}

static struct arp_entry *lookup(struct netif *ifc, uint32_t ip)
{
	for (int i = 0; i < ARP_CACHE_SIZE; i++)
		if (ifc->arp[i].ip == ip)
			return &ifc->arp[i];
	return 0;
}

static void learn(struct netif *ifc, uint32_t ip, const uint8_t *mac)
{
	struct arp_entry *e = lookup(ifc, ip);

	if (!e) {
		e = &ifc->arp[ifc->arp_next];
		ifc->arp_next = (ifc->arp_next + 1) % ARP_CACHE_SIZE;
		e->ip = ip;
	}
	memcpy(e->mac, mac, 6);
}

static void send_arp(struct netif *ifc, uint16_t op, const uint8_t *mac, uint32_t ip)
{
	uint8_t *frame = net_tx_buf(ifc->dev);
	struct eth_hdr *eth = (void *)frame;
	struct arp_pkt *a = (void *)(frame + ETH_HLEN);

	if (!frame)
		return;
	memcpy(eth->dst, op == ARP_REQUEST ? broadcast : mac, 6);
	memcpy(eth->src, ifc->dev->mac, 6);
	eth->type = htons(ETH_TYPE_ARP);
	*a = (struct arp_pkt){ .htype = htons(1), .ptype = htons(ETH_TYPE_IPV4), .hlen = 6,
			       .plen = 4, .op = htons(op) };
	memcpy(a->sha, ifc->dev->mac, 6);
	put_ip(a->spa, ifc->ip);
	if (op == ARP_REPLY)
		memcpy(a->tha, mac, 6);
	put_ip(a->tpa, ip);
	/* Padded to the 60-byte Ethernet minimum. */
	memset(frame + ETH_HLEN + sizeof(*a), 0, 60 - ETH_HLEN - sizeof(*a));
	net_tx_queue(ifc->dev, frame, 60);
}

void arp_input(struct netif *ifc, const uint8_t *frame, uint32_t len)
{
	const struct arp_pkt *a = (const void *)(frame + ETH_HLEN);
	uint32_t spa, tpa;

	if (len < ETH_HLEN + sizeof(*a) || a->htype != htons(1) ||
	    a->ptype != htons(ETH_TYPE_IPV4) || a->hlen != 6 || a->plen != 4)
		return;
	spa = get_ip(a->spa);
	tpa = get_ip(a->tpa);
	if (tpa != ifc->ip)
		return;
	learn(ifc, spa, a->sha);
	if (a->op == htons(ARP_REQUEST)) {
		send_arp(ifc, ARP_REPLY, a->sha, spa);
		ifc->arp_replies++;
	}
}

bool arp_resolve(struct netif *ifc, uint32_t ip, uint8_t *mac, uint64_t timeout_us)
{
	uint64_t end = deadline_after_us(timeout_us), retry = 0;
	struct arp_entry *e;

	while (!(e = lookup(ifc, ip))) {
		uint64_t now = rdtsc();

		if ((int64_t)(now - end) >= 0)
			return false;
		if ((int64_t)(now - retry) >= 0) {
			send_arp(ifc, ARP_REQUEST, broadcast, ip);
			net_tx_kick(ifc->dev);
			retry = deadline_after_us(RETRY_US);
		}
		if (!netif_poll(ifc))
			net_idle(ifc->dev);
	}
	memcpy(mac, e->mac, 6);
	return true;
}
