/* virtio-rng (virtio 1.2, 5.4): each request is one writable buffer; the
 * device may write fewer bytes than asked (the used length says how many). */
#include "printf.h"
#include "string.h"
#include "virtio/rng.h"
#include "virtio/virtqueue.h"

#define QUEUE_SIZE 64
#define PIECE 4096

static struct virtq rq;

static int start(struct virtio_dev *d)
{
	if (virtio_start(d, 0))
		return -1;
	if (vq_setup(&rq, d, 0, QUEUE_SIZE)) {
		virtio_fail(d, "request queue setup failed");
		return -1;
	}
	virtio_driver_ok(d);
	d->driver = &rq;
	return 0;
}

/* Packs the short pieces' bytes together at the front of buf. */
static uint32_t compact(uint8_t *buf, const uint32_t *got, uint32_t pieces)
{
	uint32_t at = 0;

	for (uint32_t i = 0; i < pieces; i++) {
		memmove(buf + at, buf + (uint64_t)i * PIECE, got[i]);
		at += got[i];
	}
	return at;
}

int64_t rng_read(void *buf, uint32_t len, uint64_t timeout_us, const char *cmd)
{
	static uint32_t got[QUEUE_SIZE];
	struct virtio_dev *d = virtio_find(VIRTIO_ID_RNG, 0);
	uint32_t pieces = (len + PIECE - 1) / PIECE;
	uint8_t *p;
	uint32_t n;

	if (!d || (!(d->started && d->driver == &rq) && start(d))) {
		printf("%s: no virtio-rng device%s\n", cmd, d ? " that starts" : "");
		return -1;
	}
	if (pieces > rq.size)
		pieces = rq.size;
	for (uint32_t i = 0; i < pieces; i++) {
		uint32_t off = i * PIECE, l = len - off < PIECE ? len - off : PIECE;
		struct vq_buf b = { (uint64_t)buf + off, l, true };

		got[i] = 0;
		vq_add(&rq, &b, 1, (uint8_t *)buf + off);
	}
	vq_kick(&rq);
	while (vq_in_flight(&rq) && vq_wait_used(&rq, timeout_us))
		while ((p = vq_get_used(&rq, &n)))
			got[(p - (uint8_t *)buf) / PIECE] = n;
	if (vq_in_flight(&rq)) /* not returned: the buffers stay the device's */
		return -1;
	return compact(buf, got, pieces);
}
