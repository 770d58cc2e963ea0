/* blk-info and blk-discard: what a virtio-blk disk says about itself, and
 * giving sectors back. */
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "virtio/blk.h"

#define MAX_DISCARD_SEGS 64
#define MIB (1ul << 20)

static void print_serial(struct blk_dev *b)
{
	static char id[BLK_ID_BYTES + 1];
	struct blk_req r;

	blk_req_init(&r, VIRTIO_BLK_T_GET_ID, 0, id, BLK_ID_BYTES);
	if (blk_do(b, &r) != VIRTIO_BLK_S_OK) {
		printf("blk-info: serial -\n");
		return;
	}
	id[BLK_ID_BYTES] = 0;
	for (int i = 0; id[i]; i++)
		if (id[i] < 0x21 || id[i] > 0x7e)
			id[i] = '?';
	printf("blk-info: serial %s\n", id[0] ? id : "-");
}

static int blk_info(int argc, char **argv)
{
	uint64_t disk;
	struct blk_dev *b;

	if (argc > 2 || arg_u64(argc, argv, 1, 0, 0, 7, &disk))
		return STATUS_USAGE;
	if (!(b = blk_open((int)disk, "blk-info")))
		return STATUS_FAILED;
	printf("blk-info: disk %lu\n", disk);
	printf("blk-info: capacity_sectors %lu\n", b->capacity);
	printf("blk-info: capacity_bytes %lu\n", b->capacity * BLK_SECTOR);
	printf("blk-info: read_only %d\n", b->read_only);
	print_serial(b);
	printf("blk-info: block_size %u\n", b->blk_size);
	printf("blk-info: features 0x%lx offered 0x%lx\n", b->vdev->features, b->vdev->offered);
	printf("blk-info: queue_size %u indirect %d event_idx %d\n", b->vq.size,
	       virtio_has(b->vdev, VIRTIO_F_INDIRECT_DESC), virtio_has(b->vdev, VIRTIO_F_EVENT_IDX));
	printf("blk-info: max_request_bytes %u\n", blk_max_bytes(b));
	if (virtio_has(b->vdev, VIRTIO_BLK_F_DISCARD))
		printf("blk-info: max_discard_sectors %u max_discard_seg %u\n",
		       b->max_discard_sectors, b->max_discard_seg);
	return STATUS_OK;
}

/* Fills up to max segments from *next toward end; returns how many. */
static uint32_t fill_segments(struct blk_discard_seg *segs, uint32_t max, uint32_t per_seg,
			      uint64_t *next, uint64_t end)
{
	uint32_t n = 0;

	for (; n < max && *next < end; n++) {
		uint64_t len = end - *next < per_seg ? end - *next : per_seg;

		segs[n] = (struct blk_discard_seg){ *next, (uint32_t)len, 0 };
		*next += len;
	}
	return n;
}

static int discard(struct blk_dev *b, uint64_t sectors)
{
	static struct blk_discard_seg segs[MAX_DISCARD_SEGS];
	uint32_t max = b->max_discard_seg && b->max_discard_seg < MAX_DISCARD_SEGS
			       ? b->max_discard_seg : MAX_DISCARD_SEGS;
	uint32_t per_seg = b->max_discard_sectors ? b->max_discard_sectors : 1u << 22;
	uint64_t next = 0;

	while (next < sectors) {
		uint64_t first = next;
		uint32_t n = fill_segments(segs, max, per_seg, &next, sectors);
		struct blk_req r;
		int st;

		blk_req_init(&r, VIRTIO_BLK_T_DISCARD, 0, segs, n * sizeof(segs[0]));
		if ((st = blk_do(b, &r)) != VIRTIO_BLK_S_OK) {
			printf("blk-discard: %s at sector %lu\n",
			       st < 0 ? "timeout" : st == VIRTIO_BLK_S_UNSUPP ? "unsupported" : "io error",
			       first);
			return STATUS_FAILED;
		}
	}
	return STATUS_OK;
}

static int blk_discard(int argc, char **argv)
{
	uint64_t disk, mib, sectors;
	struct blk_dev *b;

	if (argc > 3 || arg_u64(argc, argv, 1, 0, 0, 7, &disk) ||
	    arg_u64(argc, argv, 2, 16, 1, 1 << 20, &mib))
		return STATUS_USAGE;
	if (!(b = blk_open((int)disk, "blk-discard")))
		return STATUS_FAILED;
	if (!virtio_has(b->vdev, VIRTIO_BLK_F_DISCARD)) {
		printf("blk-discard: disk %lu does not offer VIRTIO_BLK_F_DISCARD\n", disk);
		return STATUS_FAILED;
	}
	sectors = mib * MIB / BLK_SECTOR;
	if (sectors > b->capacity)
		sectors = b->capacity;
	if (discard(b, sectors))
		return STATUS_FAILED;
	printf("blk-discard: disk %lu bytes %lu\n", disk, sectors * BLK_SECTOR);
	return STATUS_OK;
}

const struct command cmd_blk_info = { "blk-info", "[DISK]", "capacity, read-only, serial, features",
				      blk_info };
const struct command cmd_blk_discard = { "blk-discard", "[DISK] [MiB]",
					 "discard the first MiB of the disk", blk_discard };
