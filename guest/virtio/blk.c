/* virtio-blk (virtio 1.2, 5.2). A request is a chain: header (readable),
 * data segments (readable for OUT, writable for IN), status byte (writable);
 * with indirect descriptors it takes one ring slot whatever its length. */
#include "printf.h"
#include "virtio/blk.h"

#define MAX_DISKS 8
#define QUEUE_SIZE 256
#define MAX_REQUEST_BYTES (1u << 20)
#define REQUEST_TIMEOUT_US 30000000ull

static struct blk_dev disks[MAX_DISKS];

static void read_limits(struct blk_dev *b)
{
	struct virtio_dev *d = b->vdev;
	uint32_t seg_max = 0;

	b->capacity = virtio_config_read(d, 0, 8);
	b->size_max = MAX_REQUEST_BYTES;
	if (virtio_has(d, VIRTIO_BLK_F_SIZE_MAX)) {
		uint32_t s = virtio_config_read(d, 8, 4);

		if (s >= 4096 && s < b->size_max)
			b->size_max = s & ~4095u;
	}
	if (virtio_has(d, VIRTIO_BLK_F_SEG_MAX))
		seg_max = virtio_config_read(d, 12, 4);
	/* Header and status take two buffers of an indirect table. */
	b->max_segs = VQ_INDIRECT_MAX - 2;
	if (seg_max && seg_max < b->max_segs)
		b->max_segs = seg_max;
	b->blk_size = virtio_has(d, VIRTIO_BLK_F_BLK_SIZE) ? virtio_config_read(d, 20, 4) : 512;
	if (virtio_has(d, VIRTIO_BLK_F_DISCARD)) {
		b->max_discard_sectors = virtio_config_read(d, 36, 4);
		b->max_discard_seg = virtio_config_read(d, 40, 4);
	}
	b->read_only = virtio_has(d, VIRTIO_BLK_F_RO);
}

static int start(struct blk_dev *b, struct virtio_dev *d)
{
	uint64_t wanted = BIT(VIRTIO_BLK_F_SIZE_MAX) | BIT(VIRTIO_BLK_F_SEG_MAX) |
			  BIT(VIRTIO_BLK_F_RO) | BIT(VIRTIO_BLK_F_BLK_SIZE) |
			  BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_DISCARD) |
			  BIT(VIRTIO_F_INDIRECT_DESC);

	b->vdev = d;
	if (virtio_start(d, wanted))
		return -1;
	read_limits(b);
	if (vq_setup(&b->vq, d, 0, QUEUE_SIZE)) {
		virtio_fail(d, "request queue setup failed");
		return -1;
	}
	virtio_driver_ok(d);
	d->driver = b;
	return 0;
}

struct blk_dev *blk_open(int disk, const char *cmd)
{
	struct virtio_dev *d = disk >= 0 && disk < MAX_DISKS ? virtio_find(VIRTIO_ID_BLOCK, disk) : 0;
	struct blk_dev *b = &disks[disk < 0 || disk >= MAX_DISKS ? 0 : disk];

	if (!d) {
		printf("%s: no virtio-blk disk %d\n", cmd, disk);
		return 0;
	}
	if (d->started && d->driver == b) {
		/* The host may have swapped the image (PATCH /drives): its size is news. */
		b->capacity = virtio_config_read(d, 0, 8);
		return b;
	}
	b->disk = disk;
	if (start(b, d)) {
		printf("%s: disk %d did not start\n", cmd, disk);
		return 0;
	}
	return b;
}

uint32_t blk_max_bytes(const struct blk_dev *b)
{
	uint64_t max = (uint64_t)b->size_max * b->max_segs;

	if (!b->vq.indirect && max > (uint64_t)b->size_max * (b->vq.size - 2))
		max = (uint64_t)b->size_max * (b->vq.size - 2);
	return max > MAX_REQUEST_BYTES ? MAX_REQUEST_BYTES : (uint32_t)max;
}

void blk_req_init(struct blk_req *r, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	r->hdr.type = type;
	r->hdr.reserved = 0;
	r->hdr.sector = sector;
	r->data = data;
	r->len = len;
	r->status = BLK_STATUS_PENDING;
}

/* Data buffers are writable for reads and GET_ID, readable otherwise. */
static bool data_is_written(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

int blk_submit(struct blk_dev *b, struct blk_req *r)
{
	struct vq_buf bufs[VQ_INDIRECT_MAX];
	bool w = data_is_written(r->hdr.type);
	int n = 0;

	bufs[n++] = (struct vq_buf){ (uint64_t)&r->hdr, sizeof(r->hdr), false };
	for (uint32_t off = 0; off < r->len && n <= (int)b->max_segs; off += b->size_max) {
		uint32_t len = r->len - off < b->size_max ? r->len - off : b->size_max;

		bufs[n++] = (struct vq_buf){ (uint64_t)r->data + off, len, w };
	}
	bufs[n++] = (struct vq_buf){ (uint64_t)&r->status, 1, true };
	r->status = BLK_STATUS_PENDING;
	return vq_add(&b->vq, bufs, n, r);
}

bool blk_kick(struct blk_dev *b)
{
	return vq_kick(&b->vq);
}

struct blk_req *blk_poll(struct blk_dev *b)
{
	return vq_get_used(&b->vq, 0);
}

struct blk_req *blk_wait(struct blk_dev *b, uint64_t timeout_us)
{
	if (!vq_wait_used(&b->vq, timeout_us))
		return 0;
	return blk_poll(b);
}

int blk_do(struct blk_dev *b, struct blk_req *r)
{
	if (blk_submit(b, r))
		return -1;
	blk_kick(b);
	while (r->status == BLK_STATUS_PENDING || vq_in_flight(&b->vq))
		if (!blk_wait(b, REQUEST_TIMEOUT_US))
			return -1;
	return r->status;
}
