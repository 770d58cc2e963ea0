/* virtio-net (virtio 1.2, 5.1). Receive buffers are posted once and
 * re-posted after each frame is handled; transmit slots are recycled from
 * the used ring. */
#include "cpu.h"
#include "page_alloc.h"
#include "printf.h"
#include "string.h"
#include "virtio/net.h"

#define QUEUE_SIZE 256
#define RXQ 0
#define TXQ 1

static struct net_dev net;

static void rx_post(struct net_dev *n, uint8_t *buf)
{
	struct vq_buf b = { (uint64_t)buf, NET_BUF_SIZE, true };

	vq_add(&n->rxq, &b, 1, buf);
}

static int alloc_buffers(struct net_dev *n)
{
	n->rx_bufs = mem_alloc_zeroed((uint64_t)n->rxq.size * NET_BUF_SIZE, PAGE_SIZE);
	n->tx_bufs = mem_alloc_zeroed((uint64_t)n->txq.size * NET_BUF_SIZE, PAGE_SIZE);
	n->tx_free = mem_alloc_zeroed(2ull * n->txq.size, 8);
	if (!n->rx_bufs || !n->tx_bufs || !n->tx_free)
		return -1;
	for (uint16_t i = 0; i < n->rxq.size; i++)
		rx_post(n, n->rx_bufs + (uint64_t)i * NET_BUF_SIZE);
	for (uint16_t i = 0; i < n->txq.size; i++)
		n->tx_free[i] = i;
	n->ntx_free = n->txq.size;
	return 0;
}

/* 5.1.4: mac is read when offered; otherwise a random locally administered
 * address (5.1.5: the driver SHOULD generate one). */
static void read_mac(struct net_dev *n)
{
	uint64_t r = rdtsc() * 0x9e3779b97f4a7c15ull;

	if (virtio_has(n->vdev, VIRTIO_NET_F_MAC)) {
		virtio_config_read_bytes(n->vdev, 0, n->mac, 6);
		return;
	}
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)(r >> (8 * i));
	n->mac[0] = (n->mac[0] & 0xfe) | 0x02;
}

static int start(struct net_dev *n, struct virtio_dev *d)
{
	uint64_t wanted = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
			  BIT(VIRTIO_NET_F_STATUS);

	n->vdev = d;
	if (virtio_start(d, wanted))
		return -1;
	read_mac(n);
	if (vq_setup(&n->rxq, d, RXQ, QUEUE_SIZE) || vq_setup(&n->txq, d, TXQ, QUEUE_SIZE) ||
	    alloc_buffers(n)) {
		virtio_fail(d, "queue setup failed");
		return -1;
	}
	virtio_driver_ok(d);
	vq_kick(&n->rxq);
	d->driver = n;
	return 0;
}

struct net_dev *net_open(const char *cmd)
{
	struct virtio_dev *d = virtio_find(VIRTIO_ID_NET, 0);

	if (!d) {
		printf("%s: no virtio-net device\n", cmd);
		return 0;
	}
	if (d->started && d->driver == &net)
		return &net;
	if (start(&net, d)) {
		printf("%s: virtio-net did not start\n", cmd);
		return 0;
	}
	return &net;
}

bool net_link_up(struct net_dev *n)
{
	if (!virtio_has(n->vdev, VIRTIO_NET_F_STATUS))
		return true;
	return virtio_config_read(n->vdev, 6, 2) & VIRTIO_NET_S_LINK_UP;
}

void net_tx_reclaim(struct net_dev *n)
{
	uint8_t *slot;

	while ((slot = vq_get_used(&n->txq, 0)))
		n->tx_free[n->ntx_free++] = (uint16_t)((slot - n->tx_bufs) / NET_BUF_SIZE);
}

uint8_t *net_tx_buf(struct net_dev *n)
{
	uint8_t *slot;

	if (!n->ntx_free)
		net_tx_reclaim(n);
	if (!n->ntx_free)
		return 0;
	slot = n->tx_bufs + (uint64_t)n->tx_free[n->ntx_free - 1] * NET_BUF_SIZE;
	return slot + NET_HDR_LEN;
}

/* 5.1.6.2: no offloads asked for, so the header is all zeros. */
void net_tx_queue(struct net_dev *n, uint8_t *frame, uint32_t len)
{
	uint8_t *slot = frame - NET_HDR_LEN;
	struct vq_buf b = { (uint64_t)slot, NET_HDR_LEN + len, false };

	memset(slot, 0, NET_HDR_LEN);
	n->ntx_free--;
	vq_add(&n->txq, &b, 1, slot);
	n->tx_pending = true;
	n->tx_frames++;
	n->tx_bytes += len;
}

void net_tx_kick(struct net_dev *n)
{
	if (n->tx_pending)
		vq_kick(&n->txq);
	n->tx_pending = false;
}

/* 5.1.6.4: with 2 KiB buffers a frame takes one buffer; a frame the device
 * spread over several (num_buffers > 1) is dropped, its buffers reposted. */
static void rx_one(struct net_dev *n, uint8_t *buf, uint32_t len, net_rx_fn fn, void *ctx)
{
	uint16_t num_buffers = buf[10] | buf[11] << 8;

	if (len <= NET_HDR_LEN || len > NET_BUF_SIZE || num_buffers > 1) {
		n->rx_dropped++;
		for (uint16_t i = 1; i < num_buffers; i++) {
			uint8_t *extra = vq_get_used(&n->rxq, 0);

			if (extra)
				rx_post(n, extra);
		}
	} else {
		n->rx_frames++;
		n->rx_bytes += len - NET_HDR_LEN;
		fn(ctx, buf + NET_HDR_LEN, len - NET_HDR_LEN);
	}
	rx_post(n, buf);
}

int net_poll(struct net_dev *n, net_rx_fn fn, void *ctx)
{
	uint8_t *buf;
	uint32_t len;
	int frames = 0;

	while ((buf = vq_get_used(&n->rxq, &len))) {
		rx_one(n, buf, len, fn, ctx);
		frames++;
	}
	if (frames)
		vq_kick(&n->rxq);
	net_tx_kick(n);
	net_tx_reclaim(n);
	return frames;
}

void net_idle(struct net_dev *n)
{
	struct virtq *vqs[] = { &n->rxq };

	vq_idle(vqs, 1);
}
