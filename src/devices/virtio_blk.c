/* virtio-blk (virtio 1.2, 5.2) over a raw image. Requests come from chains the
 * walker validated (virtqueue.h); everything in them is still guest-controlled, so
 * each length is checked before use, sector ranges are checked against the capacity
 * without overflow, and a bad request fails alone (IOERR or UNSUPP). Work goes to
 * block_backend asynchronously and completes in any order on the event loop; at most
 * one request per queue entry is in flight. Reads (or writes) that one notification
 * yields for adjacent sectors go to the backend as one operation, as QEMU merges them,
 * and are answered one by one; big reads are answered as each is copied (see
 * STREAM_READ_BYTES). A rate limiter, when configured, parks the next
 * request and stops reading the queue until a timer says tokens are back; a FLUSH
 * waits the same way until the writes before it have completed. */
#include "devices/virtio_blk.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/rate_limiter.h"
#include "snapshot/virtio_section.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vm.h"

#define SECTOR_SHIFT 9
#define SECTOR_SIZE 512u
#define HDR_SIZE ((uint32_t)sizeof(struct virtio_blk_req_hdr))
#define SEG_SIZE ((uint32_t)sizeof(struct virtio_blk_discard_write_zeroes))
#define BLK_S_PENDING 0xff /* parsed: the backend's result decides the status */
#define NS_PER_SEC 1000000000ULL
#define MERGE_MAX_IOVS 1024	     /* IOV_MAX: one preadv/pwritev */
#define MERGE_MAX_BYTES (1u << 20) /* per merged operation */
#define MERGE_SLOTS 16		     /* merged operations in flight at once */
/* Reads of this many bytes go to the backend as soon as they are taken and are
 * answered before the next chain is read. The page cache serves them inside the
 * submit, so the driver gets each one as soon as it is copied, not all of them after
 * the last, and has its next ones queued before we are done: the queue never runs
 * dry between passes (1 MiB sequential reads at 4 in flight: +12-30%). Smaller
 * adjacent reads still merge up to this size. Writes merge up to MERGE_MAX_BYTES:
 * every buffered write to an image goes through one io-wq worker anyway, and fewer,
 * bigger ones keep its queue full with fewer wakeups; but not much bigger than the
 * driver's own requests, or the worker idles while the driver waits for a whole
 * merged batch before it sends more (1 MiB sequential writes at 4 in flight: 1 MiB
 * instead of 4 MiB, +35%). */
#define STREAM_READ_BYTES (128u << 10)
/* A buffered write this big keeps an io-wq worker copying for longer than the event
 * loop's polling window (1 MiB: ~250 us here), so while only such writes are in
 * flight the loop sleeps and leaves the CPU to the worker (1 MiB sequential writes:
 * 3,800 MiB/s polling, 5,250 sleeping); smaller ones finish within a window and
 * polling for them pays, yielding the CPU between looks (4 KiB random writes at
 * QD1: 21k -> 106k IOPS). While nothing is in flight the next move is the guest's,
 * and the loop polls without yielding: yielding handed the CPU to the guest's
 * spinning vCPU and cost 1 MiB writes 15%. */
#define LONG_WRITE_BYTES (128u << 10)

_Static_assert(sizeof(struct virtio_blk_req_hdr) == 16, "5.2.6: request header");
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "5.2.6: segment");

struct blk_req {
	struct block_io io;
	struct iovec *iov; /* VIRTIO_BLK_SEG_MAX entries */
	uint8_t *status;   /* the status byte, in guest memory */
	uint64_t sector;
	uint64_t bytes; /* data bytes: for the rate limiter and the counters */
	uint32_t type;
	uint32_t written; /* data a success writes before the status byte: IN, GET_ID */
	uint16_t head;
	/* Merged requests: the first one's io carries them all, in merge->iov. */
	struct blk_merge *merge;	 /* the first one's: its buffers; else NULL */
	struct blk_req *next_merged; /* the request after this one, in sector order */
	bool long_write;	     /* counted in long_writes_inflight */
};

struct blk_merge {
	struct iovec iov[MERGE_MAX_IOVS];
};

/* Reads or writes taken in this pass, adjacent, not yet submitted. */
struct blk_batch {
	struct blk_req *first, *last;
	uint64_t end;	/* sector after the last one */
	uint64_t bytes;
};

struct virtio_blk {
	struct virtio_device *dev; /* once attached */
	char *drive_id, *path;
	bool read_only, writeback;
	uint64_t capacity; /* 512-byte sectors */
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	struct block_backend *bb;
	enum block_engine engine; /* asked at creation; a new image gets the same */
	int done_fd; /* eventfd every backend of this drive signals completions on */
	struct blk_req reqs[VIRTIO_BLK_QUEUE_SIZE];
	struct iovec *iovs;
	uint16_t free_slots[VIRTIO_BLK_QUEUE_SIZE];
	unsigned nfree;
	struct blk_req *parked; /* parsed, waiting for the rate limiter or earlier writes */
	struct blk_batch batch;
	struct blk_merge *merges; /* MERGE_SLOTS */
	struct blk_merge *merge_free[MERGE_SLOTS];
	unsigned nmerge_free;
	unsigned writes_inflight; /* writes, discards and write-zeroes a FLUSH waits for */
	unsigned long_writes_inflight; /* LONG_WRITE_BYTES or more: not worth polling for */
	struct rate_limiter rl;
	bool limited;  /* false: never ask rl */
	int timer_fd;  /* one-shot rate-limiter timer (kept for a limiter set later) */
	bool timer_armed;
	bool dropping; /* reset: finished requests are not given back */
	bool pushed;   /* used entries not yet signalled */
	struct virtio_blk_stats stats;
	struct virtq_chain chain; /* scratch for virtq_pop */
};

typedef uint8_t (*blk_parse_fn)(struct virtio_blk *blk, const struct virtq_chain *c,
				struct blk_req *req);

struct blk_kind {
	const char *name;
	bool writes; /* 5.2.6.2: refused with IOERR on a read-only drive */
	int feature; /* must have been negotiated, or UNSUPP; -1: none */
	blk_parse_fn parse;
};

/* ---- Parsing (5.2.6) ---- */

/* sector + count <= capacity, without overflow: both come from the guest. The
 * capacity is at most 2^55 sectors (a 2^64-byte image), so sector << 9 fits too. */
static bool range_ok(const struct virtio_blk *blk, uint64_t sector, uint64_t count)
{
	return sector <= blk->capacity && count <= blk->capacity - sector;
}

/* Buffers [first, first + count) of c as iovecs, less `skip` bytes at the front and
 * `trim` bytes off the last buffer. At most VIRTIO_BLK_SEG_MAX (5.2.4 seg_max).
 * Returns the number of iovecs, or -1 when there are too many. */
static int build_iov(const struct virtq_chain *c, unsigned first, unsigned count, uint32_t skip,
		     uint32_t trim, struct iovec *iov)
{
	int n = 0;
	for (unsigned i = first; i < first + count; i++) {
		uint8_t *p = c->bufs[i].hva;
		uint32_t len = c->bufs[i].len;
		uint32_t s = skip < len ? skip : len;
		p += s;
		len -= s;
		skip -= s;
		if (i == first + count - 1)
			len -= trim < len ? trim : len;
		if (!len)
			continue;
		if (n == VIRTIO_BLK_SEG_MAX)
			return -1;
		iov[n++] = (struct iovec){ .iov_base = p, .iov_len = len };
	}
	return n;
}

/* 5.2.6: IN is a readable header, then writable data and status; OUT is a readable
 * header and data, then the writable status. 5.2.6.1: data is whole sectors. */
static uint8_t parse_data(struct virtio_blk *blk, const struct virtq_chain *c,
			  struct blk_req *req, bool write)
{
	if (write ? c->write_len != 1 : c->read_len != HDR_SIZE)
		return VIRTIO_BLK_S_IOERR; /* data in buffers of the wrong direction */
	uint32_t len = write ? c->read_len - HDR_SIZE : c->write_len - 1;
	if (len % SECTOR_SIZE || !range_ok(blk, req->sector, len / SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;
	int n = write ? build_iov(c, 0, c->nread, HDR_SIZE, 0, req->iov)
		      : build_iov(c, c->nread, c->nwrite, 0, 1, req->iov);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	/* A driver that did not take FLUSH expects write-through (5.2.5.2, 5.2.6.2). */
	bool write_through = write && blk->writeback &&
			     !virtio_has_feature(blk->dev, VIRTIO_BLK_F_FLUSH);
	req->io = (struct block_io){
		.op = write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
		.offset = req->sector << SECTOR_SHIFT,
		.iov = req->iov, .iovcnt = n, .sync = write_through,
	};
	req->bytes = len;
	req->written = write ? 0 : len;
	return BLK_S_PENDING;
}

static uint8_t parse_read(struct virtio_blk *blk, const struct virtq_chain *c,
			  struct blk_req *req)
{
	return parse_data(blk, c, req, false);
}

static uint8_t parse_write(struct virtio_blk *blk, const struct virtq_chain *c,
			   struct blk_req *req)
{
	return parse_data(blk, c, req, true);
}

/* 5.2.6: FLUSH; offered only with a writeback cache (cache_type Writeback). */
static uint8_t parse_flush(struct virtio_blk *blk, const struct virtq_chain *c,
			   struct blk_req *req)
{
	if (!blk->writeback)
		return VIRTIO_BLK_S_UNSUPP;
	req->io = (struct block_io){ .op = BLOCK_OP_FLUSH };
	return BLK_S_PENDING;
}

/* 5.2.6: GET_ID writes the 20-byte serial, NUL-padded (not terminated at 20). */
static uint8_t do_get_id(struct virtio_blk *blk, const struct virtq_chain *c,
			 struct blk_req *req)
{
	if (c->write_len - 1 < VIRTIO_BLK_ID_BYTES)
		return VIRTIO_BLK_S_IOERR;
	virtq_chain_write(c, 0, blk->serial, VIRTIO_BLK_ID_BYTES);
	req->written = VIRTIO_BLK_ID_BYTES;
	blk->stats.get_id_ops++;
	return VIRTIO_BLK_S_OK;
}

/* 5.2.6: DISCARD and WRITE_ZEROES carry segments after the header. 5.2.6.2: unknown
 * flags, and UNMAP on a discard, are UNSUPP; ranges past the end and segments over
 * the limits in the configuration (5.2.4) are IOERR. Empty segments are skipped. */
static uint8_t parse_segments(struct virtio_blk *blk, const struct virtq_chain *c,
			      struct blk_req *req, bool zeroes)
{
	struct virtio_blk_discard_write_zeroes segs[VIRTIO_BLK_MAX_DISCARD_SEG];
	uint32_t len = c->read_len - HDR_SIZE;
	if (len == 0 || len % SEG_SIZE || len / SEG_SIZE > VIRTIO_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	unsigned nseg = len / SEG_SIZE;
	if (virtq_chain_read(c, HDR_SIZE, segs, len) != len)
		return VIRTIO_BLK_S_IOERR;
	uint32_t allowed = zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	for (unsigned i = 0; i < nseg; i++)
		if (le32toh(segs[i].flags) & ~allowed)
			return VIRTIO_BLK_S_UNSUPP;
	req->io = (struct block_io){ .op = zeroes ? BLOCK_OP_WRITE_ZEROES : BLOCK_OP_DISCARD };
	for (unsigned i = 0; i < nseg; i++) {
		uint64_t sector = le64toh(segs[i].sector);
		uint32_t n = le32toh(segs[i].num_sectors);
		if (n > VIRTIO_BLK_MAX_DISCARD_SECTORS || !range_ok(blk, sector, n))
			return VIRTIO_BLK_S_IOERR;
		if (n)
			req->io.ranges[req->io.nranges++] = (struct block_range){
				.offset = sector << SECTOR_SHIFT,
				.len = (uint64_t)n << SECTOR_SHIFT,
				.unmap = le32toh(segs[i].flags) & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
			};
	}
	return BLK_S_PENDING;
}

static uint8_t parse_discard(struct virtio_blk *blk, const struct virtq_chain *c,
			     struct blk_req *req)
{
	return parse_segments(blk, c, req, false);
}

static uint8_t parse_write_zeroes(struct virtio_blk *blk, const struct virtq_chain *c,
				  struct blk_req *req)
{
	return parse_segments(blk, c, req, true);
}

static const struct blk_kind blk_kinds[] = {
	[VIRTIO_BLK_T_IN] = { "read", false, -1, parse_read },
	[VIRTIO_BLK_T_OUT] = { "write", true, -1, parse_write },
	[VIRTIO_BLK_T_FLUSH] = { "flush", false, -1, parse_flush },
	[VIRTIO_BLK_T_GET_ID] = { "get-id", false, -1, do_get_id },
	[VIRTIO_BLK_T_DISCARD] = { "discard", true, VIRTIO_BLK_F_DISCARD, parse_discard },
	[VIRTIO_BLK_T_WRITE_ZEROES] = { "write-zeroes", true, VIRTIO_BLK_F_WRITE_ZEROES,
					parse_write_zeroes },
};

static const struct blk_kind *blk_kind(uint32_t type)
{
	if (type >= sizeof(blk_kinds) / sizeof(blk_kinds[0]) || !blk_kinds[type].parse)
		return NULL;
	return &blk_kinds[type];
}

/* 5.2.6: the 16-byte header is device-readable, wherever the driver split it.
 * Returns a VIRTIO_BLK_S_* status, or BLK_S_PENDING with req->io ready. */
static uint8_t blk_parse(struct virtio_blk *blk, const struct virtq_chain *c, struct blk_req *req)
{
	struct virtio_blk_req_hdr hdr;
	if (virtq_chain_read(c, 0, &hdr, HDR_SIZE) != HDR_SIZE)
		return VIRTIO_BLK_S_IOERR;
	req->type = le32toh(hdr.type);
	req->sector = le64toh(hdr.sector);
	const struct blk_kind *k = blk_kind(req->type);
	if (!k)
		return VIRTIO_BLK_S_UNSUPP;
	if (k->writes && blk->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (k->feature >= 0 && !virtio_has_feature(blk->dev, (unsigned)k->feature))
		return VIRTIO_BLK_S_UNSUPP;
	return k->parse(blk, c, req);
}

/* ---- Completion ---- */

static struct blk_req *req_get(struct virtio_blk *blk)
{
	return &blk->reqs[blk->free_slots[--blk->nfree]];
}

static void req_put(struct virtio_blk *blk, struct blk_req *req)
{
	blk->free_slots[blk->nfree++] = (uint16_t)(req - blk->reqs);
}

/* Sets the status byte and gives the chain back. The used length is what the device
 * wrote, never more (virtio 1.2, 2.7.8.2 and 2.7.14: len is a lower bound on the bytes
 * written, which a driver may trust): a read's data or the ID only when the request
 * succeeded, then the status byte; a failure, and every request that carries no data
 * back, wrote the status byte alone. */
static void blk_complete(struct virtio_blk *blk, struct blk_req *req, uint8_t status)
{
	if (!blk->dropping) {
		*req->status = status;
		uint32_t len = (status == VIRTIO_BLK_S_OK ? req->written : 0) + 1;
		virtq_push(&blk->dev->queues[0], req->head, len);
		blk->pushed = true;
	}
	req_put(blk, req);
}

static void blk_count(struct virtio_blk *blk, const struct blk_req *req)
{
	struct virtio_blk_stats *s = &blk->stats;
	switch (req->io.op) {
	case BLOCK_OP_READ: s->read_ops++; s->read_bytes += req->bytes; break;
	case BLOCK_OP_WRITE: s->write_ops++; s->write_bytes += req->bytes; break;
	case BLOCK_OP_FLUSH: s->flush_ops++; break;
	case BLOCK_OP_DISCARD: s->discard_ops++; break;
	default: s->write_zeroes_ops++; break;
	}
}

/* A host error fails the request, never the VM. Logged at the 1st, 2nd, 4th, 8th...
 * error so a full disk cannot flood the log. */
static void blk_report_error(struct virtio_blk *blk, const struct blk_req *req, int err)
{
	uint64_t n = ++blk->stats.io_errors;
	if (n & (n - 1))
		return;
	char where[48] = "";
	if (req->io.op == BLOCK_OP_READ || req->io.op == BLOCK_OP_WRITE)
		snprintf(where, sizeof(where), " at sector %llu", (unsigned long long)req->sector);
	log_error("drive %s (%s): %s%s failed: %s; the guest gets an I/O error (%llu so far)",
		  blk->drive_id, blk->path, blk_kinds[req->type].name, where, strerror(-err),
		  (unsigned long long)n);
}

static void blk_finish(struct virtio_blk *blk, struct blk_req *req, int err)
{
	if (err)
		blk_report_error(blk, req, err);
	else
		blk_count(blk, req);
	blk_complete(blk, req, err ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
}

/* Writes change the image: a FLUSH waits until those before it have completed. */
static bool blk_op_writes(enum block_op op)
{
	return op == BLOCK_OP_WRITE || op == BLOCK_OP_DISCARD || op == BLOCK_OP_WRITE_ZEROES;
}

/* A merged operation finished: each request is answered on its own. After an error
 * the requests wholly transferred before it (io->offset moved past them) succeeded
 * and the rest fail; with write-through the failure may be the fdatasync that
 * covers them all, so all fail. */
static void blk_merged_done(struct virtio_blk *blk, struct blk_req *first,
			    const struct block_io *io)
{
	uint64_t done = io->offset - (first->sector << SECTOR_SHIFT), pos = 0;
	if (io->result && io->sync)
		done = 0;
	blk->merge_free[blk->nmerge_free++] = first->merge;
	first->merge = NULL;
	for (struct blk_req *req = first, *next; req; req = next) {
		next = req->next_merged; /* req goes back to the free slots */
		pos += req->bytes;
		blk_finish(blk, req, io->result && pos > done ? io->result : 0);
	}
}

static void blk_io_done(void *opaque, struct block_io *io)
{
	struct virtio_blk *blk = opaque;
	struct blk_req *req = io->opaque;
	if (blk_op_writes(io->op))
		blk->writes_inflight--;
	if (req->long_write)
		blk->long_writes_inflight--;
	if (req->merge)
		blk_merged_done(blk, req, io);
	else
		blk_finish(blk, req, io->result);
}

static void blk_notify(struct virtio_blk *blk)
{
	if (blk->pushed)
		virtio_notify_used(blk->dev, 0);
	blk->pushed = false;
}

/* ---- Submission and rate limiting ---- */

static void blk_arm_timer(struct virtio_blk *blk, uint64_t ns)
{
	ns = ns ? ns : 1; /* 0 would disarm */
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / NS_PER_SEC),
						.tv_nsec = (long)(ns % NS_PER_SEC) } };
	if (timerfd_settime(blk->timer_fd, 0, &its, NULL) < 0) {
		log_warn("drive %s: rate limiter timer: %m; retrying in 10 ms", blk->drive_id);
		its.it_value = (struct timespec){ .tv_nsec = 10000000 };
		timerfd_settime(blk->timer_fd, 0, &its, NULL);
	}
	blk->timer_armed = true;
}

static void blk_disarm_timer(struct virtio_blk *blk)
{
	struct itimerspec off = { 0 };
	if (blk->timer_fd >= 0)
		timerfd_settime(blk->timer_fd, 0, &off, NULL);
	blk->timer_armed = false;
}

/* True when the limiter lets req through now; otherwise the timer is armed for when
 * it will. While the timer runs nothing is asked (so each wait counts once). */
static bool blk_admit(struct virtio_blk *blk, struct blk_req *req)
{
	if (!blk->limited)
		return true;
	if (blk->timer_armed)
		return false;
	uint64_t now = timings_now();
	if (rate_limiter_consume(&blk->rl, req->bytes, now))
		return true;
	blk_arm_timer(blk, rate_limiter_wait_ns(&blk->rl, req->bytes, now));
	return false;
}

/* 5.2.6: a FLUSH covers the writes completed before it, so it waits while earlier
 * writes are in flight (their completions read the queue again); then the limiter. */
static bool blk_ready(struct virtio_blk *blk, struct blk_req *req)
{
	const struct blk_req *batch = blk->batch.first;
	if (req->io.op == BLOCK_OP_FLUSH &&
	    (blk->writes_inflight || (batch && blk_op_writes(batch->io.op))))
		return false;
	return blk_admit(blk, req);
}

static bool blk_has_work(const struct blk_req *req)
{
	if (req->io.op == BLOCK_OP_READ || req->io.op == BLOCK_OP_WRITE)
		return req->io.iovcnt > 0;
	return req->io.op == BLOCK_OP_FLUSH || req->io.nranges > 0;
}

static uint64_t blk_io_bytes(const struct block_io *io)
{
	uint64_t n = 0;
	for (int i = 0; i < io->iovcnt; i++)
		n += io->iov[i].iov_len;
	return n;
}

static void blk_submit(struct virtio_blk *blk, struct blk_req *req)
{
	if (!blk_has_work(req)) {
		blk_count(blk, req);
		blk_complete(blk, req, VIRTIO_BLK_S_OK); /* zero-length: nothing to do */
		return;
	}
	req->io.opaque = req;
	if (blk_op_writes(req->io.op))
		blk->writes_inflight++;
	req->long_write = req->io.op == BLOCK_OP_WRITE && blk_io_bytes(&req->io) >= LONG_WRITE_BYTES;
	blk->long_writes_inflight += req->long_write;
	int err = block_backend_submit(blk->bb, &req->io);
	if (err) {
		req->io.result = err; /* every request merged into it fails */
		blk_io_done(blk, &req->io);
	}
}

/* ---- Merging adjacent requests ---- */

static uint64_t blk_merge_cap(enum block_op op)
{
	return op == BLOCK_OP_READ ? STREAM_READ_BYTES : MERGE_MAX_BYTES;
}

/* May req join the batch: same operation, starting where the batch ends, within
 * one system call's iovecs and the byte cap, and a merge slot to hold the buffers. */
static bool blk_can_merge(const struct virtio_blk *blk, const struct blk_req *req)
{
	const struct blk_batch *b = &blk->batch;
	const struct blk_req *first = b->first;
	return first && req->io.op == first->io.op && req->io.sync == first->io.sync &&
	       req->sector == b->end && req->io.iovcnt > 0 &&
	       first->io.iovcnt + req->io.iovcnt <= MERGE_MAX_IOVS &&
	       b->bytes + req->bytes <= blk_merge_cap(req->io.op) &&
	       (first->merge || blk->nmerge_free);
}

/* Appends req's buffers to the batch's operation (the first request's io). */
static void blk_batch_add(struct virtio_blk *blk, struct blk_req *req)
{
	struct blk_batch *b = &blk->batch;
	struct block_io *io = &b->first->io;
	if (!b->first->merge) {
		b->first->merge = blk->merge_free[--blk->nmerge_free];
		memcpy(b->first->merge->iov, io->iov, (size_t)io->iovcnt * sizeof(*io->iov));
		io->iov = b->first->merge->iov;
	}
	memcpy(io->iov + io->iovcnt, req->io.iov, (size_t)req->io.iovcnt * sizeof(*io->iov));
	io->iovcnt += req->io.iovcnt;
	b->last->next_merged = req;
	b->last = req;
	b->end += req->bytes >> SECTOR_SHIFT;
	b->bytes += req->bytes;
}

/* Submits the batch, if any: one operation however many requests it holds. */
static void blk_batch_flush(struct virtio_blk *blk)
{
	struct blk_req *first = blk->batch.first;
	blk->batch = (struct blk_batch){ 0 };
	if (first)
		blk_submit(blk, first);
}

/* An admitted request: it joins the batch, starts a new one (reads and writes), or
 * goes to the backend after the batch, which keeps the order of submission. */
static void blk_enqueue(struct virtio_blk *blk, struct blk_req *req)
{
	if (blk_can_merge(blk, req)) {
		blk_batch_add(blk, req);
		return;
	}
	blk_batch_flush(blk);
	bool data = req->io.op == BLOCK_OP_READ || req->io.op == BLOCK_OP_WRITE;
	if (data && req->io.iovcnt > 0)
		blk->batch = (struct blk_batch){ .first = req, .last = req, .bytes = req->bytes,
						 .end = req->sector + (req->bytes >> SECTOR_SHIFT) };
	else
		blk_submit(blk, req);
}

/* 5.2.6: the status byte is the last byte of the last device-writable buffer. A chain
 * without one cannot even be failed: it goes back with nothing written (2.7.8.2: len
 * 0) and is counted, and the device serves the next one, as every other malformed
 * request fails alone; one bad chain must not take the disk away (no NEEDS_RESET).
 * Otherwise the request is answered at once (malformed, unsupported, GET_ID) or
 * started. */
static void blk_take_chain(struct virtio_blk *blk, const struct virtq_chain *c)
{
	if (c->nwrite == 0) {
		virtio_warn(blk->dev, VIRTIO_LOG_DEVICE,
			    "drive %s: a request without a status byte; given back unanswered",
			    blk->drive_id);
		virtq_push(&blk->dev->queues[0], c->head, 0);
		blk->pushed = true;
		blk->stats.bad_requests++;
		return;
	}
	struct blk_req *req = req_get(blk);
	const struct virtq_buf *last = &c->bufs[c->nread + c->nwrite - 1];
	req->head = c->head;
	req->status = last->hva + last->len - 1;
	req->written = 0;
	req->bytes = 0;
	req->merge = NULL;
	req->next_merged = NULL;
	uint8_t status = blk_parse(blk, c, req);
	if (status != BLK_S_PENDING) {
		if (status != VIRTIO_BLK_S_OK)
			blk->stats.bad_requests++;
		blk_complete(blk, req, status);
	} else if (blk_ready(blk, req)) {
		blk_enqueue(blk, req);
	} else {
		blk_batch_flush(blk); /* a parked request never merges */
		blk->parked = req;
	}
}

/* True when the queue may be read: nothing parked (or the parked request has just
 * been let through, alone) and a free slot for the next chain. */
static bool blk_can_take(struct virtio_blk *blk)
{
	if (blk->parked) {
		if (!blk_ready(blk, blk->parked))
			return false;
		struct blk_req *req = blk->parked;
		blk->parked = NULL;
		blk_batch_flush(blk);
		blk_submit(blk, req);
	}
	return blk->nfree > 0;
}

static bool blk_running(const struct virtio_blk *blk)
{
	const struct virtio_device *dev = blk->dev;
	return virtio_device_running(dev) && dev->queues[0].ready;
}

/* A batch of reads big enough to stream (STREAM_READ_BYTES): start it now and
 * answer what the submit finished. */
static void blk_stream_reads(struct virtio_blk *blk)
{
	const struct blk_batch *b = &blk->batch;
	if (!b->first || b->first->io.op != BLOCK_OP_READ || b->bytes < STREAM_READ_BYTES)
		return;
	blk_batch_flush(blk);
	block_backend_kick(blk->bb);
	block_backend_reap(blk->bb, blk_io_done, blk);
	blk_notify(blk);
}

/* Takes chains until the queue is empty or a slot or the limiter runs out. */
static void blk_take_available(struct virtio_blk *blk)
{
	struct virtq *vq = &blk->dev->queues[0];
	while (blk_can_take(blk)) {
		/* While the loop polls, the driver need not notify: blk_arm re-enables
		 * notifications before the loop sleeps. */
		int r = virtio_pop(blk->dev, vq, &blk->chain, !event_loop_polling(blk->dev->vm->loop),
				   "virtio-blk queue broken");
		if (r == 0 || r == -EIO)
			break;
		if (r < 0) {
			virtq_push(vq, blk->chain.head, 0); /* a malformed chain fails alone */
			blk->pushed = true;
			blk->stats.bad_requests++;
			continue;
		}
		blk_take_chain(blk, &blk->chain);
		blk_stream_reads(blk);
	}
}

/* Rounds of take-submit-reap per wakeup before yielding to the rest of the loop. */
#define BLK_ROUNDS_PER_WAKEUP 64

/* Takes what the driver offers, starts it as one batch, and answers what finished
 * inside the submit (reads the page cache served) at once rather than a wakeup
 * later; each round that finished something frees slots (or a held FLUSH) and goes
 * round again. dev->lock held. */
static void blk_process_queue(struct virtio_blk *blk)
{
	event_loop_note_work(blk->dev->vm->loop);
	int rounds = 0;
	unsigned finished;
	do {
		blk_take_available(blk);
		blk_batch_flush(blk);
		block_backend_kick(blk->bb);
		finished = block_backend_reap(blk->bb, blk_io_done, blk);
	} while (finished && blk_running(blk) && ++rounds < BLK_ROUNDS_PER_WAKEUP);
	if (finished && rounds == BLK_ROUNDS_PER_WAKEUP) {
		uint64_t one = 1; /* more may be waiting: come back through the loop */
		if (write(blk->dev->notify_fds[0], &one, sizeof(one)) < 0)
			log_debug("drive %s: requeue: %m", blk->drive_id);
	}
	blk_notify(blk);
}

/* ---- Event loop callbacks ---- */


/* Answers finished I/O, then reads the queue again (slots are free). dev->lock held. */
static void blk_reap_and_process(struct virtio_blk *blk)
{
	block_backend_reap(blk->bb, blk_io_done, blk);
	if (blk_running(blk))
		blk_process_queue(blk);
	else
		blk_notify(blk);
}

static void blk_on_completion(void *opaque, uint32_t events)
{
	struct virtio_blk *blk = opaque;
	pthread_mutex_lock(&blk->dev->lock);
	blk_reap_and_process(blk);
	pthread_mutex_unlock(&blk->dev->lock);
}

/* ---- Polling (event_loop.h): the loop looks at the ring and the completions ---- */

/* Chains are waiting and one can be taken now (a slot free, nothing parked). */
static bool blk_can_take_now(struct virtio_blk *blk)
{
	return blk->nfree && !blk->parked && virtq_available(&blk->dev->queues[0]);
}

static enum poll_found blk_poll(void *opaque)
{
	struct virtio_blk *blk = opaque;
	enum poll_found found = POLL_NOTHING;
	pthread_mutex_lock(&blk->dev->lock);
	if (blk_running(blk) && (block_backend_finished(blk->bb) || blk_can_take_now(blk))) {
		blk_reap_and_process(blk);
		found = POLL_WORK;
	} else if (blk->long_writes_inflight) {
		found = POLL_HOST_BUSY;
	} else if (block_backend_inflight(blk->bb)) {
		found = POLL_HOST_IO;
	}
	pthread_mutex_unlock(&blk->dev->lock);
	return found;
}

static bool blk_arm(void *opaque)
{
	struct virtio_blk *blk = opaque;
	pthread_mutex_lock(&blk->dev->lock);
	bool more = blk_running(blk) && virtq_enable_notify(&blk->dev->queues[0]) &&
		    blk_can_take_now(blk);
	pthread_mutex_unlock(&blk->dev->lock);
	return more;
}

static const struct event_poller_ops blk_poller = { .poll = blk_poll, .arm = blk_arm };

static void blk_on_timer(void *opaque, uint32_t events)
{
	struct virtio_blk *blk = opaque;
	uint64_t expirations;
	if (read(blk->timer_fd, &expirations, sizeof(expirations)) < 0)
		return; /* not expired after all */
	pthread_mutex_lock(&blk->dev->lock);
	blk->timer_armed = false;
	if (blk_running(blk))
		blk_process_queue(blk);
	pthread_mutex_unlock(&blk->dev->lock);
}

static int blk_attach(struct virtio_blk *blk, struct virtio_device *dev)
{
	if (blk->dev)
		return blk->dev == dev ? 0 : -EBUSY;
	struct event_loop *loop = dev->vm->loop;
	int err = event_loop_add(loop, blk->done_fd, EPOLLIN, blk_on_completion, blk);
	if (!err) {
		err = event_loop_add(loop, blk->timer_fd, EPOLLIN, blk_on_timer, blk);
		if (!err)
			err = event_loop_add_poller(loop, &blk_poller, blk);
		if (err) {
			event_loop_remove(loop, blk->timer_fd);
			event_loop_remove(loop, blk->done_fd);
		}
	}
	if (err) {
		log_error("drive %s: cannot join the event loop: %s", blk->drive_id, strerror(-err));
		return err;
	}
	blk->dev = dev;
	return 0;
}

/* ---- Device ops ---- */

static uint64_t blk_features(struct virtio_device *dev)
{
	struct virtio_blk *blk = dev->backend;
	uint64_t f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE);
	if (blk->read_only)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	if (blk->writeback)
		f |= 1ULL << VIRTIO_BLK_F_FLUSH;
	return f;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

/* 5.2.4: struct virtio_blk_config, little-endian; geometry, topology, writeback and
 * num_queues stay 0 (not offered). */
static void blk_read_config(struct virtio_device *dev, uint32_t offset, uint8_t *data,
			    uint32_t len)
{
	struct virtio_blk *blk = dev->backend;
	uint8_t cfg[VIRTIO_BLK_CONFIG_SIZE] = { 0 };
	uint64_t capacity = htole64(blk->capacity);
	memcpy(cfg, &capacity, sizeof(capacity));
	put_le32(cfg + 12, VIRTIO_BLK_SEG_MAX);
	put_le32(cfg + 20, SECTOR_SIZE); /* blk_size */
	put_le32(cfg + 36, VIRTIO_BLK_MAX_DISCARD_SECTORS);
	put_le32(cfg + 40, VIRTIO_BLK_MAX_DISCARD_SEG);
	put_le32(cfg + 44, VIRTIO_BLK_DISCARD_ALIGNMENT);
	put_le32(cfg + 48, VIRTIO_BLK_MAX_DISCARD_SECTORS); /* max_write_zeroes_sectors */
	put_le32(cfg + 52, VIRTIO_BLK_MAX_DISCARD_SEG);	    /* max_write_zeroes_seg */
	cfg[56] = 1; /* write_zeroes_may_unmap: UNMAP punches a hole */
	if (offset <= sizeof(cfg) && len <= sizeof(cfg) - offset)
		memcpy(data, cfg + offset, len);
}

/* DRIVER_OK: a device a test driver built joins the event loop here. */
static int blk_activate(struct virtio_device *dev)
{
	return blk_attach(dev->backend, dev);
}

/* 2.4: the driver reset the device. I/O in flight must not write into guest memory
 * after the rings are gone, so it is waited for (as QEMU drains), then everything is
 * dropped. On a vCPU thread, dev->lock held; the rate limiter keeps its state. */
static void blk_reset(struct virtio_device *dev)
{
	struct virtio_blk *blk = dev->backend;
	if (!blk->dev)
		return;
	blk->dropping = true;
	block_backend_drain(blk->bb, blk_io_done, blk);
	blk->dropping = false;
	if (blk->parked)
		req_put(blk, blk->parked);
	blk->parked = NULL;
	blk->pushed = false;
	blk_disarm_timer(blk);
}

static void blk_queue_notify(struct virtio_device *dev, uint32_t q)
{
	struct virtio_blk *blk = dev->backend;
	if (q == 0 && blk->dev == dev)
		blk_process_queue(blk);
}

/* The VM is going away: release the backend with the device. */
static void blk_destroy(struct virtio_device *dev)
{
	virtio_blk_backend_free(dev->backend);
	dev->backend = NULL;
}

const struct virtio_device_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max_size = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.features = blk_features,
	.read_config = blk_read_config,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
	.destroy = blk_destroy,
};

/* ---- Construction ---- */

/* Opens and locks path as this drive's image: its read-only mode, its engine, its
 * completion eventfd. Returns 0, or -errno after one message naming drive and path. */
static int blk_open_image(struct virtio_blk *blk, const char *path, struct block_backend **out)
{
	return block_backend_open(path, blk->read_only, blk->drive_id, VIRTIO_BLK_QUEUE_SIZE,
				  blk->engine, blk->done_fd, out);
}

/* The capacity bb offers, in whole sectors (5.2.4: capacity). */
static uint64_t blk_sectors(const struct virtio_blk *blk, const struct block_backend *bb,
			    const char *path)
{
	uint64_t size = block_backend_size(bb);
	if (size % SECTOR_SIZE)
		log_warn("drive %s: %s is %llu bytes, not whole 512-byte sectors; the guest sees "
			 "%llu sectors", blk->drive_id, path, (unsigned long long)size,
			 (unsigned long long)(size >> SECTOR_SHIFT));
	return size >> SECTOR_SHIFT;
}

static int blk_init_slots(struct virtio_blk *blk)
{
	blk->iovs = calloc((size_t)VIRTIO_BLK_QUEUE_SIZE * VIRTIO_BLK_SEG_MAX, sizeof(struct iovec));
	blk->merges = calloc(MERGE_SLOTS, sizeof(*blk->merges));
	if (!blk->iovs || !blk->merges)
		return -ENOMEM;
	for (unsigned i = 0; i < MERGE_SLOTS; i++)
		blk->merge_free[i] = &blk->merges[i];
	blk->nmerge_free = MERGE_SLOTS;
	for (unsigned i = 0; i < VIRTIO_BLK_QUEUE_SIZE; i++) {
		blk->reqs[i].iov = blk->iovs + (size_t)i * VIRTIO_BLK_SEG_MAX;
		blk->free_slots[i] = (uint16_t)(VIRTIO_BLK_QUEUE_SIZE - 1 - i);
	}
	blk->nfree = VIRTIO_BLK_QUEUE_SIZE;
	return 0;
}

/* The timer exists even without a limit, so PATCH /drives can set one after boot
 * without adding to the event loop from the API thread. */
static int blk_init_limiter(struct virtio_blk *blk, const struct rate_limiter_config *cfg)
{
	rate_limiter_init(&blk->rl, cfg, timings_now());
	blk->limited = !rate_limiter_is_unlimited(&blk->rl);
	blk->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	return blk->timer_fd < 0 ? -errno : 0;
}

int virtio_blk_backend_new(const struct drive_config *cfg, enum block_engine engine,
			   struct virtio_blk **out)
{
	if (!cfg->drive_id || !cfg->path_on_host) {
		log_error("drive: drive_id and path_on_host are required");
		return -EINVAL;
	}
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	if (!blk)
		return -ENOMEM;
	blk->timer_fd = blk->done_fd = -1;
	blk->engine = engine;
	blk->read_only = cfg->is_read_only;
	blk->writeback = cfg->cache_type == DRIVE_CACHE_WRITEBACK;
	blk->drive_id = strdup(cfg->drive_id);
	blk->path = strdup(cfg->path_on_host);
	size_t idlen = strlen(cfg->drive_id);
	memcpy(blk->serial, cfg->drive_id, idlen < VIRTIO_BLK_ID_BYTES ? idlen : VIRTIO_BLK_ID_BYTES);
	int err = blk->drive_id && blk->path ? 0 : -ENOMEM;
	if (!err)
		err = blk_init_slots(blk);
	if (!err && (err = blk_init_limiter(blk, &cfg->rate_limiter)))
		log_error("drive %s: rate limiter timer: %s", cfg->drive_id, strerror(-err));
	if (!err && (blk->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		err = -errno;
		log_error("drive %s: completion eventfd: %s", cfg->drive_id, strerror(-err));
	}
	if (!err)
		err = blk_open_image(blk, blk->path, &blk->bb); /* logs its own errors */
	if (!err)
		blk->capacity = blk_sectors(blk, blk->bb, blk->path);
	if (err) {
		if (err == -ENOMEM)
			log_error("drive %s: out of memory", cfg->drive_id);
		virtio_blk_backend_free(blk);
		return err;
	}
	*out = blk;
	return 0;
}

void virtio_blk_backend_free(struct virtio_blk *blk)
{
	if (!blk)
		return;
	block_backend_close(blk->bb); /* before done_fd: it may wait on it */
	if (blk->done_fd >= 0)
		close(blk->done_fd);
	if (blk->timer_fd >= 0)
		close(blk->timer_fd);
	free(blk->iovs);
	free(blk->merges);
	free(blk->drive_id);
	free(blk->path);
	free(blk);
}

void virtio_blk_get_stats(struct virtio_device *dev, struct virtio_blk_stats *out)
{
	struct virtio_blk *blk = dev->backend;
	pthread_mutex_lock(&dev->lock);
	*out = blk->stats;
	out->throttled = blk->rl.throttled;
	pthread_mutex_unlock(&dev->lock);
}

struct block_backend *virtio_blk_block_backend(struct virtio_blk *blk)
{
	return blk->bb;
}

/* ---- Changes after boot (PATCH /drives/{id}) ---- */

/* A request parked by the rate limiter was checked against the old capacity. */
static bool blk_req_fits(const struct virtio_blk *blk, const struct blk_req *req)
{
	const struct block_io *io = &req->io;
	if (io->op == BLOCK_OP_READ || io->op == BLOCK_OP_WRITE)
		return range_ok(blk, req->sector, req->bytes >> SECTOR_SHIFT);
	for (unsigned i = 0; i < io->nranges; i++)
		if (!range_ok(blk, io->ranges[i].offset >> SECTOR_SHIFT,
			      io->ranges[i].len >> SECTOR_SHIFT))
			return false;
	return true;
}

/* 5.2.4: the capacity changed; the driver rereads the configuration when told
 * (4.2.2.1: a configuration change notification and a new config_generation).
 * dev->lock held. */
static void blk_new_capacity(struct virtio_blk *blk, struct virtio_device *dev,
			     uint64_t capacity)
{
	blk->capacity = capacity;
	if (blk->parked && !blk_req_fits(blk, blk->parked)) {
		struct blk_req *req = blk->parked;
		blk->parked = NULL;
		blk->stats.bad_requests++;
		blk_complete(blk, req, VIRTIO_BLK_S_IOERR); /* now past the end */
		blk_notify(blk);
	}
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_notify_config(dev);
	else
		dev->config_generation++;
}

/* A new limiter replaces the buckets; a request held back asks the new ones at once
 * (the timer fires). The throttled count goes on: metrics are cumulative. */
static void blk_replace_limiter(struct virtio_blk *blk, const struct rate_limiter_config *cfg)
{
	uint64_t throttled = blk->rl.throttled;
	rate_limiter_init(&blk->rl, cfg, timings_now());
	blk->rl.throttled = throttled;
	blk->limited = !rate_limiter_is_unlimited(&blk->rl);
	if (blk->parked || blk->timer_armed)
		blk_arm_timer(blk, 0);
}

/* The image blk has open, resized on the host: only the capacity changes. */
static int blk_refresh_image(struct virtio_blk *blk, struct virtio_device *dev, char *path)
{
	pthread_mutex_lock(&dev->lock);
	int err = block_backend_refresh_size(blk->bb);
	if (!err) {
		free(blk->path);
		blk->path = path;
		blk_new_capacity(blk, dev, blk_sectors(blk, blk->bb, path));
	}
	pthread_mutex_unlock(&dev->lock);
	return err;
}

/* Requests in flight finish on the old image and are answered (not dropped, unlike a
 * reset); then the new one takes over. dev->lock held; returns the old backend. */
static struct block_backend *blk_swap_image(struct virtio_blk *blk, struct virtio_device *dev,
					    struct block_backend *bb, char *path)
{
	struct block_backend *old = blk->bb;
	block_backend_drain(old, blk_io_done, blk);
	blk_notify(blk);
	if (blk->parked)
		blk_arm_timer(blk, 0); /* a FLUSH waiting for those writes goes now */
	blk->bb = bb;
	free(blk->path);
	blk->path = path;
	blk_new_capacity(blk, dev, blk_sectors(blk, bb, path));
	return old;
}

/* Opens the new image first, so any failure leaves the drive as it was. */
static int blk_change_image(struct virtio_blk *blk, struct virtio_device *dev, const char *path)
{
	char *copy = strdup(path);
	if (!copy) {
		log_error("drive %s: %s: out of memory", blk->drive_id, path);
		return -ENOMEM;
	}
	if (block_backend_is_image(blk->bb, path)) {
		int err = blk_refresh_image(blk, dev, copy);
		if (err)
			free(copy);
		return err;
	}
	struct block_backend *bb;
	int err = blk_open_image(blk, path, &bb); /* logs its own errors but this one */
	if (err == -ENOMEM)
		log_error("drive %s: %s: out of memory", blk->drive_id, path);
	if (err) {
		free(copy);
		return err;
	}
	pthread_mutex_lock(&dev->lock);
	struct block_backend *old = blk_swap_image(blk, dev, bb, copy);
	pthread_mutex_unlock(&dev->lock);
	block_backend_close(old); /* nothing in flight: releases the file and its lock */
	return 0;
}

int virtio_blk_update(struct virtio_device *dev, const char *path_on_host,
		      const struct rate_limiter_config *rl)
{
	if (!dev || dev->ops != &virtio_blk_ops || !dev->backend)
		return -EINVAL;
	struct virtio_blk *blk = dev->backend;
	if (path_on_host) {
		int err = blk_change_image(blk, dev, path_on_host);
		if (err)
			return err;
		log_info("drive %s: now %s, %llu sectors", blk->drive_id, path_on_host,
			 (unsigned long long)blk->capacity);
	}
	if (rl) {
		pthread_mutex_lock(&dev->lock);
		blk_replace_limiter(blk, rl);
		pthread_mutex_unlock(&dev->lock);
	}
	return 0;
}

int virtio_blk_create(struct vm *vm, const struct drive_config *cfg)
{
	struct virtio_blk *blk;
	int err = virtio_blk_backend_new(cfg, cfg->io_engine, &blk);
	if (err)
		return err;
	struct virtio_device *dev;
	err = virtio_mmio_create(vm, &virtio_blk_ops, blk, &dev);
	if (err) {
		virtio_blk_backend_free(blk);
		return err;
	}
	err = blk_attach(blk, dev);
	if (err)
		return err; /* the VM does not start; the device goes with it */
	log_info("drive %s: %s, %llu sectors, %s, I/O by %s", blk->drive_id, blk->path,
		 (unsigned long long)blk->capacity,
		 blk->read_only	   ? "read-only"
		 : blk->writeback ? "read-write, flushes reach the disk"
				  : "read-write, cache unsafe (no flush)",
		 block_backend_engine_name(blk->bb));
	return 0;
}

/* ---- Snapshots ---- */

/* The VM is paused (vCPUs and event loop parked): every request the backend has is
 * waited for and answered into the used ring, as a reset drains but keeping the
 * answers; a request parked by the limiter or a FLUSH goes back to the available ring
 * (it was the last one taken, 2.7.13) and is taken again when its timer fires here,
 * or at the restored device's first kick. */
void virtio_blk_quiesce(struct virtio_device *dev)
{
	struct virtio_blk *blk = dev->backend;
	pthread_mutex_lock(&dev->lock);
	if (blk && blk->dev == dev) {
		blk_batch_flush(blk);
		block_backend_kick(blk->bb);
		block_backend_drain(blk->bb, blk_io_done, blk);
		if (blk->parked) {
			req_put(blk, blk->parked);
			blk->parked = NULL;
			virtq_unpop(&dev->queues[0], 1);
			blk_arm_timer(blk, 0); /* the source VM, if resumed, takes it again */
		}
		blk_notify(blk);
	}
	pthread_mutex_unlock(&dev->lock);
}

/* After the transport: u64 capacity (sectors), u8 read_only, the limiter's buckets. */
void virtio_blk_save(struct virtio_device *dev, struct snap_writer *w)
{
	struct virtio_blk *blk = dev->backend;
	snap_put_u64(w, blk->capacity);
	snap_put_u8(w, blk->read_only);
	snap_put_rate_limiter(w, &blk->rl);
}

/* The image must be the size the guest saw: its file systems are laid out on it. */
int virtio_blk_restore(struct virtio_device *dev, struct section_in *in)
{
	struct virtio_blk *blk = dev->backend;
	uint64_t capacity = snap_get_u64(&in->c);
	bool read_only = section_in_flag(in, "read_only");
	if (!in->c.failed && !in->bad && capacity != blk->capacity)
		section_in_fail(in, "capacity", "the guest saw %llu sectors, %s has %llu: the "
				"snapshot does not fit the host", (unsigned long long)capacity,
				blk->path, (unsigned long long)blk->capacity);
	if (!in->c.failed && !in->bad && read_only != blk->read_only)
		section_in_fail(in, "read_only", "%d, but the drive is configured %d", read_only,
				blk->read_only);
	section_in_rate_limiter(in, "rate_limiter", &blk->rl);
	return in->bad || in->c.failed ? -1 : 0;
}
