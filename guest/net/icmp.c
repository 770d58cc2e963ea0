/* ICMP echo (RFC 792): answer requests to our address, send requests and
 * time the replies for net-ping. */
#include "cpu.h"
#include "net/netif.h"
#include "string.h"

#define PING_PAYLOAD 56

static void echo_reply(struct netif *ifc, const uint8_t *frame, uint32_t len)
{
	const struct eth_hdr *eth = (const void *)frame;
	const struct ip_hdr *ip = (const void *)(frame + ETH_HLEN);
	uint32_t icmp_len = len - ETH_IP_HLEN;
	uint8_t *out = ip_begin(ifc, eth->src, ntohl(ip->src), IP_PROTO_ICMP);
	struct icmp_echo *e = (void *)out;

	if (!out || icmp_len > NET_FRAME_MAX - ETH_IP_HLEN)
		return;
	memcpy(out, frame + ETH_IP_HLEN, icmp_len);
	e->type = ICMP_ECHO_REPLY;
	e->csum = 0;
	e->csum = inet_checksum(out, icmp_len);
	ip_send(ifc, out, icmp_len);
	ifc->echo_replies_sent++;
}

static void echo_reply_received(struct netif *ifc, const struct icmp_echo *e, uint32_t icmp_len)
{
	uint64_t sent, rtt;

	if (ntohs(e->id) != ifc->ping_id || icmp_len < sizeof(*e) + sizeof(sent))
		return;
	memcpy(&sent, e + 1, sizeof(sent));
	rtt = rdtsc() - sent;
	ifc->ping_replies++;
	ifc->ping_rtt_cycles += rtt;
	if (!ifc->ping_rtt_min || rtt < ifc->ping_rtt_min)
		ifc->ping_rtt_min = rtt;
	if (rtt > ifc->ping_rtt_max)
		ifc->ping_rtt_max = rtt;
}

void icmp_input(struct netif *ifc, const uint8_t *frame, uint32_t len)
{
	const struct icmp_echo *e = (const void *)(frame + ETH_IP_HLEN);
	uint32_t icmp_len = len - ETH_IP_HLEN;

	if (len < ETH_IP_HLEN + sizeof(*e) || inet_checksum(e, icmp_len) != 0)
		return;
	if (e->type == ICMP_ECHO_REQUEST && e->code == 0)
		echo_reply(ifc, frame, len);
	else if (e->type == ICMP_ECHO_REPLY)
		echo_reply_received(ifc, e, icmp_len);
}

bool icmp_send_echo(struct netif *ifc, const uint8_t *mac, uint32_t dst, uint16_t seq)
{
	uint8_t *out = ip_begin(ifc, mac, dst, IP_PROTO_ICMP);
	struct icmp_echo *e = (void *)out;
	uint64_t now = rdtsc();

	if (!out)
		return false;
	*e = (struct icmp_echo){ .type = ICMP_ECHO_REQUEST, .id = htons(ifc->ping_id),
				 .seq = htons(seq) };
	memset(e + 1, 0x61, PING_PAYLOAD);
	memcpy(e + 1, &now, sizeof(now));
	e->csum = inet_checksum(out, sizeof(*e) + PING_PAYLOAD);
	ip_send(ifc, out, sizeof(*e) + PING_PAYLOAD);
	return true;
}
