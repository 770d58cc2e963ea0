/* virtio-balloon (virtio 1.2, 5.5). Pages come from page_alloc, so nothing
 * else in the guest uses them while the host has them; deflated pages go
 * back to page_free only after the device acknowledged the deflate request
 * (5.5.6.1, VIRTIO_BALLOON_F_MUST_TELL_HOST). */
#include "cpu.h"
#include "memmap.h"
#include "page_alloc.h"
#include "printf.h"
#include "timer.h"
#include "virtio/balloon.h"

#define INFLATEQ 0
#define DEFLATEQ 1
#define STATSQ 2
#define CFG_NUM_PAGES 0
#define CFG_ACTUAL 4
#define REQUEST_TIMEOUT_US 5000000
#define TARGET_POLL_US 1000000

/* 5.5.6.3: tags. */
enum { S_SWAP_IN, S_SWAP_OUT, S_MAJFLT, S_MINFLT, S_MEMFREE, S_MEMTOT };

static struct balloon balloon;

static void fill_stats(struct balloon *b)
{
	uint64_t free = phys_free_bytes() + page_free_count() * PAGE_SIZE;
	uint64_t vals[BALLOON_NSTATS] = { 0, 0, 0, 0, free, memmap_ram_bytes() };

	for (int i = 0; i < BALLOON_NSTATS; i++)
		b->stats[i] = (struct balloon_stat){ (uint16_t)i, vals[i] };
}

static void post_stats(struct balloon *b)
{
	struct vq_buf buf = { (uint64_t)b->stats, sizeof(b->stats), false };

	fill_stats(b);
	vq_add(&b->statq, &buf, 1, b->stats);
	vq_kick(&b->statq);
}

static int start(struct balloon *b, struct virtio_dev *d)
{
	b->vdev = d;
	b->capacity = memmap_ram_end() / PAGE_SIZE;
	if (!b->pfns && !(b->pfns = mem_alloc_zeroed(4ull * b->capacity, PAGE_SIZE)))
		return -1;
	if (virtio_start(d, BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST) | BIT(VIRTIO_BALLOON_F_STATS_VQ)))
		return -1;
	if (vq_setup(&b->inflq, d, INFLATEQ, 4) || vq_setup(&b->deflq, d, DEFLATEQ, 4) ||
	    (virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ) && vq_setup(&b->statq, d, STATSQ, 4))) {
		virtio_fail(d, "queue setup failed");
		return -1;
	}
	virtio_driver_ok(d);
	b->held = 0;
	virtio_config_write32(d, CFG_ACTUAL, 0);
	if (virtio_has(d, VIRTIO_BALLOON_F_STATS_VQ))
		post_stats(b);
	b->target = virtio_config_read(d, CFG_NUM_PAGES, 4);
	b->next_target_read = deadline_after_us(TARGET_POLL_US);
	d->driver = b;
	return 0;
}

struct balloon *balloon_open(const char *cmd)
{
	struct virtio_dev *d = virtio_find(VIRTIO_ID_BALLOON, 0);

	if (!d) {
		printf("%s: no virtio-balloon device\n", cmd);
		return 0;
	}
	if (d->started && d->driver == &balloon)
		return &balloon;
	if (start(&balloon, d)) {
		printf("%s: virtio-balloon did not start\n", cmd);
		return 0;
	}
	return &balloon;
}

uint32_t balloon_target(struct balloon *b)
{
	bool changed = virtio_take_isr(b->vdev) & VIRTIO_ISR_CONFIG;

	if (changed || (int64_t)(rdtsc() - b->next_target_read) >= 0) {
		b->target = virtio_config_read(b->vdev, CFG_NUM_PAGES, 4);
		b->next_target_read = deadline_after_us(TARGET_POLL_US);
	}
	return b->target;
}

uint32_t balloon_actual(struct balloon *b)
{
	return virtio_config_read(b->vdev, CFG_ACTUAL, 4);
}

/* Sends batch[0..n) on q and waits for the device to take it. */
static bool send_batch(struct balloon *b, struct virtq *q, uint32_t n)
{
	struct vq_buf buf = { (uint64_t)b->batch, 4 * n, false };

	if (vq_add(q, &buf, 1, b->batch))
		return false;
	vq_kick(q);
	if (!vq_wait_used(q, REQUEST_TIMEOUT_US))
		return false;
	return vq_get_used(q, 0) == b->batch;
}

static int inflate(struct balloon *b, uint32_t want)
{
	uint32_t n = 0;
	uint64_t pa;

	while (n < want && n < BALLOON_BATCH && b->held + n < b->capacity && (pa = page_alloc()))
		b->batch[n++] = (uint32_t)(pa / PAGE_SIZE);
	if (n && !send_batch(b, &b->inflq, n))
		return -1; /* the pages stay lost to us: the device may hold them */
	for (uint32_t i = 0; i < n; i++)
		b->pfns[b->held++] = b->batch[i];
	return n == 0 && want ? -1 : (int)n;
}

static int deflate(struct balloon *b, uint32_t want)
{
	uint32_t n = want < BALLOON_BATCH ? want : BALLOON_BATCH;

	for (uint32_t i = 0; i < n; i++)
		b->batch[i] = b->pfns[b->held - n + i];
	if (!send_batch(b, &b->deflq, n))
		return -1;
	b->held -= n;
	for (uint32_t i = 0; i < n; i++)
		page_free((uint64_t)b->batch[i] * PAGE_SIZE);
	return (int)n;
}

int balloon_step(struct balloon *b)
{
	uint32_t target = balloon_target(b);
	int moved;

	if (target == b->held)
		return 0;
	moved = target > b->held ? inflate(b, target - b->held) : deflate(b, b->held - target);
	if (moved > 0)
		virtio_config_write32(b->vdev, CFG_ACTUAL, b->held);
	return moved;
}

void balloon_service_stats(struct balloon *b)
{
	if (!virtio_has(b->vdev, VIRTIO_BALLOON_F_STATS_VQ) || !vq_get_used(&b->statq, 0))
		return;
	b->stats_answered++;
	post_stats(b);
}

void balloon_idle(struct balloon *b)
{
	struct virtq *vqs[] = { &b->statq };

	vq_idle(vqs, virtio_has(b->vdev, VIRTIO_BALLOON_F_STATS_VQ) ? 1 : 0);
}
