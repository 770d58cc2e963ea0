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

/* Appends the payload of chain to the batch of stream c; false when the batch holds
 * another stream or has too few iovecs left. */
static bool batch_add(struct vsock *vs, struct vsock_conn *c, const struct virtq_chain *chain,
		      uint32_t len)
{
	struct vsock_tx_batch *b = &vs->txb;
	if (b->c && b->c != c)
		return false;
	uint32_t covered;
	int n = vsock_chain_iov(chain, false, VSOCK_HDR_SIZE, len, b->iov + b->niov,
				VSOCK_BATCH_IOV - b->niov, &covered);
	if (covered < len)
		return false;
	b->c = c;
	b->niov += n;
	b->bytes += len;
	return true;
}

/* Bytes of stream c that are gathered and not yet written. */
static uint32_t batched(const struct vsock *vs, const struct vsock_conn *c)
{
	return vs->txb.c == c ? vs->txb.bytes : 0;
}

static void batch_write(struct vsock *vs, struct vsock_conn *c)
{
	struct vsock_tx_batch *b = &vs->txb;
	ssize_t w = vsock_uds_send(c->fd, b->iov, b->niov);
	vs->stats.host_sends++;
	if (w < 0 && w != -EAGAIN) {
		vsock_conn_reset(vs, c, "the host socket failed");
		return;
	}
	uint32_t sent = w > 0 ? (uint32_t)w : 0;
	/* The ring was empty when the batch began and the credit check counted the batch:
	 * the rest fits. */
	if (sent < b->bytes && vsock_ring_put_iov(&c->ring, b->iov, b->niov, sent) < 0) {
		vsock_conn_reset(vs, c, "no memory to buffer guest data");
		return;
	}
	c->fwd_cnt += sent;
	vsock_conn_credit_check(vs, c);
	vsock_conn_sync(vs, c);
}

void vsock_tx_flush(struct vsock *vs)
{
	struct vsock_tx_batch *b = &vs->txb;
	struct vsock_conn *c = b->c;
	b->c = NULL;
	if (c && c->state == VSOCK_CONN_ESTABLISHED && c->fd >= 0 && b->bytes)
		batch_write(vs, c);
	if (b->nheads && vs->dev) {
		struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_TX];
		for (uint32_t i = 0; i < b->nheads; i++)
			virtq_push(vq, b->heads[i], 0);
		vsock_used(vs, VSOCK_QUEUE_TX);
	}
	b->bytes = 0;
	b->niov = 0;
	b->nheads = 0;
}

/* The rest of a packet that cannot join the batch: written straight from the chain
 * while nothing is buffered, else kept in the ring. */
static void tx_rw_direct(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
			 const struct virtq_chain *chain)
{
	uint32_t sent = 0, covered;
	if (!c->ring.len) {
		int n = vsock_chain_iov(chain, false, VSOCK_HDR_SIZE, h->len, vs->iov,
					VIRTQ_MAX_SIZE, &covered);
		ssize_t w = vsock_uds_send(c->fd, vs->iov, n);
		vs->stats.host_sends++;
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

/* Guest data for the host. While nothing is buffered, the packets of one tx pass for
 * one stream are gathered (their chains held) and written with one writev; once the
 * host lags, they are copied to the connection's ring. The ring holds VSOCK_BUF_ALLOC,
 * the credit we advertise, and the batch counts against it, so a guest that respects
 * credit always fits (5.10.6.3). Returns true when the chain joined the batch. */
static bool tx_rw(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		  const struct virtq_chain *chain)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || !h->len)
		return false; /* CLOSING: the host is gone and the guest was told so */
	if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) || c->host_hup) {
		vsock_conn_reset(vs, c, "data on a stream shut for sending");
		return false;
	}
	/* 5.10.6.3: the guest may have in flight at most the buf_alloc we advertised
	 * less what it has not been told we forwarded (fwd_cnt_sent, not fwd_cnt: what
	 * the host read since our last header is room the guest has not been given).
	 * That bound also keeps the ring and the batch within VSOCK_BUF_ALLOC. */
	uint32_t unacked = c->rx_from_guest - c->fwd_cnt_sent;
	if (unacked > VSOCK_BUF_ALLOC || h->len > VSOCK_BUF_ALLOC - unacked ||
	    h->len > vsock_ring_room(&c->ring) - batched(vs, c)) {
		vs->stats.credit_violations++;
		vsock_conn_reset(vs, c, "the guest sent more than its credit");
		return false;
	}
	c->rx_from_guest += h->len;
	vs->stats.tx_bytes += h->len;
	if (!c->ring.len && batch_add(vs, c, chain, h->len))
		return true;
	if (vs->txb.c == c) {
		vsock_tx_flush(vs); /* out of iovecs: what was gathered goes first */
		if (c->state != VSOCK_CONN_ESTABLISHED)
			return false;
		if (!c->ring.len && batch_add(vs, c, chain, h->len))
			return true;
	}
	tx_rw_direct(vs, c, h, chain); /* a chain of more than VSOCK_BATCH_IOV buffers */
	return false;
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

static bool tx_open(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		    const struct virtq_chain *chain)
{
	switch (h->op) {
	case VSOCK_OP_RW:
		return tx_rw(vs, c, h, chain);
	case VSOCK_OP_SHUTDOWN:
		tx_shutdown(vs, c, h);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break; /* the credit fields were taken already */
	case VSOCK_OP_CREDIT_REQUEST:
		vsock_conn_want(vs, c, VSOCK_P_CREDIT_UPDATE);
		break;
	default:
		/* REQUEST or RESPONSE on an open stream: 5.10.6.5 gives them no meaning
		 * there. Dropped, as Linux's transport does in its connected state: a
		 * duplicate neither ends the stream nor loses the RESPONSE we owe. */
		tx_drop(vs, "REQUEST or RESPONSE on an open stream");
		break;
	}
	return false;
}

static bool tx_conn(struct vsock *vs, struct vsock_conn *c, const struct vsock_hdr *h,
		    const struct virtq_chain *chain)
{
	if (h->op == VSOCK_OP_RST) {
		/* 5.10.6.5: the stream is over (or refused); no answer. */
		log_debug("vsock: host port %u, guest port %u: reset by the guest", c->host_port,
			  c->guest_port);
		vsock_conn_free(vs, c);
		return false;
	}
	if (c->state == VSOCK_CONN_RST_PENDING)
		return false; /* our RST is on its way */
	vsock_conn_peer_credit_update(vs, c, h);
	if (c->state != VSOCK_CONN_HOST_CONNECTING)
		return tx_open(vs, c, h, chain);
	tx_connecting(vs, c, h);
	return false;
}

bool vsock_tx_packet(struct vsock *vs, const struct virtq_chain *chain)
{
	if (chain->read_len < VSOCK_HDR_SIZE) {
		tx_drop(vs, "chain shorter than a header");
		return false;
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
		return false;
	case VSOCK_PKT_RST:
		log_debug("vsock: guest port %u -> host port %u: %s; RST", h.src_port, h.dst_port,
			  why);
		vsock_rst_reply(vs, h.dst_port, h.src_port);
		return false;
	case VSOCK_PKT_OK:
		break;
	}
	struct vsock_conn *c = vsock_conn_lookup(vs, h.dst_port, h.src_port);
	/* Anything but more data for the gathered stream sees its data written first
	 * (a SHUTDOWN or RST must follow the bytes sent before it). */
	if (vs->txb.c && (c != vs->txb.c || h.op != VSOCK_OP_RW))
		vsock_tx_flush(vs);
	if (c && !c->guest_knows) {
		/* A host-initiated stream whose REQUEST the guest has not been given does
		 * not exist for the guest (5.10.6.5: a stream begins with the REQUEST), so
		 * a packet naming it, with a port guessed or remembered, is answered as
		 * one for no stream and cannot move it along. */
		if (h.op != VSOCK_OP_RST)
			vsock_rst_reply(vs, h.dst_port, h.src_port);
		return false;
	}
	if (c)
		return tx_conn(vs, c, &h, chain);
	if (h.op == VSOCK_OP_REQUEST)
		tx_request(vs, &h);
	else if (h.op != VSOCK_OP_RST)
		vsock_rst_reply(vs, h.dst_port, h.src_port); /* no such stream */
	return false;
}

void vsock_tx_process(struct vsock *vs)
{
	if (!vsock_queues_usable(vs))
		return;
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_TX];
	vsock_pass_begin(vs);
	for (uint32_t n = 0;; n++) {
		if (vs->rst_count == VSOCK_RST_QUEUE) {
			vs->tx_stalled = true; /* each packet may need one RST: wait for rx */
			break;
		}
		if (n == VSOCK_TX_BUDGET) {
			vsock_schedule(vs);
			break;
		}
		int r = virtio_pop(vs->dev, vq, &vs->tx_chain, true, "vsock tx ring broken");
		if (r == 0 || r == -EIO)
			break;
		if (r > 0 && vsock_tx_packet(vs, &vs->tx_chain)) {
			vs->txb.heads[vs->txb.nheads++] = vs->tx_chain.head;
			continue; /* given back by vsock_tx_flush */
		}
		if (r < 0)
			tx_drop(vs, "malformed descriptor chain");
		virtq_push(vq, vs->tx_chain.head, 0);
		vsock_used(vs, VSOCK_QUEUE_TX);
	}
	vsock_tx_flush(vs);
	vsock_rx_process(vs);
	vsock_pass_end(vs);
}
