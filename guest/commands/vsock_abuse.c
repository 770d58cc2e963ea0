/* vsock-abuse CASE ...: a vsock driver that breaks virtio 1.2's rules (5.10.6),
 * for tests of what argon-vmm's device does with it. Packets are built by hand
 * (vsock_send, vsock_send_raw) on the ordinary driver; streams the case opens
 * itself go through the socket layer. Lines are facts for the test to judge.
 *
 * early-response PORT [BYTES] [HOST_PORT]
 *   A host process connects to guest port PORT. We post no receive buffer, so
 *   the device cannot send us its REQUEST, and answer it anyway: a RESPONSE to
 *   HOST_PORT (default 0x40000000, the first port argon-vmm gives a host
 *   connection) and BYTES (default 8192) of data, in one kick. Then BYTES
 *   more and a SHUTDOWN, in one kick. Then receive buffers, half a second of
 *   listening (the socket layer answers what comes), and our RST. Each of the
 *   three steps waits for a typed key, so the host can act in between.
 * mix PORT_A PORT_B [rst|overrun]
 *   Opens streams A and B to the host's ports, then in one kick: 100 bytes on
 *   A, A killed (an RST, or more data than any credit: 1 MiB), 50 bytes on B.
 *   The host's B must read exactly B's 50 bytes.
 * mix-early PORT_A PORT_B [rst|overrun]
 *   The same, A being a host connection to guest port PORT_A answered as in
 *   early-response (one key first), before the device sent its REQUEST. */
#include "commands/commands.h"
#include "page_alloc.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "virtio/virtqueue.h"
#include "vsock/socket.h"

#define CMD "vsock-abuse"
#define FIRST_HOST_PORT 0x40000000u /* argon-vmm's first ephemeral host port */
#define KEY_TIMEOUT_US 30000000
#define TX_TIMEOUT_US 5000000
#define CONNECT_TIMEOUT_US 5000000
#define CLOSE_TIMEOUT_US 1000000
#define LISTEN_US 500000
#define DEFAULT_BYTES 8192
#define MAX_BYTES (256u << 10)
#define MIX_A_BYTES 100
#define MIX_B_BYTES 50
#define OVERRUN_BYTES (1u << 20)

static uint8_t data[VSOCK_PKT_MAX];

/* One stream as the wire sees it. */
struct ports {
	uint32_t local, peer;
};

static bool send_pkt(struct ports p, uint16_t op, uint32_t flags, const void *payload,
		     uint32_t len)
{
	struct vsock_hdr h = { .src_cid = vs_guest_cid(), .dst_cid = VSOCK_HOST_CID,
			       .src_port = p.local, .dst_port = p.peer,
			       .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
			       .buf_alloc = VS_BUF_ALLOC };

	return vsock_send(vs_dev(), &h, payload, len);
}

static bool send_bytes(struct ports p, char fill, uint32_t len)
{
	memset(data, fill, sizeof(data));
	for (uint32_t n; len; len -= n) {
		n = len < VSOCK_PKT_MAX ? len : VSOCK_PKT_MAX;
		if (!send_pkt(p, VSOCK_OP_RW, 0, data, n))
			return false;
	}
	return true;
}

/* RW with len far beyond the stream's credit (5.10.6.3), in a buffer of its own. */
static bool send_overrun(struct ports p)
{
	static uint8_t *pkt;
	struct vsock_hdr h = { .src_cid = vs_guest_cid(), .dst_cid = VSOCK_HOST_CID,
			       .src_port = p.local, .dst_port = p.peer, .len = OVERRUN_BYTES,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
			       .buf_alloc = VS_BUF_ALLOC };

	if (!pkt && !(pkt = mem_alloc_zeroed(sizeof(h) + OVERRUN_BYTES, PAGE_SIZE)))
		return false;
	memcpy(pkt, &h, sizeof(h));
	return vsock_send_raw(vs_dev(), pkt, sizeof(h) + OVERRUN_BYTES);
}

/* Kicks once and waits until the device used every packet we queued. */
static bool kick_and_wait(void)
{
	struct vsock_dev *v = vs_dev();
	uint64_t end = deadline_after_us(TX_TIMEOUT_US);

	vsock_kick(v);
	while (vq_in_flight(&v->txq)) {
		if (deadline_passed(end)) {
			printf("%s: the device did not use our packets\n", CMD);
			return false;
		}
		if (!vs_poll())
			vs_idle();
	}
	return true;
}

static bool wait_key(void)
{
	uint64_t end = deadline_after_us(KEY_TIMEOUT_US);

	while (!console_key_pressed()) {
		if (deadline_passed(end)) {
			printf("%s: no key typed within %u s\n", CMD, KEY_TIMEOUT_US / 1000000);
			return false;
		}
		if (!vs_poll())
			vs_idle();
	}
	return true;
}

/* After a key: the RESPONSE to a REQUEST the device has not sent us yet. */
static bool answer_early(struct ports a)
{
	printf("%s: waiting port %u host_port %u\n", CMD, a.local, a.peer);
	return wait_key() && send_pkt(a, VSOCK_OP_RESPONSE, 0, 0, 0);
}

/* Receive buffers, half a second for the device to send what it owes (the
 * socket layer answers it), then our RST. Returns the packets received. */
static uint64_t listen_then_reset(struct ports a)
{
	struct vsock_dev *v = vs_dev();
	uint64_t before = v->rx_pkts, end = deadline_after_us(LISTEN_US);

	vsock_post_rx(v);
	while (!deadline_passed(end))
		if (!vs_poll())
			vs_idle();
	send_pkt(a, VSOCK_OP_RST, 0, 0, 0);
	kick_and_wait();
	return v->rx_pkts - before;
}

static int early_response(int argc, char **argv)
{
	uint64_t port, bytes, host_port;
	struct ports a;

	if (argc < 3 || argc > 5 || arg_u64(argc, argv, 2, 0, 0, 0xffffffff, &port) ||
	    arg_u64(argc, argv, 3, DEFAULT_BYTES, 0, MAX_BYTES, &bytes) ||
	    arg_u64(argc, argv, 4, FIRST_HOST_PORT, 0, 0xffffffff, &host_port))
		return STATUS_USAGE;
	a = (struct ports){ (uint32_t)port, (uint32_t)host_port };
	if (!vs_restart(CMD, false))
		return STATUS_FAILED;
	if (!answer_early(a) || !send_bytes(a, 'e', (uint32_t)bytes) || !kick_and_wait())
		return STATUS_FAILED;
	printf("%s: early-response sent %lu\n", CMD, bytes);
	if (!wait_key() || !send_bytes(a, 'f', (uint32_t)bytes) ||
	    !send_pkt(a, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 0, 0) ||
	    !kick_and_wait())
		return STATUS_FAILED;
	printf("%s: early-response shutdown sent %lu\n", CMD, bytes);
	if (!wait_key())
		return STATUS_FAILED;
	printf("%s: early-response done rx_packets %lu\n", CMD, listen_then_reset(a));
	return STATUS_OK;
}

/* The three packets of a mix, one kick: 100 bytes on A, A killed, 50 on B. */
static bool mix_send(struct ports a, struct ports b, bool overrun)
{
	return send_bytes(a, 'a', MIX_A_BYTES) &&
	       (overrun ? send_overrun(a) : send_pkt(a, VSOCK_OP_RST, 0, 0, 0)) &&
	       send_bytes(b, 'b', MIX_B_BYTES) && kick_and_wait();
}

static struct ports conn_ports(const struct vs_conn *c)
{
	return (struct ports){ c->local_port, c->peer_port };
}

/* Sends the mix, then closes B cleanly (the host reads EOF after B's bytes). */
static int mix_finish(struct ports a, struct vs_conn *b, bool overrun)
{
	if (!mix_send(a, conn_ports(b), overrun))
		return STATUS_FAILED;
	printf("%s: mix sent a %u %s b %u\n", CMD, MIX_A_BYTES, overrun ? "overrun" : "rst",
	       MIX_B_BYTES);
	vs_close(b, CLOSE_TIMEOUT_US);
	return STATUS_OK;
}

static int mix(int argc, char **argv)
{
	uint64_t port_a, port_b;
	bool early = !strcmp(argv[1], "mix-early"), overrun = false;
	struct vs_conn *a = 0, *b;
	struct ports pa;
	int status;

	if (argc < 4 || argc > 5 || arg_u64(argc, argv, 2, 0, 0, 0xffffffff, &port_a) ||
	    arg_u64(argc, argv, 3, 0, 0, 0xffffffff, &port_b))
		return STATUS_USAGE;
	if (argc == 5 && !(overrun = !strcmp(argv[4], "overrun")) && strcmp(argv[4], "rst"))
		return STATUS_USAGE;
	if (!vs_restart(CMD, !early))
		return STATUS_FAILED;
	pa = (struct ports){ (uint32_t)port_a, FIRST_HOST_PORT };
	if (early && (!answer_early(pa) || !kick_and_wait()))
		return STATUS_FAILED;
	vsock_post_rx(vs_dev());
	if (!early && !(a = vs_connect((uint32_t)port_a, CONNECT_TIMEOUT_US, CMD)))
		return STATUS_FAILED;
	if (!(b = vs_connect((uint32_t)port_b, CONNECT_TIMEOUT_US, CMD)))
		return STATUS_FAILED;
	if (a)
		pa = conn_ports(a);
	status = mix_finish(pa, b, overrun);
	if (a) {
		a->reset = true; /* our RST, or the device's answer to the overrun */
		vs_reset(a);
	} else {
		send_pkt(pa, VSOCK_OP_RST, 0, 0, 0);
		kick_and_wait();
	}
	return status;
}

static int vsock_abuse(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "early-response"))
		return early_response(argc, argv);
	if (argc >= 2 && (!strcmp(argv[1], "mix") || !strcmp(argv[1], "mix-early")))
		return mix(argc, argv);
	printf("%s: expected early-response PORT [BYTES] [HOST_PORT], "
	       "mix PORT_A PORT_B [rst|overrun] or mix-early PORT_A PORT_B [rst|overrun]\n", CMD);
	return STATUS_USAGE;
}

const struct command cmd_vsock_abuse = { "vsock-abuse", "CASE ARGS",
					 "drive virtio-vsock against the rules", vsock_abuse };
