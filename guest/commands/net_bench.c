/* net-bench tx IP PORT [SECONDS] [BYTES]: blasts UDP datagrams of BYTES
 * payload (default 1472: 1514-byte frames) at IP:PORT for SECONDS (2).
 * net-bench rx [SECONDS]: counts the UDP frames sent to us for SECONDS (5);
 * rates are over first to last frame. Frame bytes are Ethernet frames. */
#include "commands/commands.h"
#include "cpu.h"
#include "net/netif.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "timer.h"
#include "virtio/virtqueue.h"

#define SRC_PORT 40000
#define ARP_TIMEOUT_US 3000000
#define DRAIN_TIMEOUT_US 1000000
#define MAX_PAYLOAD (NET_FRAME_MAX - ETH_IP_HLEN - sizeof(struct udp_hdr))

static void print_rate(const char *dir, uint64_t frames, uint64_t bytes, uint64_t cycles)
{
	uint64_t ns = tsc_to_ns(cycles);

	printf("net-bench: %s_frames_s %lu %s_mib_s %lu %s_frames %lu\n", dir,
	       ns ? frames * 1000000000ul / ns : 0, dir,
	       ns ? bytes / 1024 * 1000000000ul / ns / 1024 : 0, dir, frames);
}

/* Queues as many datagrams as there are free transmit slots; returns how many. */
static uint64_t fill(struct netif *ifc, const uint8_t *mac, uint32_t dst, uint16_t port,
		     uint32_t payload)
{
	uint64_t n = 0;
	uint8_t *p;

	while ((p = ip_begin(ifc, mac, dst, IP_PROTO_UDP))) {
		struct udp_hdr *u = (void *)p;

		*u = (struct udp_hdr){ htons(SRC_PORT), htons(port),
				       htons(sizeof(*u) + payload), 0 };
		ip_send(ifc, p, sizeof(*u) + payload);
		n++;
	}
	return n;
}

static int bench_tx(struct netif *ifc, uint32_t dst, uint16_t port, uint64_t seconds,
		    uint32_t payload)
{
	uint64_t frames = 0, kicks0 = ifc->dev->txq.kicks, t0, end;
	uint8_t mac[6];

	if (!arp_resolve(ifc, dst, mac, ARP_TIMEOUT_US)) {
		printf("net-bench: no ARP reply from the peer\n");
		return STATUS_FAILED;
	}
	t0 = rdtsc();
	end = deadline_after_us(seconds * 1000000);
	while (!deadline_passed(end)) {
		frames += fill(ifc, mac, dst, port, payload);
		netif_poll(ifc); /* kicks, reclaims, answers ARP */
		if (!ifc->dev->ntx_free)
			vq_wait_used(&ifc->dev->txq, DRAIN_TIMEOUT_US);
	}
	while (vq_in_flight(&ifc->dev->txq) && vq_wait_used(&ifc->dev->txq, DRAIN_TIMEOUT_US))
		net_tx_reclaim(ifc->dev);
	print_rate("tx", frames, frames * (ETH_IP_HLEN + sizeof(struct udp_hdr) + payload),
		   rdtsc() - t0);
	printf("net-bench: kicks %lu\n", ifc->dev->txq.kicks - kicks0);
	return STATUS_OK;
}

static int bench_rx(struct netif *ifc, uint64_t seconds)
{
	uint64_t end = deadline_after_us(seconds * 1000000);
	char ip[16];

	ifc->udp_frames = ifc->udp_bytes = 0;
	format_ipv4(ifc->ip, ip);
	printf("net-bench: rx ready ip %s\n", ip);
	while (!deadline_passed(end) && !console_key_pressed())
		if (!netif_poll(ifc))
			net_idle(ifc->dev);
	print_rate("rx", ifc->udp_frames, ifc->udp_bytes, ifc->udp_last_tsc - ifc->udp_first_tsc);
	return ifc->udp_frames ? STATUS_OK : STATUS_FAILED;
}

static int net_bench(int argc, char **argv)
{
	uint64_t port, seconds, payload;
	struct netif *ifc;
	uint32_t dst;
	int prefix;

	if (argc >= 2 && !strcmp(argv[1], "rx")) {
		if (argc > 3 || arg_u64(argc, argv, 2, 5, 1, 3600, &seconds))
			return STATUS_USAGE;
		return (ifc = netif_get("net-bench", 0)) ? bench_rx(ifc, seconds) : STATUS_FAILED;
	}
	if (argc < 4 || argc > 6 || strcmp(argv[1], "tx") || !parse_ipv4(argv[2], &dst, &prefix) ||
	    arg_u64(argc, argv, 3, 0, 1, 65535, &port) || arg_u64(argc, argv, 4, 2, 1, 3600, &seconds) ||
	    arg_u64(argc, argv, 5, 1472, 1, MAX_PAYLOAD, &payload)) {
		printf("net-bench: expected tx IP PORT [SECONDS] [BYTES] or rx [SECONDS]\n");
		return STATUS_USAGE;
	}
	if (!(ifc = netif_get("net-bench", 0)))
		return STATUS_FAILED;
	return bench_tx(ifc, dst, (uint16_t)port, seconds, (uint32_t)payload);
}

const struct command cmd_net_bench = { "net-bench", "tx IP PORT [S] [B] | rx [S]",
				       "UDP frames/s and MiB/s, sending or receiving", net_bench };
