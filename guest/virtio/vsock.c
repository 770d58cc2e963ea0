/* virtio-vsock (virtio 1.2, 5.10): the device side of the driver. Receive
 * buffers are posted once and reposted after their packet is handled;
 * transmit slots are recycled from the used ring; the event queue keeps a
 * few buffers for transport-reset events (5.10.6.6). */
#include "page_alloc.h"
#include "printf.h"
#include "string.h"
#include "virtio/vsock.h"

#define RXQ 0
#define TXQ 1
#define EVQ 2
#define QUEUE_SIZE 128
#define SLOT (sizeof(struct vsock_hdr) + VSOCK_PKT_MAX + 20) /* 4160: 64-byte multiple */
#define EV_BUFS 4
#define EVENT_TRANSPORT_RESET 0

static struct vsock_dev vsock;

static void rx_post(struct vsock_dev *v, uint8_t *buf)
{
	struct vq_buf b = { (uint64_t)buf, SLOT, true };

	vq_add(&v->rxq, &b, 1, buf);
}

static void ev_post(struct vsock_dev *v, uint32_t *ev)
{
	struct vq_buf b = { (uint64_t)ev, sizeof(*ev), true };

	vq_add(&v->evq, &b, 1, ev);
}

static int alloc_buffers(struct vsock_dev *v)
{
	v->rx_bufs = mem_alloc_zeroed((uint64_t)v->rxq.size * SLOT, PAGE_SIZE);
	v->tx_bufs = mem_alloc_zeroed((uint64_t)v->txq.size * SLOT, PAGE_SIZE);
	v->tx_free = mem_alloc_zeroed(2ull * v->txq.size, 8);
	v->ev_bufs = mem_alloc_zeroed(sizeof(uint32_t) * EV_BUFS, 8);
	if (!v->rx_bufs || !v->tx_bufs || !v->tx_free || !v->ev_bufs)
		return -1;
	for (uint16_t i = 0; i < v->txq.size; i++)
		v->tx_free[i] = i;
	v->ntx_free = v->txq.size;
	for (int i = 0; i < EV_BUFS && i < v->evq.size; i++)
		ev_post(v, &v->ev_bufs[i]);
	return 0;
}

void vsock_post_rx(struct vsock_dev *v)
{
	if (v->rx_posted)
		return;
	for (uint16_t i = 0; i < v->rxq.size; i++)
		rx_post(v, v->rx_bufs + (uint64_t)i * SLOT);
	v->rx_posted = true;
	vq_kick(&v->rxq);
}

static int start(struct vsock_dev *v, struct virtio_dev *d, bool post_rx)
{
	*v = (struct vsock_dev){ .vdev = d };
	if (virtio_start(d, BIT(VIRTIO_VSOCK_F_STREAM)))
		return -1;
	v->guest_cid = virtio_config_read(d, 0, 8);
	if (vq_setup(&v->rxq, d, RXQ, QUEUE_SIZE) || vq_setup(&v->txq, d, TXQ, QUEUE_SIZE) ||
	    vq_setup(&v->evq, d, EVQ, EV_BUFS) || alloc_buffers(v)) {
		virtio_fail(d, "queue setup failed");
		return -1;
	}
	virtio_driver_ok(d);
	if (post_rx)
		vsock_post_rx(v);
	vq_kick(&v->evq);
	d->driver = v;
	return 0;
}

struct vsock_dev *vsock_restart(const char *cmd, bool post_rx)
{
	struct virtio_dev *d = virtio_find(VIRTIO_ID_VSOCK, 0);

	if (!d) {
		printf("%s: no virtio-vsock device\n", cmd);
		return 0;
	}
	if (start(&vsock, d, post_rx)) {
		printf("%s: virtio-vsock did not start\n", cmd);
		return 0;
	}
	return &vsock;
}

struct vsock_dev *vsock_open(const char *cmd)
{
	struct virtio_dev *d = virtio_find(VIRTIO_ID_VSOCK, 0);

	if (d && d->started && d->driver == &vsock)
		return &vsock;
	return vsock_restart(cmd, true);
}

/* Packets from vsock_send_raw are the caller's buffers, not slots. */
static void reclaim(struct vsock_dev *v)
{
	uint8_t *slot;

	while ((slot = vq_get_used(&v->txq, 0)))
		if (slot >= v->tx_bufs && slot < v->tx_bufs + (uint64_t)v->txq.size * SLOT)
			v->tx_free[v->ntx_free++] = (uint16_t)((slot - v->tx_bufs) / SLOT);
}

bool vsock_can_send(struct vsock_dev *v)
{
	if (!v->ntx_free)
		reclaim(v);
	return v->ntx_free > 0;
}

bool vsock_send(struct vsock_dev *v, struct vsock_hdr *h, const void *payload, uint32_t len)
{
	uint8_t *slot;
	struct vq_buf b;

	if (len > VSOCK_PKT_MAX || !vsock_can_send(v))
		return false;
	slot = v->tx_bufs + (uint64_t)v->tx_free[--v->ntx_free] * SLOT;
	h->len = len;
	memcpy(slot, h, sizeof(*h));
	if (len)
		memcpy(slot + sizeof(*h), payload, len);
	b = (struct vq_buf){ (uint64_t)slot, sizeof(*h) + len, false };
	if (vq_add(&v->txq, &b, 1, slot)) { /* raw packets hold ring entries too */
		v->ntx_free++;
		return false;
	}
	v->tx_pending = true;
	v->tx_pkts++;
	return true;
}

bool vsock_send_raw(struct vsock_dev *v, const void *pkt, uint32_t len)
{
	struct vq_buf b = { (uint64_t)pkt, len, false };

	if (vq_add(&v->txq, &b, 1, (void *)pkt))
		return false;
	v->tx_pending = true;
	v->tx_pkts++;
	return true;
}

void vsock_kick(struct vsock_dev *v)
{
	if (v->tx_pending)
		vq_kick(&v->txq);
	v->tx_pending = false;
}

static void events(struct vsock_dev *v)
{
	uint32_t *ev;
	int n = 0;

	while ((ev = vq_get_used(&v->evq, 0))) {
		if (*ev == EVENT_TRANSPORT_RESET)
			v->resets++;
		ev_post(v, ev);
		n++;
	}
	if (n)
		vq_kick(&v->evq);
}

int vsock_poll(struct vsock_dev *v, vsock_rx_fn fn, void *ctx)
{
	uint8_t *buf;
	uint32_t len;
	int n = 0;

	while ((buf = vq_get_used(&v->rxq, &len))) {
		const struct vsock_hdr *h = (const void *)buf;

		if (len < sizeof(*h) || h->len > len - sizeof(*h)) {
			v->rx_dropped++;
		} else {
			v->rx_pkts++;
			fn(ctx, h, buf + sizeof(*h));
		}
		rx_post(v, buf);
		n++;
	}
	if (n)
		vq_kick(&v->rxq);
	events(v);
	vsock_kick(v);
	reclaim(v);
	return n;
}

void vsock_idle(struct vsock_dev *v)
{
	struct virtq *vqs[] = { &v->rxq, &v->txq, &v->evq };

	vq_idle(vqs, 3);
}
