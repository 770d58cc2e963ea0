/* The block I/O job engine (blk_job.h). Each in-flight request owns a fixed
 * slice of one buffer. After each wake-up every completion is reaped and
 * replaced, then one kick publishes the batch. */
#include "commands/blk_job.h"
#include "cpu.h"
#include "lib/pattern.h"
#include "page_alloc.h"
#include "printf.h"
#include "virtio/virtqueue.h"

#define TIMEOUT_US 30000000ull

static struct blk_req reqs[BLK_JOB_MAX_DEPTH];
static uint8_t *pool;

struct cursor {
	uint64_t next; /* sequential: next sector */
	uint64_t rng;
};

static bool more(const struct blk_job *j, const struct cursor *c)
{
	if (j->err_status || j->bad_sector != UINT64_MAX)
		return false;
	if (j->deadline)
		return (int64_t)(rdtsc() - j->deadline) < 0;
	return c->next < j->first_sector + j->span_sectors;
}

static void issue(struct blk_job *j, struct cursor *c, struct blk_req *r)
{
	uint32_t ns = j->bytes / BLK_SECTOR;
	uint64_t sector, len = j->bytes;

	if (j->random) {
		sector = splitmix64(&c->rng) % (j->span_sectors / ns) * ns;
	} else {
		if (c->next >= j->first_sector + j->span_sectors)
			c->next = j->first_sector; /* timed sequential runs wrap */
		sector = c->next;
		if (len > (j->first_sector + j->span_sectors - sector) * BLK_SECTOR)
			len = (j->first_sector + j->span_sectors - sector) * BLK_SECTOR;
		c->next += len / BLK_SECTOR;
	}
	blk_req_init(r, j->type, sector, r->data, len);
	if (j->pattern && j->type == VIRTIO_BLK_T_OUT)
		pattern_fill(r->data, sector, len / BLK_SECTOR, j->seed);
	blk_submit(j->b, r);
}

static void complete(struct blk_job *j, struct blk_req *r)
{
	uint64_t sector = r->hdr.sector;
	uint32_t ns = r->len / BLK_SECTOR, bad;

	if (r->status != VIRTIO_BLK_S_OK) {
		if (!j->err_status || sector < j->err_sector)
			j->err_sector = sector;
		if (!j->err_status)
			j->err_status = r->status;
		return;
	}
	if (j->pattern && j->type == VIRTIO_BLK_T_IN &&
	    (bad = pattern_check(r->data, sector, ns, j->seed)) < ns && sector + bad < j->bad_sector)
		j->bad_sector = sector + bad;
	j->reqs++;
	j->sectors += ns;
}

static bool prepare(struct blk_job *j)
{
	if (!pool && !(pool = mem_alloc_zeroed(BLK_JOB_BUF_BYTES, PAGE_SIZE))) {
		printf("blk: no memory for I/O buffers\n");
		return false;
	}
	if (j->depth > BLK_JOB_MAX_DEPTH)
		j->depth = BLK_JOB_MAX_DEPTH;
	while (j->depth > 1 && (uint64_t)j->depth * j->bytes > BLK_JOB_BUF_BYTES)
		j->depth--;
	for (int i = 0; i < j->depth; i++)
		reqs[i].data = pool + (uint64_t)i * j->bytes;
	j->reqs = j->sectors = j->kicks = 0;
	j->err_status = 0;
	j->err_sector = 0;
	j->bad_sector = UINT64_MAX;
	j->timed_out = false;
	return true;
}

bool blk_job_run(struct blk_job *j)
{
	struct cursor c = { j->first_sector, j->seed ^ 0x5eed };
	uint64_t t0, kicks0 = j->b->vq.kicks;
	struct blk_req *r;

	if (!prepare(j))
		return false;
	t0 = rdtsc();
	for (int i = 0; i < j->depth && more(j, &c); i++)
		issue(j, &c, &reqs[i]);
	blk_kick(j->b);
	while (vq_in_flight(&j->b->vq)) {
		if (!(r = blk_wait(j->b, TIMEOUT_US))) {
			j->timed_out = true;
			break;
		}
		do {
			complete(j, r);
			if (more(j, &c))
				issue(j, &c, r);
		} while ((r = blk_poll(j->b)));
		blk_kick(j->b);
	}
	j->cycles = rdtsc() - t0;
	j->kicks = j->b->vq.kicks - kicks0;
	return !j->timed_out;
}
