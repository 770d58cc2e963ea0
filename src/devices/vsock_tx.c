/* virtio-vsock tx: packets the guest sends (virtio 1.2, 5.10.6). Every header is
 * hostile: checked against the chain and the guest's cid before anything else, and
 * dispatched by the stream it names. Replies never wait for rx buffers: they become
 * flags on the connection, or for packets with no connection an entry in a small RST
 * queue; when that queue is full tx processing pauses until the guest takes rx
 * buffers (5.10.6.1: stop when the extra resources are exhausted). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/vsock.h"

static void tx_drop(struct vsock *vs, const char *why)
{
	vs->stats.dropped++;
	log_debug("vsock: guest packet dropped: %s", why);
}

/* 5.10.6.5: a REQUEST to host port P connects to "<uds_path>_P"; RESPONSE when that
 * succeeds, RST when nothing listens or we are out of connections. */
static void tx_request(struct vsock *vs, const struct vsock_hdr *h)
{
	int fd = vs->nconns < VSOCK_MAX_CONNS ? vsock_uds_connect_port(vs->uds_path, h->dst_port)
					      : -ENOSPC;
	struct vsock_conn *c = fd >= 0 ? vsock_conn_new(vs, fd, VSOCK_CONN_ESTABLISHED) : NULL;
	if (!c) {
		log_debug("vsock: guest port %u -> %s_%u refused: %s", h->src_port, vs->uds_path,
			  h->dst_port, fd < 0 ? strerror(-fd) : "out of memory");
		if (fd >= 0)
			close(fd);
		vs->stats.refused++;
		vsock_rst_reply(vs, h->dst_port, h->src_port);
		return;
	}
	vsock_conn_hash(vs, c, h->dst_port, h->src_port);
	c->guest_knows = true;
	vsock_conn_want(vs, c, VSOCK_P_RESPONSE);
	vsock_conn_peer_credit_update(vs, c, h);
}

/* 5.10.6.5: the guest accepted the host's connection: tell the host its port. */
static void tx_connecting(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (h->op != VSOCK_OP_RESPONSE) {
		vsock_conn_reset(vs, c, "the guest answered a REQUEST with neither RESPONSE nor RST");
		return;
	}
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %u\n", c->host_port);
	struct iovec iov = { .iov_base = ok, .iov_len = (size_t)n };
	if (vsock_uds_send(c->fd, &iov, 1) != n) {
		vsock_conn_reset(vs, c, "cannot answer the host");
		return;
	}
	c->state = VSOCK_CONN_ESTABLISHED;
	vsock_conn_clear_deadline(vs, c);
	vsock_conn_sync(vs, c);
}

/* Guest data for the host: written straight from the chain while nothing is
 * buffered, the rest kept in the connection's ring. The ring holds VSOCK_BUF_ALLOC,
 * the credit we advertise, so a guest that respects credit always fits (5.10.6.3). */
static void tx_rw(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		  const struct virtq_chain *chain)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || !h->len)
		return; /* CLOSING: the host is gone and the guest was told so */
	if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) || c->host_hup) {
		vsock_conn_reset(vs, c, "data on a stream shut for sending");
		return;
	}
	if (h->len > vsock_ring_room(&c->ring)) {
		vs->stats.credit_violations++;
		vsock_conn_reset(vs, c, "the guest sent more than its credit");
		return;
	}
	c->rx_from_guest += h->len;
	vs->stats.tx_bytes += h->len;
	uint32_t sent = 0, covered;
	if (!c->ring.len) {
		int n = vsock_chain_iov(chain, false, VSOCK_HDR_SIZE, h->len, vs->iov,
					VIRTQ_MAX_SIZE, &covered);
		ssize_t w = vsock_uds_send(c->fd, vs->iov, n);
		if (w < 0 && w != -EAGAIN) {
			vsock_conn_reset(vs, c, "the host socket failed");
			return;
		}
		sent = w > 0 ? (uint32_t)w : 0;
	}
	if (sent < h->len && vsock_ring_put_chain(&c->ring, chain, VSOCK_HDR_SIZE + sent,
						  h->len - sent) < 0) {
		vsock_conn_reset(vs, c, "no memory to buffer guest data");
		return;
	}
	c->fwd_cnt += sent;
	vsock_conn_credit_check(vs, c);
	vsock_conn_sync(vs, c);
}

/* 5.10.6.5: SHUTDOWN flags are permanent hints; both set and everything delivered
 * ends the stream with our RST. Data still buffered gets a deadline to drain. */
static void tx_shutdown(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h)
{
	c->peer_shut |= (uint8_t)(h->flags & VSOCK_SHUTDOWN_BOTH);
	if (c->peer_shut & VSOCK_SHUTDOWN_RCV)
		c->pending &= ~(uint32_t)VSOCK_P_DATA; /* it takes no more data */
	if (!c->ring.len && vsock_conn_after_drain(vs, c))
		return;
	if (c->peer_shut == VSOCK_SHUTDOWN_BOTH)
		vsock_conn_set_deadline(vs, c, VSOCK_SHUTDOWN_TIMEOUT_MS);
	vsock_conn_sync(vs, c);
}

static void tx_open(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		    const struct virtq_chain *chain)
{
	switch (h->op) {
	case VSOCK_OP_RW:
		tx_rw(vs, c, h, chain);
		break;
	case VSOCK_OP_SHUTDOWN:
		tx_shutdown(vs, c, h);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields were taken already */
	case VSOCK_OP_CREDIT_REQUEST:
		vsock_conn_want(vs, c, VSOCK_P_CREDIT_UPDATE);
		break;
	default: /* REQUEST or RESPONSE on an open stream */
		vsock_conn_reset(vs, c, "REQUEST or RESPONSE on an open stream");
		break;
	}
}

static void tx_conn(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		    const struct virtq_chain *chain)
{
	if (h->op == VSOCK_OP_RST) {
		/* 5.10.6.5: the stream is over (or refused); no answer. */
		log_debug("vsock: host port %u, guest port %u: reset by the guest", c->host_port,
			  c->guest_port);
		vsock_conn_free(vs, c);
		return;
	}
	if (c->state == VSOCK_CONN_RST_PENDING)
		return; /* our RST is on its way */
	vsock_conn_peer_credit_update(vs, c, h);
	if (c->state == VSOCK_CONN_HOST_CONNECTING)
		tx_connecting(vs, c, h);
	else
		tx_open(vs, c, h, chain);
}

void vsock_tx_packet(struct vsock *vs, const struct virtq_chain *chain)
{
	if (chain->read_len < VSOCK_HDR_SIZE) {
		tx_drop(vs, "chain shorter than a header");
		return;
	}
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;
	virtq_chain_read(chain, 0, raw, VSOCK_HDR_SIZE);
	vsock_hdr_decode(raw, &h);
	vs->stats.tx_packets++;
	const char *why = NULL;
	switch (vsock_hdr_check(&h, chain->read_len - VSOCK_HDR_SIZE, vs->guest_cid, &why)) {
	case VSOCK_PKT_DROP:
		tx_drop(vs, why);
		return;
	case VSOCK_PKT_RST:
		log_debug("vsock: guest port %u -> host port %u: %s; RST", h.src_port, h.dst_port,
			  why);
		vsock_rst_reply(vs, h.dst_port, h.src_port);
		return;
	case VSOCK_PKT_OK:
		break;
	}
	struct vsock_conn *c = vsock_conn_lookup(vs, h.dst_port, h.src_port);
	if (c)
		tx_conn(vs, c, &h, chain);
	else if (h.op == VSOCK_OP_REQUEST)
		tx_request(vs, &h);
	else if (h.op != VSOCK_OP_RST)
		vsock_rst_reply(vs, h.dst_port, h.src_port); /* no such stream */
}

void vsock_tx_process(struct vsock *vs)
{
	if (!vsock_queues_usable(vs))
		return;
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_TX];
	bool pushed = false;
	for (uint32_t n = 0;; n++) {
		if (vs->rst_count == VSOCK_RST_QUEUE) {
			vs->tx_stalled = true; /* each packet may need one RST: wait for rx */
			break;
		}
		if (n == VSOCK_TX_BUDGET) {
			vsock_schedule(vs);
			break;
		}
		int r = virtq_pop(vq, &vs->tx_chain);
		if (r == 0 && !virtq_enable_notify(vq))
			break;
		if (r == -EIO) {
			virtio_set_needs_reset(vs->dev, "vsock tx ring broken");
			break;
		}
		if (r == 0)
			continue;
		if (r > 0)
			vsock_tx_packet(vs, &vs->tx_chain);
		else
			tx_drop(vs, "malformed descriptor chain");
		virtq_push(vq, vs->tx_chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_notify_used(vs->dev, VSOCK_QUEUE_TX);
	vsock_rx_process(vs);
}
