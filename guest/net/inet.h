/* Wire formats of the little IPv4 stack (Ethernet II, ARP, IPv4 without
 * options or fragments, ICMP echo, UDP) and helpers. Addresses are kept in
 * host byte order and converted at the packet boundary. */
#ifndef GUEST_NET_INET_H
#define GUEST_NET_INET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_ARP 0x0806
#define IP_PROTO_ICMP 1
#define IP_PROTO_UDP 17
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO_REQUEST 8

struct eth_hdr {
	uint8_t dst[6], src[6];
	uint16_t type;
} __attribute__((packed));

struct arp_pkt {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t op;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

struct ip_hdr {
	uint8_t ver_ihl, tos;
	uint16_t len, id, frag;
	uint8_t ttl, proto;
	uint16_t csum;
	uint32_t src, dst;
} __attribute__((packed));

struct icmp_echo {
	uint8_t type, code;
	uint16_t csum, id, seq;
} __attribute__((packed));

struct udp_hdr {
	uint16_t sport, dport, len, csum;
} __attribute__((packed));

#define ETH_HLEN sizeof(struct eth_hdr)
#define IP_HLEN sizeof(struct ip_hdr)
#define ETH_IP_HLEN (ETH_HLEN + IP_HLEN)

static inline uint16_t htons(uint16_t v)
{
	return __builtin_bswap16(v);
}

static inline uint32_t htonl(uint32_t v)
{
	return __builtin_bswap32(v);
}

#define ntohs htons
#define ntohl htonl

/* RFC 1071 Internet checksum of len bytes. */
uint16_t inet_checksum(const void *data, size_t len);

/* Parses "a.b.c.d" or "a.b.c.d/n"; *prefix is 32 without "/n". */
bool parse_ipv4(const char *s, uint32_t *ip, int *prefix);

/* "a.b.c.d" into buf (16 bytes). */
void format_ipv4(uint32_t ip, char *buf);

/* "52:54:00:12:34:56" into buf (18 bytes). */
void format_mac(const uint8_t *mac, char *buf);

#endif
