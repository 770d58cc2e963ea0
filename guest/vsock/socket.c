/* vsock stream sockets (socket.h): connection table, packet input, credit. */
#include "cpu.h"
#include "page_alloc.h"
#include "printf.h"
#include "string.h"
#include "vsock/socket.h"

#define FIRST_EPHEMERAL 49152
#define CONTROL_SLOT_US 100000

static struct {
	struct vsock_dev *dev;
	struct vs_conn conns[VS_MAX_CONNS];
	uint32_t listen_port;
	uint32_t next_port;
	uint64_t resets_seen;
} vs;

static bool alloc_rings(const char *cmd)
{
	uint8_t *rings;

	if (vs.conns[0].rx_ring)
		return true;
	if (!(rings = mem_alloc_zeroed((uint64_t)VS_MAX_CONNS * VS_BUF_ALLOC, PAGE_SIZE))) {
		printf("%s: no memory for vsock buffers\n", cmd);
		return false;
	}
	for (int i = 0; i < VS_MAX_CONNS; i++)
		vs.conns[i].rx_ring = rings + (uint64_t)i * VS_BUF_ALLOC;
	return true;
}

/* Also after another command restarted the device under us (virtio-abuse). */
bool vs_init(const char *cmd)
{
	if (vs.dev && vs.dev->vdev->started && vs.dev->vdev->driver == vs.dev) {
		/* 5.10.6.6: a transport reset that came meanwhile (the VM was restored from
		 * a snapshot) ends the streams that were open, not the ones about to be. */
		vs_poll();
		return true;
	}
	return vs_restart(cmd, true);
}

bool vs_restart(const char *cmd, bool post_rx)
{
	vs.dev = 0;
	if (!alloc_rings(cmd))
		return false;
	for (int i = 0; i < VS_MAX_CONNS; i++)
		vs.conns[i].state = VS_FREE;
	if (!(vs.dev = vsock_restart(cmd, post_rx)))
		return false;
	vs.listen_port = 0;
	vs.resets_seen = vs.dev->resets;
	if (!vs.next_port)
		vs.next_port = FIRST_EPHEMERAL;
	return true;
}

struct vsock_dev *vs_dev(void)
{
	return vs.dev;
}

/* Ephemeral ports for our connections, 49152-65535 in turn. */
uint32_t vs_next_port(void)
{
	uint32_t p = vs.next_port++;

	if (vs.next_port > 65535)
		vs.next_port = FIRST_EPHEMERAL;
	return p;
}

uint64_t vs_guest_cid(void)
{
	return vs.dev->guest_cid;
}

static void fill_hdr(struct vsock_hdr *h, uint32_t src_port, uint32_t dst_port, uint16_t op,
		     uint32_t flags, uint32_t fwd_cnt)
{
	*h = (struct vsock_hdr){ .src_cid = vs.dev->guest_cid, .dst_cid = VSOCK_HOST_CID,
				 .src_port = src_port, .dst_port = dst_port,
				 .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
				 .buf_alloc = VS_BUF_ALLOC, .fwd_cnt = fwd_cnt };
}

/* Control packets wait (briefly) for a transmit slot rather than get lost. */
static bool send_control(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t flags,
			 uint32_t fwd_cnt)
{
	struct vsock_hdr h;

	if (!vsock_can_send(vs.dev))
		vq_wait_used(&vs.dev->txq, CONTROL_SLOT_US);
	fill_hdr(&h, src_port, dst_port, op, flags, fwd_cnt);
	if (!vsock_send(vs.dev, &h, 0, 0))
		return false;
	vsock_kick(vs.dev);
	return true;
}

bool vs_conn_control(struct vs_conn *c, uint16_t op, uint32_t flags)
{
	c->fwd_cnt_sent = c->fwd_cnt;
	return send_control(c->local_port, c->peer_port, op, flags, c->fwd_cnt);
}

static struct vs_conn *find(uint32_t local_port, uint32_t peer_port)
{
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		struct vs_conn *c = &vs.conns[i];

		if (c->state != VS_FREE && c->local_port == local_port && c->peer_port == peer_port)
			return c;
	}
	return 0;
}

struct vs_conn *vs_conn_new(uint32_t local_port, uint32_t peer_port, enum vs_state state)
{
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		struct vs_conn *c = &vs.conns[i];
		uint8_t *ring = c->rx_ring;

		if (c->state != VS_FREE)
			continue;
		*c = (struct vs_conn){ .state = state, .local_port = local_port,
				       .peer_port = peer_port, .rx_ring = ring };
		return c;
	}
	return 0;
}

static void rx_data(struct vs_conn *c, const uint8_t *p, uint32_t len)
{
	uint32_t room = VS_BUF_ALLOC - (c->rx_head - c->fwd_cnt), n = len < room ? len : room;
	uint32_t at = c->rx_head % VS_BUF_ALLOC, first = VS_BUF_ALLOC - at;

	if (first > n)
		first = n;
	memcpy(c->rx_ring + at, p, first);
	memcpy(c->rx_ring, p + first, n - first);
	c->rx_head += n;
	c->dropped += len - n;
}

static void accept_request(const struct vsock_hdr *h)
{
	struct vs_conn *c = vs_conn_new(h->dst_port, h->src_port, VS_CONNECTED);

	if (!c) {
		send_control(h->dst_port, h->src_port, VSOCK_OP_RST, 0, 0);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->fresh = true;
	vs_conn_control(c, VSOCK_OP_RESPONSE, 0);
}

static void conn_input(struct vs_conn *c, const struct vsock_hdr *h, const uint8_t *payload)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == VS_CONNECTING)
			c->state = VS_CONNECTED;
		break;
	case VSOCK_OP_RW:
		rx_data(c, payload, h->len);
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		vs_conn_control(c, VSOCK_OP_CREDIT_UPDATE, 0);
		break;
	case VSOCK_OP_SHUTDOWN:
		c->peer_shutdown |= h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		break;
	case VSOCK_OP_RST:
		c->reset = true;
		break;
	default: /* CREDIT_UPDATE: the fields above were the point */
		break;
	}
}

static void input(void *ctx, const struct vsock_hdr *h, const uint8_t *payload)
{
	struct vs_conn *c;

	(void)ctx;
	if (h->dst_cid != vs.dev->guest_cid || h->type != VSOCK_TYPE_STREAM)
		return;
	if ((c = find(h->dst_port, h->src_port)))
		conn_input(c, h, payload);
	else if (h->op == VSOCK_OP_REQUEST && vs.listen_port && h->dst_port == vs.listen_port)
		accept_request(h);
	else if (h->op != VSOCK_OP_RST)
		send_control(h->dst_port, h->src_port, VSOCK_OP_RST, 0, 0);
}

/* 5.10.6.6: after a transport reset every connection is gone. */
static void check_reset(void)
{
	if (vs.dev->resets == vs.resets_seen)
		return;
	vs.resets_seen = vs.dev->resets;
	vs.dev->guest_cid = virtio_config_read(vs.dev->vdev, 0, 8);
	for (int i = 0; i < VS_MAX_CONNS; i++)
		vs.conns[i].reset = true;
}

int vs_poll(void)
{
	int n = vsock_poll(vs.dev, input, 0);

	check_reset();
	return n;
}

void vs_idle(void)
{
	vsock_idle(vs.dev);
}

void vs_listen(uint32_t port)
{
	vs.listen_port = port;
}

struct vs_conn *vs_conn_at(int i)
{
	return &vs.conns[i];
}

struct vs_conn *vs_accept(void)
{
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		if (vs.conns[i].state != VS_FREE && vs.conns[i].fresh) {
			vs.conns[i].fresh = false;
			return &vs.conns[i];
		}
	}
	return 0;
}
