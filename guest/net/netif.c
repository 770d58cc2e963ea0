/* The IPv4 interface (netif.h): configuration, receive dispatch, sending. */
#include "boot_info.h"
#include "cmdline.h"
#include "cpu.h"
#include "net/netif.h"
#include "printf.h"
#include "string.h"

static struct netif netif;

static bool configure(struct netif *ifc, const char *cmd, const char *ip_arg)
{
	char value[32];
	const char *text = ip_arg;

	if (!text && cmdline_get(boot_info.cmdline, "argon.ip", value, sizeof(value)))
		text = value;
	if (!text) {
		if (!ifc->ip)
			printf("%s: no address: give IP/PREFIX or argon.ip=\n", cmd);
		return ifc->ip != 0;
	}
	if (!parse_ipv4(text, &ifc->ip, &ifc->prefix) || !ifc->ip) {
		printf("%s: bad address '%s' (expected a.b.c.d/n)\n", cmd, text);
		ifc->ip = 0;
		return false;
	}
	if (!ip_arg && ifc->prefix == 32)
		ifc->prefix = 24;
	return true;
}

struct netif *netif_get(const char *cmd, const char *ip_arg)
{
	if (!netif.dev && !(netif.dev = net_open(cmd)))
		return 0;
	if (!configure(&netif, cmd, ip_arg))
		return 0;
	return &netif;
}

static void udp_input(struct netif *ifc, uint32_t len)
{
	uint64_t now = rdtsc();

	if (!ifc->udp_frames)
		ifc->udp_first_tsc = now;
	ifc->udp_last_tsc = now;
	ifc->udp_frames++;
	ifc->udp_bytes += len;
}

static void ip_input(struct netif *ifc, const uint8_t *frame, uint32_t len)
{
	const struct ip_hdr *ip = (const void *)(frame + ETH_HLEN);

	if (len < ETH_IP_HLEN || ip->ver_ihl != 0x45 || ntohl(ip->dst) != ifc->ip ||
	    (ntohs(ip->frag) & 0x3fff) || ntohs(ip->len) > len - ETH_HLEN)
		return;
	if (ip->proto == IP_PROTO_ICMP)
		icmp_input(ifc, frame, ETH_HLEN + ntohs(ip->len));
	else if (ip->proto == IP_PROTO_UDP)
		udp_input(ifc, len);
}

static void frame_input(void *ctx, uint8_t *frame, uint32_t len)
{
	struct netif *ifc = ctx;
	const struct eth_hdr *eth = (const void *)frame;

	if (len < ETH_HLEN)
		return;
	if (eth->type == htons(ETH_TYPE_ARP))
		arp_input(ifc, frame, len);
	else if (eth->type == htons(ETH_TYPE_IPV4))
		ip_input(ifc, frame, len);
}

int netif_poll(struct netif *ifc)
{
	return net_poll(ifc->dev, frame_input, ifc);
}

uint8_t *ip_begin(struct netif *ifc, const uint8_t *dst_mac, uint32_t dst, uint8_t proto)
{
	uint8_t *frame = net_tx_buf(ifc->dev);
	struct eth_hdr *eth = (void *)frame;
	struct ip_hdr *ip = (void *)(frame + ETH_HLEN);

	if (!frame)
		return 0;
	memcpy(eth->dst, dst_mac, 6);
	memcpy(eth->src, ifc->dev->mac, 6);
	eth->type = htons(ETH_TYPE_IPV4);
	*ip = (struct ip_hdr){ .ver_ihl = 0x45, .id = htons(ifc->ip_id++), .ttl = 64,
			       .proto = proto, .src = htonl(ifc->ip), .dst = htonl(dst) };
	return frame + ETH_IP_HLEN;
}

void ip_send(struct netif *ifc, uint8_t *payload, uint32_t payload_len)
{
	uint8_t *frame = payload - ETH_IP_HLEN;
	struct ip_hdr *ip = (void *)(frame + ETH_HLEN);

	ip->len = htons(IP_HLEN + payload_len);
	ip->csum = 0;
	ip->csum = inet_checksum(ip, IP_HLEN);
	net_tx_queue(ifc->dev, frame, ETH_IP_HLEN + payload_len);
}
