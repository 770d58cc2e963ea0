/* virtio-vsock connections: a fixed table of VSOCK_MAX_CONNS slots, a hash on (host
 * port, guest port), the round-robin list of connections owing the guest packets,
 * deadlines, credit accounting (virtio 1.2, 5.10.6.3) and teardown (5.10.6.5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "devices/vsock.h"
#include "vmm/timings.h"

uint64_t vsock_conn_tag(const struct vsock_conn *c)
{
	return (uint64_t)c->gen << 32 | (c->slot + VSOCK_TAG_CONN0);
}

static uint32_t bucket_of(uint32_t host_port, uint32_t guest_port)
{
	return ((host_port * 0x9e3779b1u) ^ (guest_port * 0x85ebca6bu)) & (VSOCK_HASH_SIZE - 1);
}

struct vsock_conn *vsock_conn_new(struct vsock *vs, int fd, enum vsock_conn_state state)
{
	if (vs->nconns >= VSOCK_MAX_CONNS)
		return NULL;
	uint32_t slot = 0;
	while (vs->conns[slot])
		slot++; /* nconns < VSOCK_MAX_CONNS: a free slot exists */
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = (struct vsock_conn){
		.slot = slot, .gen = ++vs->gens[slot], .state = state, .fd = fd,
		.hash_next = -1, .rx_prev = -1, .rx_next = -1,
	};
	vs->conns[slot] = c;
	vs->nconns++;
	return c;
}

struct vsock_conn *vsock_conn_by_tag(struct vsock *vs, uint64_t tag)
{
	uint32_t id = (uint32_t)tag;
	if (id < VSOCK_TAG_CONN0 || id - VSOCK_TAG_CONN0 >= VSOCK_MAX_CONNS)
		return NULL;
	struct vsock_conn *c = vs->conns[id - VSOCK_TAG_CONN0];
	return c && c->gen == (uint32_t)(tag >> 32) && c->state != VSOCK_CONN_DEAD ? c : NULL;
}

struct vsock_conn *vsock_conn_lookup(struct vsock *vs, uint32_t host_port, uint32_t guest_port)
{
	for (int32_t i = vs->buckets[bucket_of(host_port, guest_port)]; i >= 0;
	     i = vs->conns[i]->hash_next) {
		struct vsock_conn *c = vs->conns[i];
		if (c->host_port == host_port && c->guest_port == guest_port)
			return c;
	}
	return NULL;
}

void vsock_conn_hash(struct vsock *vs, struct vsock_conn *c, uint32_t host_port,
		     uint32_t guest_port)
{
	uint32_t b = bucket_of(host_port, guest_port);
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->hash_next = vs->buckets[b];
	vs->buckets[b] = (int32_t)c->slot;
	c->hashed = true;
}

static void conn_unhash(struct vsock *vs, struct vsock_conn *c)
{
	if (!c->hashed)
		return;
	int32_t *link = &vs->buckets[bucket_of(c->host_port, c->guest_port)];
	while (*link >= 0 && *link != (int32_t)c->slot)
		link = &vs->conns[*link]->hash_next;
	if (*link >= 0)
		*link = c->hash_next;
	c->hashed = false;
}

/* An ephemeral host port for a host-initiated stream to guest_port, unused with it.
 * At most VSOCK_MAX_CONNS ports can be taken, so the search ends. */
uint32_t vsock_alloc_port(struct vsock *vs, uint32_t guest_port)
{
	for (;;) {
		uint32_t port = vs->next_port;
		vs->next_port = port == UINT32_MAX - 1 ? VSOCK_EPHEMERAL_BASE : port + 1;
		if (!vsock_conn_lookup(vs, port, guest_port))
			return port;
	}
}

static void rx_list_del(struct vsock *vs, struct vsock_conn *c)
{
	if (!c->in_rx_list)
		return;
	if (c->rx_prev >= 0)
		vs->conns[c->rx_prev]->rx_next = c->rx_next;
	else
		vs->rx_head = c->rx_next;
	if (c->rx_next >= 0)
		vs->conns[c->rx_next]->rx_prev = c->rx_prev;
	else
		vs->rx_tail = c->rx_prev;
	c->rx_prev = c->rx_next = -1;
	c->in_rx_list = false;
}

void vsock_conn_want(struct vsock *vs, struct vsock_conn *c, uint32_t packets)
{
	if (c->state == VSOCK_CONN_DEAD)
		return;
	c->pending |= packets;
	if (c->in_rx_list || !c->pending)
		return;
	c->rx_prev = vs->rx_tail;
	c->rx_next = -1;
	if (vs->rx_tail >= 0)
		vs->conns[vs->rx_tail]->rx_next = (int32_t)c->slot;
	else
		vs->rx_head = (int32_t)c->slot;
	vs->rx_tail = (int32_t)c->slot;
	c->in_rx_list = true;
}

struct vsock_conn *vsock_rx_list_pop(struct vsock *vs)
{
	if (vs->rx_head < 0)
		return NULL;
	struct vsock_conn *c = vs->conns[vs->rx_head];
	rx_list_del(vs, c);
	return c;
}

void vsock_conn_set_deadline(struct vsock *vs, struct vsock_conn *c, uint64_t ms)
{
	if (!c->deadline_ns)
		vs->ndeadlines++;
	c->deadline_ns = timings_now() + ms * 1000000ULL;
	vsock_timer_update(vs);
}

void vsock_conn_clear_deadline(struct vsock *vs, struct vsock_conn *c)
{
	if (!c->deadline_ns)
		return;
	c->deadline_ns = 0;
	vs->ndeadlines--;
	vsock_timer_update(vs);
}

static void conn_close_fd(struct vsock *vs, struct vsock_conn *c)
{
	if (c->in_epoll)
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_epoll = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Everything but the memory: after this nothing reaches c (not hashed, not in the rx
 * list, no deadline, no socket) and the bytes gathered for it are not written. Its
 * gathered chains stay in the batch, to be given back to the guest. */
static void conn_retire(struct vsock *vs, struct vsock_conn *c)
{
	if (vs->txb.c == c) {
		vs->txb.c = NULL;
		vs->txb.bytes = 0;
		vs->txb.niov = 0;
	}
	conn_unhash(vs, c);
	rx_list_del(vs, c);
	vsock_conn_clear_deadline(vs, c);
	conn_close_fd(vs, c);
	vsock_ring_free(&c->ring);
	c->state = VSOCK_CONN_DEAD;
	c->pending = 0;
}

static void conn_release(struct vsock *vs, struct vsock_conn *c)
{
	vs->conns[c->slot] = NULL;
	vs->nconns--;
	free(c);
}

void vsock_conn_free(struct vsock *vs, struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_DEAD)
		return; /* already waiting for the end of the pass */
	conn_retire(vs, c);
	if (vs->pass_depth)
		vs->dead[vs->ndead++] = (uint16_t)c->slot; /* one entry per slot: fits */
	else
		conn_release(vs, c);
}

void vsock_conn_reap(struct vsock *vs)
{
	while (vs->ndead)
		conn_release(vs, vs->conns[vs->dead[--vs->ndead]]);
}

void vsock_conn_free_all(struct vsock *vs)
{
	vsock_conn_reap(vs);
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
		if (vs->conns[i]) {
			conn_retire(vs, vs->conns[i]);
			conn_release(vs, vs->conns[i]);
		}
	vs->rst_head = vs->rst_count = 0;
}

/* 5.10.6.3: peer_free = peer_buf_alloc - (tx_cnt - peer_fwd_cnt), in wrapping u32
 * arithmetic. A guest claiming to have forwarded more than we sent, or shrinking its
 * buffer below what is in flight, gets nothing rather than a wrapped-around credit. */
uint32_t vsock_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

bool vsock_conn_wants_read(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && c->fd >= 0 && !c->host_eof &&
	       !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

/* Read when the guest can take data (or we have yet to ask it for credit). */
static bool conn_should_read(const struct vsock_conn *c)
{
	return vsock_conn_wants_read(c) && !(c->pending & VSOCK_P_DATA) &&
	       (vsock_peer_credit(c) || !c->credit_requested);
}

static uint32_t conn_interest(const struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_HOST_CMD)
		return EPOLLIN;
	uint32_t ev = 0;
	if (conn_should_read(c))
		ev |= EPOLLIN;
	if (c->ring.len)
		ev |= EPOLLOUT;
	return ev;
}

void vsock_conn_sync(struct vsock *vs, struct vsock_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->host_hup) {
		/* Out of the epoll set (a hang-up is reported whatever the interest): what
		 * the host left in the socket is read until EOF as credit allows. */
		if (conn_should_read(c))
			vsock_conn_want(vs, c, VSOCK_P_DATA);
		return;
	}
	uint32_t ev = conn_interest(c);
	if (c->in_epoll && ev == c->events)
		return;
	struct epoll_event e = { .events = ev, .data.u64 = vsock_conn_tag(c) };
	if (epoll_ctl(vs->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) < 0) {
		log_warn("vsock: epoll for host port %u: %m", c->host_port);
		return;
	}
	c->in_epoll = true;
	c->events = ev;
}

void vsock_conn_peer_credit_update(struct vsock *vs, struct vsock_conn *c,
				   const struct vsock_hdr *h)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (vsock_peer_credit(c))
		c->credit_requested = false;
	vsock_conn_sync(vs, c);
}

/* The guest believes (rx_from_guest - fwd_cnt_sent) of our buffer is used; once its
 * view of the free space falls below VSOCK_CREDIT_LOW and the host has read more,
 * tell it (5.10.6.3: an update may be sent any time buffer space changes). */
void vsock_conn_credit_check(struct vsock *vs, struct vsock_conn *c)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || c->fwd_cnt == c->fwd_cnt_sent)
		return;
	uint32_t used = MIN(c->rx_from_guest - c->fwd_cnt_sent, VSOCK_BUF_ALLOC);
	if (VSOCK_BUF_ALLOC - used < VSOCK_CREDIT_LOW)
		vsock_conn_want(vs, c, VSOCK_P_CREDIT_UPDATE);
}

void vsock_conn_reset(struct vsock *vs, struct vsock_conn *c, const char *why)
{
	if (c->state == VSOCK_CONN_DEAD)
		return;
	log_debug("vsock: host port %u, guest port %u: reset: %s", c->host_port, c->guest_port,
		  why);
	conn_close_fd(vs, c);
	vsock_conn_clear_deadline(vs, c);
	if (!c->guest_knows || !c->hashed) {
		vsock_conn_free(vs, c);
		return;
	}
	/* Stays hashed until the RST is out, so late packets of the stream are ignored. */
	c->state = VSOCK_CONN_RST_PENDING;
	c->pending = 0;
	vsock_conn_want(vs, c, VSOCK_P_RST);
}

void vsock_conn_shutdown_local(struct vsock *vs, struct vsock_conn *c, uint32_t flags)
{
	flags &= ~(uint32_t)c->local_shut;
	if (!flags)
		return;
	c->local_shut |= (uint8_t)flags;
	vsock_conn_want(vs, c, VSOCK_P_SHUTDOWN);
	if (c->local_shut == VSOCK_SHUTDOWN_BOTH && c->state == VSOCK_CONN_ESTABLISHED) {
		/* 5.10.6.5: clean disconnect: SHUTDOWN both ways, then the peer's RST. */
		c->state = VSOCK_CONN_CLOSING;
		vsock_conn_set_deadline(vs, c, VSOCK_SHUTDOWN_TIMEOUT_MS);
	}
	vsock_conn_sync(vs, c);
}

void vsock_conn_host_gone(struct vsock *vs, struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_DEAD)
		return;
	c->host_hup = true;
	if (c->in_epoll)
		epoll_ctl(vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->in_epoll = false;
	switch (c->state) {
	case VSOCK_CONN_HOST_CMD:
		vsock_conn_free(vs, c);
		return;
	case VSOCK_CONN_HOST_CONNECTING:
		vsock_conn_reset(vs, c, "the host hung up before the guest answered");
		return;
	case VSOCK_CONN_ESTABLISHED:
		break;
	default:
		return;
	}
	if (c->ring.len)
		vsock_conn_reset(vs, c, "the host closed with guest data unread");
	else if (vsock_conn_wants_read(c))
		vsock_conn_sync(vs, c); /* drain what it left, then EOF ends the stream */
	else
		vsock_conn_shutdown_local(vs, c, VSOCK_SHUTDOWN_BOTH);
}

void vsock_expire(struct vsock *vs, uint64_t now_ns)
{
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS && vs->ndeadlines; i++) {
		struct vsock_conn *c = vs->conns[i];
		if (c && c->deadline_ns && c->deadline_ns <= now_ns)
			vsock_conn_reset(vs, c, "timed out");
	}
}

bool vsock_rst_reply(struct vsock *vs, uint32_t host_port, uint32_t guest_port)
{
	if (vs->rst_count == VSOCK_RST_QUEUE)
		return false;
	uint32_t i = (vs->rst_head + vs->rst_count) % VSOCK_RST_QUEUE;
	vs->rst[i].host_port = host_port;
	vs->rst[i].guest_port = guest_port;
	vs->rst_count++;
	return true;
}

/* The guest -> host buffer: a ring of VSOCK_BUF_ALLOC bytes, allocated while it holds
 * data, so idle connections cost no buffer. */
uint32_t vsock_ring_room(const struct vsock_ring *r)
{
	return VSOCK_BUF_ALLOC - r->len;
}

int vsock_ring_put_chain(struct vsock_ring *r, const struct virtq_chain *c, uint32_t offset,
			 uint32_t len)
{
	if (len > vsock_ring_room(r))
		return -ENOSPC;
	if (!r->buf && !(r->buf = malloc(VSOCK_BUF_ALLOC)))
		return -ENOMEM;
	uint32_t tail = (r->head + r->len) % VSOCK_BUF_ALLOC;
	uint32_t first = MIN(len, VSOCK_BUF_ALLOC - tail);
	uint32_t got = virtq_chain_read(c, offset, r->buf + tail, first);
	if (first < len)
		got += virtq_chain_read(c, offset + first, r->buf, len - first);
	r->len += got;
	return got == len ? 0 : -EINVAL;
}

int vsock_ring_put_iov(struct vsock_ring *r, const struct iovec *iov, int n, uint32_t skip)
{
	uint32_t len = 0;
	for (int i = 0; i < n; i++)
		len += (uint32_t)iov[i].iov_len;
	if (skip >= len)
		return 0;
	if (len - skip > vsock_ring_room(r))
		return -ENOSPC;
	if (!r->buf && !(r->buf = malloc(VSOCK_BUF_ALLOC)))
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		uint32_t blen = (uint32_t)iov[i].iov_len, off = MIN(skip, blen);
		skip -= off;
		for (const uint8_t *p = (const uint8_t *)iov[i].iov_base + off; off < blen;) {
			uint32_t tail = (r->head + r->len) % VSOCK_BUF_ALLOC;
			uint32_t take = MIN(blen - off, VSOCK_BUF_ALLOC - tail);
			memcpy(r->buf + tail, p, take);
			r->len += take;
			p += take;
			off += take;
		}
	}
	return 0;
}

int vsock_ring_iov(const struct vsock_ring *r, struct iovec iov[2])
{
	if (!r->len)
		return 0;
	uint32_t first = MIN(r->len, VSOCK_BUF_ALLOC - r->head);
	iov[0] = (struct iovec){ .iov_base = r->buf + r->head, .iov_len = first };
	if (first == r->len)
		return 1;
	iov[1] = (struct iovec){ .iov_base = r->buf, .iov_len = r->len - first };
	return 2;
}

void vsock_ring_consume(struct vsock_ring *r, uint32_t n)
{
	n = MIN(n, r->len);
	r->head = (r->head + n) % VSOCK_BUF_ALLOC;
	r->len -= n;
	if (!r->len)
		vsock_ring_free(r);
}

void vsock_ring_free(struct vsock_ring *r)
{
	free(r->buf);
	*r = (struct vsock_ring){ 0 };
}
