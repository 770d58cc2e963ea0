/* net-info, net-echo, net-ping: the first virtio-net device and the guest's
 * IPv4 address on it (argon.ip=a.b.c.d/n, or an argument). */
#include "commands/commands.h"
#include "net/netif.h"
#include "power.h"
#include "printf.h"
#include "timer.h"
#include "virtio/virtqueue.h"

#define PING_TIMEOUT_US 1000000
#define ARP_TIMEOUT_US 3000000

static bool has_dot(const char *s)
{
	for (; *s; s++)
		if (*s == '.')
			return true;
	return false;
}

static int net_info(int argc, char **argv)
{
	struct net_dev *n;
	char mac[18];

	(void)argv;
	if (argc > 1) {
		printf("net-info: takes no arguments\n");
		return STATUS_USAGE;
	}
	if (!(n = net_open("net-info")))
		return STATUS_FAILED;
	format_mac(n->mac, mac);
	printf("net-info: mac %s link %s\n", mac, net_link_up(n) ? "up" : "down");
	printf("net-info: features 0x%lx offered 0x%lx queue_size %u\n", n->vdev->features,
	       n->vdev->offered, n->rxq.size);
	return STATUS_OK;
}

static void print_ready(const char *cmd, struct netif *ifc)
{
	char ip[16], mac[18];

	format_ipv4(ifc->ip, ip);
	format_mac(ifc->dev->mac, mac);
	printf("%s: ip %s/%d mac %s link %s\n", cmd, ip, ifc->prefix, mac,
	       net_link_up(ifc->dev) ? "up" : "down");
}

/* net-echo [SECONDS] [IP/PREFIX]: arguments in any order (an address has dots). */
static int net_echo(int argc, char **argv)
{
	const char *ip_arg = 0;
	uint64_t seconds = 0, end;
	struct netif *ifc;

	if (argc > 3)
		return STATUS_USAGE;
	for (int i = 1; i < argc; i++) {
		if (has_dot(argv[i]))
			ip_arg = argv[i];
		else if (arg_u64(i + 1, argv, i, 0, 0, 1000000, &seconds))
			return STATUS_USAGE;
	}
	if (!(ifc = netif_get("net-echo", ip_arg)))
		return STATUS_FAILED;
	print_ready("net-echo", ifc);
	end = seconds ? deadline_after_us(seconds * 1000000) : 0;
	while (!deadline_passed(end) && !console_key_pressed())
		if (!netif_poll(ifc))
			net_idle(ifc->dev);
	printf("net-echo: arp_replies %lu icmp_replies %lu rx_frames %lu tx_frames %lu\n",
	       ifc->arp_replies, ifc->echo_replies_sent, ifc->dev->rx_frames, ifc->dev->tx_frames);
	return STATUS_OK;
}

static bool wait_reply(struct netif *ifc, uint64_t want)
{
	uint64_t end = deadline_after_us(PING_TIMEOUT_US);

	while (ifc->ping_replies < want && !deadline_passed(end))
		if (!netif_poll(ifc))
			net_idle(ifc->dev);
	return ifc->ping_replies >= want;
}

static void print_ping(struct netif *ifc, uint64_t sent)
{
	uint64_t n = ifc->ping_replies;

	printf("net-ping: sent %lu received %lu", sent, n);
	if (n) {
		printf(" rtt_avg_us ");
		print_tenths(tsc_to_ns(ifc->ping_rtt_cycles / n) / 100);
		printf(" rtt_min_us ");
		print_tenths(tsc_to_ns(ifc->ping_rtt_min) / 100);
		printf(" rtt_max_us ");
		print_tenths(tsc_to_ns(ifc->ping_rtt_max) / 100);
	}
	printf("\n");
}

/* net-ping IP [COUNT]: one echo request at a time, each waited for up to 1 s. */
static int net_ping(int argc, char **argv)
{
	uint64_t count, sent = 0;
	uint32_t dst;
	int prefix;
	uint8_t mac[6];
	struct netif *ifc;

	if (argc < 2 || argc > 3 || !parse_ipv4(argv[1], &dst, &prefix) || prefix != 32) {
		printf("net-ping: expected IP [COUNT]\n");
		return STATUS_USAGE;
	}
	if (arg_count(argc, argv, 2, 4, 1000000, &count))
		return STATUS_USAGE;
	if (!(ifc = netif_get("net-ping", 0)))
		return STATUS_FAILED;
	ifc->ping_id++;
	ifc->ping_replies = ifc->ping_rtt_cycles = ifc->ping_rtt_min = ifc->ping_rtt_max = 0;
	if (!arp_resolve(ifc, dst, mac, ARP_TIMEOUT_US)) {
		printf("net-ping: no ARP reply from %s\n", argv[1]);
		print_ping(ifc, 0);
		return STATUS_FAILED;
	}
	for (uint64_t seq = 1; seq <= count; seq++) {
		if (icmp_send_echo(ifc, mac, dst, (uint16_t)seq))
			sent++;
		net_tx_kick(ifc->dev);
		wait_reply(ifc, ifc->ping_replies + 1);
	}
	print_ping(ifc, sent);
	return ifc->ping_replies ? STATUS_OK : STATUS_FAILED;
}

const struct command cmd_net_info = { "net-info", "", "virtio-net MAC address and link", net_info };
const struct command cmd_net_echo = { "net-echo", "[SECONDS] [IP/N]",
				      "answer ARP and ping (0: until a key)", net_echo };
const struct command cmd_net_ping = { "net-ping", "IP [COUNT]", "send ICMP echo requests",
				      net_ping };
