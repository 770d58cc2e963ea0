/* libFuzzer target for virtio-blk's request handling: each input is a descriptor
 * table, an available ring and the guest memory the descriptors point into (request
 * headers, data, discard segments, indirect tables), fed through the real walker,
 * the device and its I/O backend against a small image. A crash, a sanitizer report
 * or a broken invariant (__builtin_trap) is a finding. Invariants: the image never
 * grows (nothing is written past the capacity), used entries name heads inside the
 * queue, and every request completes (no I/O left in flight, no hang).
 *
 * Input: [0] flags (bit 0 read-only drive, 1 EVENT_IDX, 2 INDIRECT_DESC, 3 no FLUSH,
 * 4 no DISCARD, 5 no WRITE_ZEROES negotiated), [1] number of available entries,
 * then that many heads (one byte each; >= the queue size breaks the ring), then
 * QSIZE descriptors of 16 bytes (an address with bit 63 clear lands in the data
 * region; a length with bit 31 clear is taken modulo the region's size), then the
 * data region's contents.
 *
 * Build and run: `make build/fuzz/fuzz_virtio_blk` and `make fuzz-run`, or by hand
 * (clang from Debian):
 *   clang-14 -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -Itests/unit/support \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     tests/fuzz/fuzz_virtio_blk.c tests/unit/support/virtio_test_driver.c \
 *     src/devices/{virtio_blk,block_backend,rate_limiter}.c \
 *     src/devices/virtio/{virtqueue,mmio}.c src/vmm/{memory,event_loop,bus}.c \
 *     src/common/log.c -luring -lpthread -o build/fuzz/fuzz_virtio_blk
 *   build/fuzz/fuzz_virtio_blk -max_len=16384 build/fuzz/corpus-virtio_blk
 */
#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_blk.h"
#include "virtio_test_driver.h"
#include "vmm/event_loop.h"

#define QSIZE 16
#define IMAGE_BYTES (1ULL << 20)
#define DATA_GPA 0x200000ULL
#define DATA_SIZE 0x10000u
#define F(bit) (1ULL << (bit))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct dut {
	struct vtd t;
	struct virtio_blk *blk;
	char path[64];
	int fd; /* the image, to check it never grows */
};

static void open_dut(struct dut *d, bool read_only)
{
	snprintf(d->path, sizeof(d->path), "/dev/shm/argon-fuzz-blk-XXXXXX");
	d->fd = mkstemp(d->path);
	if (d->fd < 0 || ftruncate(d->fd, IMAGE_BYTES) < 0)
		abort();
	struct drive_config cfg = { .drive_id = read_only ? "fuzz-ro" : "fuzz-rw",
				    .path_on_host = d->path, .is_read_only = read_only };
	if (virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &d->blk) ||
	    vtd_init(&d->t, &virtio_blk_ops, d->blk, 4, F(VIRTIO_F_VERSION_1), QSIZE))
		abort();
	unlink(d->path); /* the open file lives on; nothing is left behind */
}

static struct dut *duts(void)
{
	static struct dut d[2];
	static int ready;
	if (!ready) {
		log_init("fuzz", LOG_ERROR);
		log_set_level(LOG_ERROR);
		open_dut(&d[0], false);
		open_dut(&d[1], true);
		ready = 1;
	}
	return d;
}

static uint64_t features_for(uint8_t flags)
{
	uint64_t f = F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_SEG_MAX) | F(VIRTIO_BLK_F_BLK_SIZE);
	f |= flags & 1 ? F(VIRTIO_BLK_F_RO) : 0;
	f |= flags & 2 ? F(VIRTIO_F_EVENT_IDX) : 0;
	f |= flags & 4 ? F(VIRTIO_F_INDIRECT_DESC) : 0;
	f |= flags & 8 ? 0 : F(VIRTIO_BLK_F_FLUSH);
	f |= flags & 16 ? 0 : F(VIRTIO_BLK_F_DISCARD);
	f |= flags & 32 ? 0 : F(VIRTIO_BLK_F_WRITE_ZEROES);
	return f;
}

/* A fresh queue as the driver would set it up after a reset. */
static void reset_queue(struct dut *d, uint64_t features)
{
	struct vtd_queue *q = &d->t.q[0];
	uint8_t *rings = guest_mem_ptr(&d->t.vm.mem, q->desc_gpa, q->used_gpa + 8 + 8ULL * QSIZE -
								    q->desc_gpa);
	memset(rings, 0, q->used_gpa + 8 + 8ULL * QSIZE - q->desc_gpa);
	q->next_desc = q->avail_idx = q->last_used = 0;
	struct virtq *vq = &d->t.dev.queues[0];
	virtq_reset(vq);
	vq->size = QSIZE;
	vq->desc_gpa = q->desc_gpa;
	vq->avail_gpa = q->avail_gpa;
	vq->used_gpa = q->used_gpa;
	d->t.dev.driver_features = d->t.dev.device_features = features;
	if (virtq_activate(vq, &d->t.vm.mem, features & F(VIRTIO_F_EVENT_IDX),
			   features & F(VIRTIO_F_INDIRECT_DESC)))
		__builtin_trap();
	d->t.dev.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Descriptors from the input, most of them pointed into the data region. */
static size_t load_descriptors(struct dut *d, const uint8_t *data, size_t size)
{
	struct vtd_desc *table = vtd_desc_table(&d->t, 0);
	uint8_t raw[QSIZE * 16] = { 0 };
	size_t n = size < sizeof(raw) ? size : sizeof(raw);
	memcpy(raw, data, n);
	for (int i = 0; i < QSIZE; i++) {
		const uint8_t *r = raw + 16 * i;
		uint64_t addr = get_le(r, 8);
		uint32_t len = (uint32_t)get_le(r + 8, 4);
		if (!(addr >> 63))
			addr = DATA_GPA + addr % DATA_SIZE;
		if (!(len >> 31))
			len %= DATA_SIZE + 1;
		table[i] = (struct vtd_desc){ .addr = addr, .len = len,
					      .flags = (uint16_t)get_le(r + 12, 2),
					      .next = (uint16_t)get_le(r + 14, 2) };
	}
	return n;
}

/* Runs the event loop until the backend has nothing in flight. */
static void drain(struct dut *d)
{
	struct block_backend *bb = virtio_blk_block_backend(d->blk);
	time_t start = time(NULL);
	while (block_backend_inflight(bb) > 0) {
		event_loop_run_once(d->t.vm.loop, 100);
		if (time(NULL) - start > 10)
			__builtin_trap(); /* a request that never completes */
	}
}

static void check_invariants(struct dut *d)
{
	struct stat st;
	if (fstat(d->fd, &st) == 0 && (uint64_t)st.st_size != IMAGE_BYTES)
		__builtin_trap();
	uint32_t id, len;
	while (vtd_get_used(&d->t, 0, &id, &len))
		if (id >= QSIZE)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	struct dut *d = &duts()[flags & 1];
	reset_queue(d, features_for(flags));
	unsigned n = data[1] % (2 * QSIZE + 1);
	size_t off = 2;
	for (unsigned i = 0; i < n && off < size; i++)
		vtd_add_head(&d->t, 0, data[off++]);
	off += load_descriptors(d, data + off, size - off);
	uint8_t *region = guest_mem_ptr(&d->t.vm.mem, DATA_GPA, DATA_SIZE);
	memset(region, 0, DATA_SIZE);
	if (off < size)
		memcpy(region, data + off, size - off < DATA_SIZE ? size - off : DATA_SIZE);
	vtd_kick(&d->t, 0);
	drain(d);
	check_invariants(d);
	pthread_mutex_lock(&d->t.dev.lock);
	virtio_blk_ops.reset(&d->t.dev);
	pthread_mutex_unlock(&d->t.dev.lock);
	if (block_backend_inflight(virtio_blk_block_backend(d->blk)))
		__builtin_trap();
	return 0;
}
