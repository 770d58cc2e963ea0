/* virtio-vsock rx: host -> guest packets. Nothing is queued as packets: connections
 * carry flags for what they owe the guest (REQUEST, RESPONSE, data, SHUTDOWN, credit,
 * RST) and a packet is built only when the guest has posted a buffer for it; data is
 * read from the host socket straight into that buffer, at most the guest's credit
 * (virtio 1.2, 5.10.6.3). When the guest posts no buffers, sockets are not read and
 * the flags wait (5.10.6.1). */
#include <errno.h>

#include "common/log.h"
#include "common/util.h"
#include "devices/vsock.h"

#define VSOCK_RX_BUDGET 256 /* packets per pass before yielding the loop */

bool vsock_queues_usable(const struct vsock *vs)
{
	const struct virtio_device *dev = vs->dev;
	return vs->active && dev && virtio_device_running(dev);
}

static uint32_t rx_write_hdr(struct vsock *vs, const struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	vsock_hdr_encode(h, raw);
	virtq_chain_write(&vs->rx_chain, 0, raw, VSOCK_HDR_SIZE);
	vs->stats.rx_packets++;
	if (h->op == VSOCK_OP_RST)
		vs->stats.rst_sent++;
	return VSOCK_HDR_SIZE + h->len;
}

/* The header of a packet of stream c; every one carries our credit (5.10.6.3), so
 * any of them stands for a CREDIT_UPDATE. */
static struct vsock_hdr conn_hdr(struct vsock *vs, struct vsock_conn *c, uint16_t op,
				 uint32_t flags, uint32_t len)
{
	c->fwd_cnt_sent = c->fwd_cnt;
	c->pending &= ~(uint32_t)VSOCK_P_CREDIT_UPDATE;
	return (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID, .dst_cid = vs->guest_cid,
		.src_port = c->host_port, .dst_port = c->guest_port,
		.len = len, .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = VSOCK_BUF_ALLOC, .fwd_cnt = c->fwd_cnt,
	};
}

static uint32_t conn_packet(struct vsock *vs, struct vsock_conn *c, uint16_t op, uint32_t flags,
			    uint32_t len)
{
	struct vsock_hdr h = conn_hdr(vs, c, op, flags, len);
	return rx_write_hdr(vs, &h);
}

static uint32_t queued_rst(struct vsock *vs)
{
	struct vsock_hdr h = {
		.src_cid = VSOCK_HOST_CID, .dst_cid = vs->guest_cid,
		.src_port = vs->rst[vs->rst_head].host_port,
		.dst_port = vs->rst[vs->rst_head].guest_port,
		.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST,
	};
	vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_QUEUE;
	vs->rst_count--;
	return rx_write_hdr(vs, &h);
}

/* More posted rx buffers for the read that fills the held chain: each one's payload
 * iovecs go after vs->iov[0 .. *niov), bounded by the credit left, VSOCK_RX_BATCH
 * chains and VSOCK_BATCH_IOV iovecs. A chain that does not suit (malformed, header
 * split across buffers, too many buffers) is given back for the ordinary path. */
static void rx_gather(struct vsock *vs, uint32_t credit, uint32_t *total, int *niov)
{
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_RX];
	const struct virtq_chain *x = &vs->rx_extra;
	struct vsock_rx_batch *b = &vs->rxb;
	while (*total < credit && b->n < VSOCK_RX_BATCH && *niov < VSOCK_BATCH_IOV) {
		int r = virtq_pop(vq, &vs->rx_extra);
		if (r <= 0) {
			if (r == -EINVAL)
				virtq_unpop(vq, 1); /* rx_take_chain drops it in turn */
			return;
		}
		uint32_t cap = 0, covered = 0;
		int n = 0;
		if (x->write_len > VSOCK_HDR_SIZE && x->bufs[x->nread].len >= VSOCK_HDR_SIZE) {
			cap = MIN(MIN(x->write_len - VSOCK_HDR_SIZE, credit - *total),
				  VSOCK_MAX_PKT_DATA);
			n = vsock_chain_iov(x, true, VSOCK_HDR_SIZE, cap, vs->iov + *niov,
					    VSOCK_BATCH_IOV - *niov, &covered);
		}
		if (!n || covered < cap) {
			virtq_unpop(vq, 1);
			return;
		}
		b->head[b->n] = x->head;
		b->hdr[b->n] = x->bufs[x->nread].hva;
		b->len[b->n++] = cap;
		*niov += n;
		*total += cap;
	}
}

/* Shares the r - first bytes read past the held chain among the gathered chains, in
 * order, and writes their headers; gives back the chains left empty. */
static void rx_spread(struct vsock *vs, struct vsock_conn *c, uint32_t rest)
{
	struct vsock_rx_batch *b = &vs->rxb;
	uint32_t used = 0;
	for (; used < b->n && rest; used++) {
		uint32_t len = MIN(rest, b->len[used]);
		struct vsock_hdr h = conn_hdr(vs, c, VSOCK_OP_RW, 0, len);
		vsock_hdr_encode(&h, b->hdr[used]);
		vs->stats.rx_packets++;
		b->len[used] = len;
		rest -= len;
	}
	virtq_unpop(&vs->dev->queues[VSOCK_QUEUE_RX], (uint16_t)(b->n - used));
	b->n = used;
}

/* Host data into the held chain, and when it fills that chain and the guest has
 * credit for more, into further posted chains with the same readv: at most the
 * guest's credit, VSOCK_MAX_PKT_DATA per packet. 0 when nothing was sent (no credit,
 * no data, EOF). */
static uint32_t rx_data(struct vsock *vs, struct vsock_conn *c)
{
	if (!vsock_conn_wants_read(c))
		return 0;
	uint32_t credit = vsock_peer_credit(c);
	if (!credit) {
		/* 5.10.6.3: ask once; the guest's answer (any packet) restores reading. */
		if (!c->credit_requested)
			vsock_conn_want(vs, c, VSOCK_P_CREDIT_REQUEST);
		c->credit_requested = true;
		vsock_conn_sync(vs, c);
		return 0;
	}
	uint32_t room = vs->rx_chain.write_len - VSOCK_HDR_SIZE;
	if (!room) {
		/* A header-only buffer: use it for our credit; the data waits for the next. */
		vsock_conn_want(vs, c, VSOCK_P_DATA);
		return conn_packet(vs, c, VSOCK_OP_CREDIT_UPDATE, 0, 0);
	}
	uint32_t max = MIN(MIN(credit, room), VSOCK_MAX_PKT_DATA), first, total;
	int n = vsock_chain_iov(&vs->rx_chain, true, VSOCK_HDR_SIZE, max, vs->iov,
				VIRTQ_MAX_SIZE, &first);
	total = first;
	vs->rxb.n = 0;
	if (first == max)
		rx_gather(vs, credit, &total, &n);
	ssize_t r = vsock_uds_recv(c->fd, vs->iov, n);
	vs->stats.host_recvs++;
	if (r > 0) {
		c->tx_cnt += (uint32_t)r;
		vs->stats.rx_bytes += (uint64_t)r;
		if ((uint32_t)r == total)
			vsock_conn_want(vs, c, VSOCK_P_DATA); /* there may be more */
		else
			vsock_conn_sync(vs, c);
		uint32_t mine = MIN((uint32_t)r, first);
		rx_spread(vs, c, (uint32_t)r - mine);
		return conn_packet(vs, c, VSOCK_OP_RW, 0, mine);
	}
	rx_spread(vs, c, 0); /* every gathered chain goes back */
	if (r == -EAGAIN) {
		vsock_conn_sync(vs, c);
		return 0;
	}
	c->host_eof = true; /* EOF: the host sends no more; an error: it is gone */
	if (r < 0)
		vsock_conn_host_gone(vs, c);
	else
		vsock_conn_shutdown_local(vs, c, c->host_hup ? VSOCK_SHUTDOWN_BOTH
							     : VSOCK_SHUTDOWN_SEND);
	return 0;
}

static bool conn_is(const struct vsock_conn *c, enum vsock_conn_state s)
{
	return c->state == s;
}

/* The packet for one flag of c, or 0 when it no longer applies. */
static uint32_t rx_one(struct vsock *vs, struct vsock_conn *c, uint32_t bit)
{
	bool open = conn_is(c, VSOCK_CONN_ESTABLISHED) || conn_is(c, VSOCK_CONN_CLOSING);
	c->pending &= ~bit;
	switch (bit) {
	case VSOCK_P_RST:
		return conn_packet(vs, c, VSOCK_OP_RST, 0, 0);
	case VSOCK_P_REQUEST:
		if (!conn_is(c, VSOCK_CONN_HOST_CONNECTING))
			return 0;
		c->guest_knows = true;
		return conn_packet(vs, c, VSOCK_OP_REQUEST, 0, 0);
	case VSOCK_P_RESPONSE:
		return conn_is(c, VSOCK_CONN_ESTABLISHED)
			       ? conn_packet(vs, c, VSOCK_OP_RESPONSE, 0, 0) : 0;
	case VSOCK_P_DATA:
		return rx_data(vs, c);
	case VSOCK_P_CREDIT_REQUEST:
		return conn_is(c, VSOCK_CONN_ESTABLISHED)
			       ? conn_packet(vs, c, VSOCK_OP_CREDIT_REQUEST, 0, 0) : 0;
	case VSOCK_P_SHUTDOWN:
		return open ? conn_packet(vs, c, VSOCK_OP_SHUTDOWN, c->local_shut, 0) : 0;
	case VSOCK_P_CREDIT_UPDATE:
		return open ? conn_packet(vs, c, VSOCK_OP_CREDIT_UPDATE, 0, 0) : 0;
	default:
		return 0;
	}
}

/* The most urgent packet c owes, flags in priority order (lowest bit first); flags
 * raised meanwhile (EOF raising SHUTDOWN) are tried in the same pass. */
static uint32_t rx_conn(struct vsock *vs, struct vsock_conn *c)
{
	uint32_t tried = 0;
	for (;;) {
		uint32_t todo = c->pending & ~tried;
		if (!todo)
			return 0;
		uint32_t bit = todo & -todo;
		tried |= bit;
		uint32_t len = rx_one(vs, c, bit);
		if (len)
			return len;
	}
}

/* The next packet for the held chain: queued RSTs first, then each waiting
 * connection at most once, round robin. 0 when nothing can be sent now. */
static uint32_t rx_next_packet(struct vsock *vs)
{
	if (vs->rst_count)
		return queued_rst(vs);
	for (uint32_t tries = vs->nconns; tries; tries--) {
		struct vsock_conn *c = vsock_rx_list_pop(vs);
		if (!c)
			return 0;
		uint32_t len = rx_conn(vs, c);
		if (len && c->state == VSOCK_CONN_RST_PENDING)
			vsock_conn_free(vs, c); /* its RST is out: the stream is over */
		else
			vsock_conn_want(vs, c, 0); /* back in line if it owes more */
		if (len)
			return len;
	}
	return 0;
}

/* Holds an rx chain with room for a header: 1, or 0 when the guest has none
 * posted, or -EIO when the ring is broken. Unusable chains go back empty. */
static int rx_take_chain(struct vsock *vs)
{
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_RX];
	for (uint32_t n = 0; !vs->rx_held; n++) {
		if (n == VSOCK_RX_BUDGET) {
			vsock_schedule(vs);
			return 0;
		}
		int r = virtio_pop(vs->dev, vq, &vs->rx_chain, true, "vsock rx ring broken");
		if (r == 0)
			return 0;
		if (r == -EIO)
			return -EIO;
		if (r < 0 || (r > 0 && vs->rx_chain.write_len < VSOCK_HDR_SIZE)) {
			vs->stats.dropped++;
			virtq_push(vq, vs->rx_chain.head, 0);
			vsock_used(vs, VSOCK_QUEUE_RX);
		} else if (r > 0) {
			vs->rx_held = true;
		}
	}
	return 1;
}

void vsock_rx_process(struct vsock *vs)
{
	if (!vsock_queues_usable(vs))
		return;
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_RX];
	vsock_pass_begin(vs);
	for (uint32_t n = 0; vs->rst_count || vs->rx_head >= 0; n++) {
		if (n >= VSOCK_RX_BUDGET) {
			vsock_schedule(vs); /* let other devices run; continue next pass */
			break;
		}
		if (rx_take_chain(vs) <= 0)
			break;
		uint32_t len = rx_next_packet(vs);
		if (!len)
			break; /* the chain stays held for the next packet */
		virtq_push(vq, vs->rx_chain.head, len);
		vs->rx_held = false;
		/* Chains the same read filled follow, so the guest sees the bytes in order. */
		for (uint32_t i = 0; i < vs->rxb.n; i++)
			virtq_push(vq, vs->rxb.head[i], VSOCK_HDR_SIZE + vs->rxb.len[i]);
		n += vs->rxb.n;
		vs->rxb.n = 0;
		vsock_used(vs, VSOCK_QUEUE_RX);
	}
	vsock_pass_end(vs);
	if (vs->tx_stalled && vs->rst_count < VSOCK_RST_QUEUE) {
		vs->tx_stalled = false; /* room for replies again: resume tx */
		vsock_schedule(vs);
	}
}
