/* virtio-net (virtio 1.2, 5.1) over a Linux tap. Runs on the event loop: the guest's
 * transmit notifications arrive as ioeventfds, the tap wakes us when frames come in,
 * and interrupts leave through the irqfd, once per batch. The tap speaks the same
 * 12-byte virtio_net_hdr as the guest, so offloads pass through unchanged.
 *
 * Every chain is guest-controlled: transmit chains are checked (direction, header,
 * size, offloads the guest may use) before a byte reaches the tap; receive chains
 * must be device-writable and hold at least the header. A bad chain costs that one
 * frame, never the device. Work per wakeup is bounded in both directions, and when
 * the guest has posted no receive buffers the tap is not polled at all. */
#include "devices/virtio_net.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "snapshot/virtio_section.h"
#include "common/util.h"
#include "devices/rate_limiter.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vm.h"

_Static_assert(sizeof(struct virtio_net_hdr) == TAP_VNET_HDR_LEN, "virtio_net_hdr (5.1.6)");

#define NET_QUEUE_SIZE 256
#define NET_HDR_LEN TAP_VNET_HDR_LEN
#define NET_ETH_HLEN 14
/* The largest frame a tap hands out or takes with TSO: 64 KiB of IP plus Ethernet
 * and VLAN headers (Firecracker's figure), after our header. */
#define NET_MAX_FRAME 65550
#define NET_BUF_SIZE (NET_HDR_LEN + NET_MAX_FRAME)
#define NET_TX_BUDGET 256 /* frames per wakeup, so one busy guest cannot starve the loop */
#define NET_RX_BUDGET 256
#define NET_IOV_MAX 1024 /* UIO_MAXIOV */
#define NET_CONFIG_SIZE 12 /* mac, status, max_virtqueue_pairs, mtu (5.1.4) */
#define VIRTIO_NET_S_LINK_UP 1

/* A rate limiter and the one-shot timer that wakes the blocked direction. */
struct throttle {
	struct rate_limiter rl;
	bool limited; /* false: never ask the limiter */
	bool blocked; /* waiting for the timer */
	int timer_fd;
};

/* A frame on its way from the tap into the guest's receive buffers. With mergeable
 * buffers (5.1.6.3.2) it may take several chains; they are held until the frame is
 * complete, then returned together so the driver sees them consecutively. */
struct net_rx {
	uint8_t *frame;
	uint32_t len; /* 0: no frame pending */
	uint32_t off; /* bytes copied into held chains */
	bool charged; /* the rate limiter already took it */
	bool waiting; /* no guest buffers: the tap is not polled until the guest posts */
	uint16_t nheld;
	uint16_t heads[VIRTQ_MAX_SIZE];
	uint32_t lens[VIRTQ_MAX_SIZE];
	struct virtq_chain first; /* carries the header (num_buffers is written last) */
	struct virtq_chain next;
};

struct virtio_net {
	struct virtio_device *dev; /* set when attached */
	struct tap tap;
	char id[64]; /* iface_id, for logs */
	uint8_t mac[6];
	uint16_t mtu; /* offered with VIRTIO_NET_F_MTU when not 0 */
	bool active;	  /* DRIVER_OK seen and not reset since */
	bool mergeable;	  /* VIRTIO_NET_F_MRG_RXBUF negotiated */
	unsigned offloads; /* TAP_OFFLOAD_*: what the driver takes on receive, and the tap makes */
	bool polling;	  /* EPOLLIN interest on the tap */
	bool tap_gone;	  /* EOF or hang-up: the tap is out of the loop for good */
	bool read_error_logged;
	bool tx_pending;  /* tx_chain is popped and checked, waiting for the limiter */
	struct throttle rx_limit, tx_limit;
	struct net_rx rx;
	struct virtio_net_hdr tx_hdr; /* our copy of tx_chain's header */
	struct virtq_chain tx_chain;
	struct iovec tx_iov[NET_IOV_MAX];
	struct virtio_net_stats stats;
};

static bool net_running(const struct virtio_net *net)
{
	return net->active && virtio_device_running(net->dev);
}

/* The tap is polled only while frames can go somewhere: not while the guest has
 * posted no buffers, the limiter holds us back, or the device is stopped. */
static void rx_set_polling(struct virtio_net *net)
{
	bool want = net_running(net) && !net->tap_gone && !net->rx.waiting &&
		    !net->rx_limit.blocked;
	if (want == net->polling)
		return;
	if (event_loop_modify(net->dev->vm->loop, net->tap.fd, want ? EPOLLIN : 0) == 0)
		net->polling = want;
}

/* ---- Rate limiting ---- */

static int throttle_init(struct throttle *t, const struct rate_limiter_config *cfg)
{
	rate_limiter_init(&t->rl, cfg, timings_now());
	t->limited = !rate_limiter_is_unlimited(&t->rl);
	t->blocked = false;
	t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	return t->timer_fd < 0 ? -errno : 0;
}

/* Fires the timer after ns (at least 1 µs: a zero value would disarm it). */
static void throttle_arm(struct throttle *t, uint64_t ns)
{
	ns = MAX(ns, 1000);
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ULL),
						.tv_nsec = (long)(ns % 1000000000ULL) } };
	if (timerfd_settime(t->timer_fd, 0, &its, NULL) < 0)
		log_warn("cannot arm the rate limiter timer: %m");
}

/* One operation of `bytes`: true if allowed; otherwise the timer is armed for when
 * tokens are back, and the caller parks its work until then. */
static bool throttle_take(struct throttle *t, uint64_t bytes, uint64_t *throttled)
{
	if (!t->limited)
		return true;
	if (t->blocked)
		return false;
	uint64_t now = timings_now();
	if (rate_limiter_consume(&t->rl, bytes, now))
		return true;
	t->blocked = true;
	(*throttled)++;
	throttle_arm(t, rate_limiter_wait_ns(&t->rl, bytes, now));
	return false;
}

/* ---- Transmit (5.1.6.2): guest -> tap ---- */

/* 5.1.6.2.1: the driver may only use the offloads it negotiated; anything else in the
 * header is refused here rather than handed to the host's stack. */
static bool tx_hdr_allowed(const struct virtio_device *dev, const struct virtio_net_hdr *h)
{
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !virtio_has_feature(dev, VIRTIO_NET_F_CSUM))
		return false;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return virtio_has_feature(dev, VIRTIO_NET_F_HOST_TSO4);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return virtio_has_feature(dev, VIRTIO_NET_F_HOST_TSO6);
	default:
		return false; /* UDP, ECN: not offered */
	}
}

/* A transmit chain is device-readable only (2.7.4.2), a header and at least an
 * Ethernet header, and no larger than a tap takes. Copies the header into hdr. */
static bool tx_chain_ok(const struct virtio_device *dev, const struct virtq_chain *c,
			struct virtio_net_hdr *hdr)
{
	if (c->nwrite || c->read_len < NET_HDR_LEN + NET_ETH_HLEN || c->read_len > NET_BUF_SIZE)
		return false;
	virtq_chain_read(c, 0, hdr, sizeof(*hdr));
	return tx_hdr_allowed(dev, hdr);
}

/* The iovec for writev: our checked copy of the header, then the guest's frame bytes
 * in place. Returns the entry count, or -1 when it would exceed UIO_MAXIOV. */
static int tx_build_iov(struct virtio_net *net)
{
	const struct virtq_chain *c = &net->tx_chain;
	struct iovec *iov = net->tx_iov;
	int n = 0;
	uint32_t skip = NET_HDR_LEN;
	iov[n++] = (struct iovec){ .iov_base = &net->tx_hdr, .iov_len = NET_HDR_LEN };
	for (uint32_t i = 0; i < c->nread; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (skip >= b->len) {
			skip -= b->len;
			continue;
		}
		if (n == NET_IOV_MAX)
			return -1;
		iov[n++] = (struct iovec){ .iov_base = b->hva + skip, .iov_len = b->len - skip };
		skip = 0;
	}
	return n;
}

/* Writes the pending frame to the tap and returns its chain (used length 0: the
 * device wrote nothing). A frame the tap refuses is dropped and counted. */
static void tx_send(struct virtio_net *net)
{
	struct virtq *vq = &net->dev->queues[VIRTIO_NET_TXQ];
	int n = tx_build_iov(net);
	ssize_t w = -1;
	if (n < 0)
		net->stats.tx_errors++;
	else
		do
			w = writev(net->tap.fd, net->tx_iov, n);
		while (w < 0 && errno == EINTR);
	if (w >= 0) {
		net->stats.tx_packets++;
		net->stats.tx_bytes += net->tx_chain.read_len - NET_HDR_LEN;
	} else if (n >= 0) {
		net->stats.tx_dropped++;
		log_debug("%s: tap %s refused a frame: %m", net->id, net->tap.name);
	}
	virtq_push(vq, net->tx_chain.head, 0);
	net->tx_pending = false;
}

/* Takes the next chain into tx_chain: 1 when one is ready to send, 2 when it was
 * malformed (returned at once, counted, *pushed set), 0 when the queue is empty
 * (notifications re-enabled), -1 when the ring is broken. */
static int tx_next(struct virtio_net *net, bool *pushed)
{
	struct virtq *vq = &net->dev->queues[VIRTIO_NET_TXQ];
	for (;;) {
		int r = virtio_pop(net->dev, vq, &net->tx_chain, true, "transmit queue broken");
		if (r == 0)
			return 0;
		if (r == -EIO)
			return -1;
		if (r == 1 && tx_chain_ok(net->dev, &net->tx_chain, &net->tx_hdr))
			return 1;
		net->stats.tx_errors++;
		virtq_push(vq, net->tx_chain.head, 0);
		*pushed = true;
		return 2;
	}
}

/* Sends up to NET_TX_BUDGET frames; when the budget runs out the tx timer brings us
 * back right after the loop's other work. */
static void tx_process(struct virtio_net *net)
{
	bool pushed = false;
	unsigned done = 0;
	while (done < NET_TX_BUDGET) {
		if (!net->tx_pending) {
			int r = tx_next(net, &pushed);
			if (r <= 0)
				break;
			done++;
			if (r == 2)
				continue;
			net->tx_pending = true;
		}
		uint64_t bytes = net->tx_chain.read_len - NET_HDR_LEN;
		if (!throttle_take(&net->tx_limit, bytes, &net->stats.tx_throttled))
			break;
		tx_send(net);
		pushed = true;
	}
	if (pushed)
		virtio_notify_used(net->dev, VIRTIO_NET_TXQ);
	if (!net_running(net))
		rx_set_polling(net); /* the ring broke: the tap rests too */
	else if (done >= NET_TX_BUDGET && !net->tx_limit.blocked)
		throttle_arm(&net->tx_limit, 0);
}

/* ---- Receive (5.1.6.3, 5.1.6.4): tap -> guest ---- */

static void rx_forget_frame(struct net_rx *rx)
{
	rx->len = rx->off = 0;
	rx->nheld = 0;
	rx->charged = false;
}

/* The frame cannot be delivered: its chains go back empty and it is counted. */
static void rx_drop_frame(struct virtio_net *net)
{
	struct virtq *vq = &net->dev->queues[VIRTIO_NET_RXQ];
	for (uint16_t i = 0; i < net->rx.nheld; i++)
		virtq_push(vq, net->rx.heads[i], 0);
	net->stats.rx_dropped++;
	rx_forget_frame(&net->rx);
}

/* 5.1.6.4: num_buffers in the first chain's header, then every chain of the frame. */
static void rx_complete(struct virtio_net *net)
{
	struct net_rx *rx = &net->rx;
	struct virtq *vq = &net->dev->queues[VIRTIO_NET_RXQ];
	uint16_t num_buffers = rx->nheld; /* little-endian on x86 */
	virtq_chain_write(&rx->first, offsetof(struct virtio_net_hdr, num_buffers), &num_buffers,
			  sizeof(num_buffers));
	for (uint16_t i = 0; i < rx->nheld; i++)
		virtq_push(vq, rx->heads[i], rx->lens[i]);
	net->stats.rx_packets++;
	net->stats.rx_bytes += rx->len - NET_HDR_LEN;
	rx_forget_frame(rx);
}

/* 5.1.6.3.1: receive buffers are device-writable and each holds at least the header. */
static bool rx_chain_ok(const struct virtq_chain *c)
{
	return c->nread == 0 && c->write_len >= NET_HDR_LEN;
}

static void rx_fill(struct net_rx *rx, const struct virtq_chain *c)
{
	uint32_t n = MIN(c->write_len, rx->len - rx->off);
	virtq_chain_write(c, 0, rx->frame + rx->off, n);
	rx->off += n;
	rx->heads[rx->nheld] = c->head;
	rx->lens[rx->nheld] = n;
	rx->nheld++;
}

enum rx_result { RX_DELIVERED, RX_NO_BUFFERS, RX_BROKEN };

/* Copies the pending frame into as many chains as it needs (one without mergeable
 * buffers). Chains already filled stay held across calls while the guest posts more. */
static enum rx_result rx_deliver(struct virtio_net *net, bool *pushed)
{
	struct net_rx *rx = &net->rx;
	struct virtq *vq = &net->dev->queues[VIRTIO_NET_RXQ];
	while (rx->off < rx->len) {
		struct virtq_chain *c = rx->nheld ? &rx->next : &rx->first;
		int r = virtio_pop(net->dev, vq, c, true, "receive queue broken");
		if (r == 0) {
			rx->waiting = true;
			return RX_NO_BUFFERS;
		}
		if (r == -EIO)
			return RX_BROKEN;
		*pushed = true;
		if (r < 0 || !rx_chain_ok(c)) {
			net->stats.rx_errors++;
			virtq_push(vq, c->head, 0);
			continue;
		}
		rx_fill(rx, c);
		if (rx->off < rx->len && (!net->mergeable || rx->nheld >= vq->size)) {
			rx_drop_frame(net); /* it cannot fit what the guest can post */
			return RX_DELIVERED;
		}
	}
	rx_complete(net);
	*pushed = true;
	return RX_DELIVERED;
}

/* 5.1.6.4.1: the driver is handed no offload it did not negotiate (offloads: what
 * its activation gave the tap): no partial checksum without GUEST_CSUM, no GSO type
 * without its GUEST_TSO feature (UDP and ECN are not offered). The tap builds each
 * frame for the offloads set when it was queued, which may be those of the driver
 * before a reset. */
static bool rx_hdr_allowed(unsigned offloads, const struct virtio_net_hdr *h)
{
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(offloads & TAP_OFFLOAD_CSUM))
		return false;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return offloads & TAP_OFFLOAD_TSO4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return offloads & TAP_OFFLOAD_TSO6;
	default:
		return false;
	}
}

/* The header of the frame just read: a segment or a partial checksum the driver did
 * not take cannot be fixed up here. */
static bool rx_frame_allowed(const struct virtio_net *net)
{
	struct virtio_net_hdr hdr;
	memcpy(&hdr, net->rx.frame, sizeof(hdr));
	return rx_hdr_allowed(net->offloads, &hdr);
}

enum rx_read_result { RX_READ_FRAME, RX_READ_SKIPPED, RX_READ_EMPTY };

/* The tap ended (a tap never does; a test's socket may): stop watching it. */
static void net_tap_gone(struct virtio_net *net)
{
	if (net->tap_gone)
		return;
	log_warn("%s: tap %s hung up; no more frames reach the guest", net->id, net->tap.name);
	net->tap_gone = true;
	net->polling = false;
	event_loop_remove(net->dev->vm->loop, net->tap.fd);
}

/* Reads the next frame from the tap into the bounce buffer. */
static enum rx_read_result rx_read(struct virtio_net *net)
{
	ssize_t n;
	do
		n = read(net->tap.fd, net->rx.frame, NET_BUF_SIZE);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return RX_READ_EMPTY;
	if (n == 0) {
		net_tap_gone(net);
		return RX_READ_EMPTY;
	}
	if (n < 0) {
		net->stats.rx_errors++;
		if (!net->read_error_logged)
			log_warn("%s: reading tap %s: %m", net->id, net->tap.name);
		net->read_error_logged = true;
		return RX_READ_EMPTY;
	}
	if (n < NET_HDR_LEN + NET_ETH_HLEN || !rx_frame_allowed(net)) {
		net->stats.rx_dropped++;
		return RX_READ_SKIPPED;
	}
	/* 5.1.6.4.1: without GUEST_CSUM, flags are zero (the tap may set DATA_VALID). */
	if (!(net->offloads & TAP_OFFLOAD_CSUM))
		net->rx.frame[offsetof(struct virtio_net_hdr, flags)] = 0;
	net->rx.len = (uint32_t)n;
	net->rx.off = 0;
	net->rx.charged = false;
	return RX_READ_FRAME;
}

/* Moves up to NET_RX_BUDGET frames from the tap into the guest; the tap stays
 * readable (level-triggered) when the budget runs out, so the loop comes back. */
static void rx_process(struct virtio_net *net)
{
	bool pushed = false;
	for (unsigned n = 0; n < NET_RX_BUDGET && !net->tap_gone; n++) {
		if (!net->rx.len) {
			enum rx_read_result r = rx_read(net);
			if (r == RX_READ_EMPTY)
				break;
			if (r == RX_READ_SKIPPED)
				continue;
		}
		if (!net->rx.charged) {
			if (!throttle_take(&net->rx_limit, net->rx.len - NET_HDR_LEN,
					   &net->stats.rx_throttled))
				break;
			net->rx.charged = true;
		}
		if (rx_deliver(net, &pushed) != RX_DELIVERED)
			break;
	}
	if (pushed)
		virtio_notify_used(net->dev, VIRTIO_NET_RXQ);
	rx_set_polling(net);
}

/* ---- Event loop callbacks: each takes the device lock, as the transport does ---- */

static void on_tap(void *opaque, uint32_t events)
{
	struct virtio_net *net = opaque;
	pthread_mutex_lock(&net->dev->lock);
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN))
		net_tap_gone(net);
	else if (net_running(net))
		rx_process(net);
	else
		rx_set_polling(net); /* reset or broken meanwhile: stop polling */
	pthread_mutex_unlock(&net->dev->lock);
}

static bool timer_expired(int fd)
{
	uint64_t expirations;
	return read(fd, &expirations, sizeof(expirations)) == sizeof(expirations);
}

static void on_rx_timer(void *opaque, uint32_t events)
{
	struct virtio_net *net = opaque;
	if (!timer_expired(net->rx_limit.timer_fd))
		return;
	pthread_mutex_lock(&net->dev->lock);
	net->rx_limit.blocked = false;
	if (net_running(net))
		rx_process(net);
	pthread_mutex_unlock(&net->dev->lock);
}

/* The tx timer: tokens are back, or the last wakeup's budget ran out. */
static void on_tx_timer(void *opaque, uint32_t events)
{
	struct virtio_net *net = opaque;
	if (!timer_expired(net->tx_limit.timer_fd))
		return;
	pthread_mutex_lock(&net->dev->lock);
	net->tx_limit.blocked = false;
	if (net_running(net))
		tx_process(net);
	pthread_mutex_unlock(&net->dev->lock);
}

/* Joins dev's event loop: the tap (not polled until the driver is ready) and the
 * two timers. */
static int net_attach(struct virtio_net *net, struct virtio_device *dev)
{
	struct event_loop *loop = dev->vm->loop;
	net->dev = dev;
	int err = event_loop_add(loop, net->tap.fd, 0, on_tap, net);
	if (!err)
		err = event_loop_add(loop, net->rx_limit.timer_fd, EPOLLIN, on_rx_timer, net);
	if (!err)
		err = event_loop_add(loop, net->tx_limit.timer_fd, EPOLLIN, on_tx_timer, net);
	if (err)
		log_error("%s: cannot watch tap %s: %s", net->id, net->tap.name, strerror(-err));
	return err;
}

/* ---- virtio device ops ---- */

static uint64_t net_features(struct virtio_device *dev)
{
	static const unsigned bits[] = {
		VIRTIO_NET_F_CSUM,	 VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_MAC,
		VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_HOST_TSO4,
		VIRTIO_NET_F_HOST_TSO6,	 VIRTIO_NET_F_MRG_RXBUF,  VIRTIO_NET_F_STATUS,
	};
	const struct virtio_net *net = dev->backend;
	uint64_t f = net->mtu ? 1ULL << VIRTIO_NET_F_MTU : 0; /* only when one was given */
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		f |= 1ULL << bits[i];
	return f;
}

/* 5.1.4: mac, status (link always up), max_virtqueue_pairs, mtu (read by the driver
 * only with VIRTIO_NET_F_MTU). */
static void net_read_config(struct virtio_device *dev, uint32_t offset, uint8_t *data,
			    uint32_t len)
{
	struct virtio_net *net = dev->backend;
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t status = VIRTIO_NET_S_LINK_UP, pairs = 1;
	memcpy(cfg, net->mac, 6);
	memcpy(cfg + 6, &status, 2);
	memcpy(cfg + 8, &pairs, 2);
	memcpy(cfg + 10, &net->mtu, 2);
	memcpy(data, cfg + offset, len); /* the transport checked offset + len */
}

/* The offloads the guest takes on receive (5.1.3.1: TSO needs GUEST_CSUM). */
static unsigned guest_offloads(const struct virtio_device *dev)
{
	if (!virtio_has_feature(dev, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	unsigned off = TAP_OFFLOAD_CSUM;
	if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_TSO4))
		off |= TAP_OFFLOAD_TSO4;
	if (virtio_has_feature(dev, VIRTIO_NET_F_GUEST_TSO6))
		off |= TAP_OFFLOAD_TSO6;
	return off;
}

static int net_activate(struct virtio_device *dev)
{
	struct virtio_net *net = dev->backend;
	if (!virtio_has_feature(dev, VIRTIO_F_VERSION_1)) {
		virtio_warn(dev, VIRTIO_LOG_DEVICE, "%s: the driver did not accept VERSION_1",
			    net->id);
		return -EINVAL; /* 5.1.6: our header layout is the 1.x one */
	}
	if (!net->dev) {
		int err = net_attach(net, dev);
		if (err)
			return err;
	}
	unsigned offloads = guest_offloads(dev);
	int err = tap_set_offload(&net->tap, offloads);
	if (err)
		return err;
	net->offloads = offloads;
	net->mergeable = virtio_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
	net->active = true;
	net->rx.waiting = false;
	rx_set_polling(net);
	return 0;
}

/* 2.4: a reset drops everything in flight; chains held for a frame are simply
 * forgotten (the rings are gone). The offloads were the old driver's (5.1.6.4.1): the
 * tap goes back to none, as when it was opened, so frames queued until the next
 * driver says what it takes carry none (a failure leaves rx_hdr_allowed to drop them). */
static void net_reset(struct virtio_device *dev)
{
	struct virtio_net *net = dev->backend;
	if (!net->dev)
		return;
	if (net->rx.len)
		net->stats.rx_dropped++;
	rx_forget_frame(&net->rx);
	net->rx.waiting = false;
	net->tx_pending = false;
	net->active = false;
	rx_set_polling(net);
	net->offloads = 0;
	tap_set_offload(&net->tap, 0);
}

static void net_queue_notify(struct virtio_device *dev, uint32_t q)
{
	struct virtio_net *net = dev->backend;
	if (!net->active)
		return;
	if (q == VIRTIO_NET_RXQ) {
		net->rx.waiting = false; /* the guest posted buffers */
		rx_process(net);
	} else if (q == VIRTIO_NET_TXQ) {
		tx_process(net);
	}
}

/* The VM is going away: release the backend with the device. */
static void net_destroy(struct virtio_device *dev)
{
	virtio_net_backend_free(dev->backend);
	dev->backend = NULL;
}

const struct virtio_device_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max_size = NET_QUEUE_SIZE,
	.config_size = NET_CONFIG_SIZE,
	.features = net_features,
	.read_config = net_read_config,
	.activate = net_activate,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
	.destroy = net_destroy,
};

/* ---- Construction ---- */

/* A stable, locally administered unicast MAC from the tap's name and iface_id
 * (FNV-1a), so a guest keeps its address across restarts and two guests on one host
 * differ (tap names are unique per host). */
static void derive_mac(const char *tap_name, const char *iface_id, uint8_t mac[6])
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *parts[] = { tap_name, "/", iface_id };
	for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
		for (const char *s = parts[p]; s && *s; s++)
			h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	mac[0] = 0x06; /* locally administered (bit 1), unicast (bit 0 clear) */
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

static int net_set_identity(struct virtio_net *net, const struct net_config *cfg)
{
	snprintf(net->id, sizeof(net->id), "virtio-net %s",
		 cfg->iface_id ? cfg->iface_id : net->tap.name);
	if (!cfg->has_guest_mac) {
		derive_mac(net->tap.name, cfg->iface_id, net->mac);
		return 0;
	}
	if (cfg->guest_mac[0] & 1) {
		log_error("%s: guest_mac must be a unicast address", net->id);
		return -EINVAL;
	}
	memcpy(net->mac, cfg->guest_mac, 6);
	return 0;
}

int virtio_net_backend_new(const struct net_config *cfg, const struct tap *tap,
			   struct virtio_net **out)
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	if (!net)
		return -ENOMEM;
	net->tap = *tap;
	net->mtu = cfg->mtu;
	net->rx_limit.timer_fd = net->tx_limit.timer_fd = -1;
	int err = net_set_identity(net, cfg);
	if (!err)
		err = (net->rx.frame = malloc(NET_BUF_SIZE)) ? 0 : -ENOMEM;
	if (!err)
		err = throttle_init(&net->rx_limit, &cfg->rx_rate_limiter);
	if (!err)
		err = throttle_init(&net->tx_limit, &cfg->tx_rate_limiter);
	if (err) {
		if (err != -EINVAL)
			log_error("%s: %s", net->id, strerror(-err));
		net->tap.fd = -1; /* the caller keeps the tap on failure */
		virtio_net_backend_free(net);
		return err;
	}
	*out = net;
	return 0;
}

void virtio_net_backend_free(struct virtio_net *net)
{
	if (!net)
		return;
	tap_close(&net->tap);
	if (net->rx_limit.timer_fd >= 0)
		close(net->rx_limit.timer_fd);
	if (net->tx_limit.timer_fd >= 0)
		close(net->tx_limit.timer_fd);
	free(net->rx.frame);
	free(net);
}

void virtio_net_get_stats(struct virtio_device *dev, struct virtio_net_stats *out)
{
	struct virtio_net *net = dev->backend;
	pthread_mutex_lock(&dev->lock);
	*out = net->stats;
	pthread_mutex_unlock(&dev->lock);
}

/* A new limiter; work it held back is retried by the timer right away. */
static void throttle_replace(struct throttle *t, const struct rate_limiter_config *cfg)
{
	rate_limiter_init(&t->rl, cfg, timings_now());
	t->limited = !rate_limiter_is_unlimited(&t->rl);
	if (t->blocked)
		throttle_arm(t, 0);
}

int virtio_net_set_rate_limiters(struct virtio_device *dev, const struct rate_limiter_config *rx,
				 const struct rate_limiter_config *tx)
{
	if (!dev || dev->ops != &virtio_net_ops)
		return -EINVAL;
	struct virtio_net *net = dev->backend;
	pthread_mutex_lock(&dev->lock);
	if (rx)
		throttle_replace(&net->rx_limit, rx);
	if (tx)
		throttle_replace(&net->tx_limit, tx);
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

static int open_tap(const struct net_config *cfg, struct tap *tap)
{
	if (cfg->tap_fd >= 0)
		return tap_adopt_fd(tap, cfg->tap_fd);
	if (!cfg->host_dev_name) {
		log_error("network interface %s: host_dev_name (the tap) is missing",
			  cfg->iface_id ? cfg->iface_id : "(unnamed)");
		return -EINVAL;
	}
	int err = tap_open(tap, cfg->host_dev_name);
	if (!err && cfg->mtu && (err = tap_set_mtu(tap, cfg->mtu)))
		tap_close(tap);
	return err;
}

int virtio_net_create(struct vm *vm, const struct net_config *cfg)
{
	struct tap tap;
	int err = open_tap(cfg, &tap);
	if (err)
		return err;
	struct virtio_net *net;
	err = virtio_net_backend_new(cfg, &tap, &net);
	if (err) {
		tap_close(&tap);
		return err;
	}
	struct virtio_device *dev;
	err = virtio_mmio_create(vm, &virtio_net_ops, net, &dev);
	if (err) {
		virtio_net_backend_free(net);
		return err;
	}
	err = net_attach(net, dev);
	if (err)
		return err; /* the device is on the bus now: it lives as long as the VM */
	const uint8_t *m = net->mac;
	log_info("%s: tap %s, mac %02x:%02x:%02x:%02x:%02x:%02x", net->id, net->tap.name, m[0],
		 m[1], m[2], m[3], m[4], m[5]);
	return 0;
}

/* ---- Snapshots ---- */

/* Nothing half done stays: a frame waiting for the limiter goes back to the tx ring
 * (the last chain taken, 2.7.13; the tx timer takes it again), and a received frame
 * not yet wholly delivered is dropped, as a network may drop it, its chains answered
 * empty (5.1.6.4: the driver drops a buffer shorter than a header). */
void virtio_net_quiesce(struct virtio_device *dev)
{
	struct virtio_net *net = dev->backend;
	pthread_mutex_lock(&dev->lock);
	if (net && net->dev == dev) {
		if (net->tx_pending)
			virtq_unpop(&dev->queues[VIRTIO_NET_TXQ], 1);
		net->tx_pending = false;
		if (net->rx.nheld) {
			rx_drop_frame(net);
			virtio_notify_used(dev, VIRTIO_NET_RXQ);
		} else if (net->rx.len) {
			net->stats.rx_dropped++;
			rx_forget_frame(&net->rx);
		}
	}
	pthread_mutex_unlock(&dev->lock);
}

/* After the transport: the MAC the guest knows, the rx and tx limiters' buckets. The
 * tap's offloads follow from the accepted features when the device is activated. */
void virtio_net_save(struct virtio_device *dev, struct snap_writer *w)
{
	struct virtio_net *net = dev->backend;
	snap_put_blob(w, net->mac, sizeof(net->mac));
	snap_put_rate_limiter(w, &net->rx_limit.rl);
	snap_put_rate_limiter(w, &net->tx_limit.rl);
}

int virtio_net_restore(struct virtio_device *dev, struct section_in *in)
{
	struct virtio_net *net = dev->backend;
	uint8_t mac[6];
	snap_get_blob(&in->c, mac, sizeof(mac));
	if (!in->c.failed && memcmp(mac, net->mac, sizeof(mac)) != 0)
		section_in_fail(in, "mac", "%02x:%02x:%02x:%02x:%02x:%02x differs from the "
				"configured interface's", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	section_in_rate_limiter(in, "rx_rate_limiter", &net->rx_limit.rl);
	section_in_rate_limiter(in, "tx_rate_limiter", &net->tx_limit.rl);
	return in->bad || in->c.failed ? -1 : 0;
}
