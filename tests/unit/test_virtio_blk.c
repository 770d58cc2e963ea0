/* virtio-blk through the fake driver against a temporary image: data written is in
 * the file and reads back, on both I/O engines (io_uring and threads); hostile
 * chains (short header, no status, wrong directions, sector overflow, capacity
 * edges, too many segments, huge buffers) fail alone with the right status; read-only
 * drives refuse writes; discard and write-zeroes free blocks or zero them; host
 * errors (injected, and a real EFBIG from RLIMIT_FSIZE) become IOERR while the device
 * keeps working; reads or writes of adjacent sectors in one notification go to the
 * backend as one operation and are answered one by one, right even when that
 * operation fails or comes back short; the rate limiter parks requests and a timer
 * resumes them; the image lock keeps a second writer out; after boot the image and
 * the limiter can be replaced (virtio_blk_update) and a refused image changes
 * nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_blk.h"
#include "virtio_test_driver.h"

#define F(bit) (1ULL << (bit))
#define RW_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_SEG_MAX) | F(VIRTIO_BLK_F_BLK_SIZE) | \
		     F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_DISCARD) | F(VIRTIO_BLK_F_WRITE_ZEROES))
#define IMAGE_BYTES (4ULL << 20) /* 8192 sectors */
#define SECTORS (IMAGE_BYTES / 512)
#define UNTOUCHED 0xAA		 /* what a status byte holds until the device writes it */

static enum block_engine uring = BLOCK_ENGINE_IO_URING, threads = BLOCK_ENGINE_THREADS;

struct fixture {
	struct vtd t;
	struct virtio_blk *blk;
	char path[64];
	int fd; /* the test's own view of the image */
};

struct drive_opts {
	bool read_only;
	enum drive_cache cache;
	uint64_t features;
	struct rate_limiter_config rl;
	const char *dir;
	enum block_engine engine;
};

static struct fixture *fixture_new(const struct drive_opts *o)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->path, sizeof(f->path), "%s/argon-blk-XXXXXX", o->dir ? o->dir : "/tmp");
	f->fd = mkstemp(f->path);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, IMAGE_BYTES), 0);
	struct drive_config cfg = { .drive_id = "disk0", .path_on_host = f->path,
				    .is_read_only = o->read_only, .cache_type = o->cache,
				    .rate_limiter = o->rl };
	assert_int_equal(virtio_blk_backend_new(&cfg, o->engine, &f->blk), 0);
	uint64_t features = o->features ? o->features : RW_FEATURES;
	assert_int_equal(vtd_init(&f->t, &virtio_blk_ops, f->blk, 64, features, 0), 0);
	return f;
}

static void fixture_free(struct fixture *f)
{
	vtd_destroy(&f->t);
	virtio_blk_backend_free(f->blk);
	close(f->fd);
	unlink(f->path);
	free(f);
}

static struct fixture *rw_fixture(void **state)
{
	struct drive_opts o = { .engine = *state ? *(enum block_engine *)*state : uring };
	return fixture_new(&o);
}

/* ---- A small driver: buffers, requests, completions ---- */

static uint64_t header(struct fixture *f, uint32_t type, uint64_t sector)
{
	struct virtio_blk_req_hdr *h;
	uint64_t gpa = vtd_alloc(&f->t, sizeof(*h), (void **)&h);
	*h = (struct virtio_blk_req_hdr){ .type = htole32(type), .sector = htole64(sector) };
	return gpa;
}

static uint64_t status_buf(struct fixture *f, uint8_t **st)
{
	uint64_t gpa = vtd_alloc(&f->t, 1, (void **)st);
	**st = UNTOUCHED;
	return gpa;
}

/* Offers a chain, kicks, waits for its used entry; returns the used length. */
static uint32_t run_chain(struct fixture *f, const struct vtd_buf *bufs, int n)
{
	uint16_t head = vtd_add_chain(&f->t, 0, bufs, n);
	vtd_kick(&f->t, 0);
	assert_true(vtd_wait_used(&f->t, 0, 5000));
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
	assert_int_equal(id, head);
	return len;
}

/* IN (data device-writable) or OUT; returns the status byte. */
static uint8_t blk_io(struct fixture *f, uint32_t type, uint64_t sector, void *data, uint32_t len)
{
	bool in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
	void *hva = NULL;
	uint8_t *st;
	struct vtd_buf bufs[3] = { { header(f, type, sector), 16, false } };
	int n = 1;
	if (len) {
		bufs[n++] = (struct vtd_buf){ vtd_alloc(&f->t, len, &hva), len, in };
		if (!in)
			memcpy(hva, data, len);
	}
	bufs[n++] = (struct vtd_buf){ status_buf(f, &st), 1, true };
	uint32_t used = run_chain(f, bufs, n);
	if (in && *st == VIRTIO_BLK_S_OK) {
		if (len)
			memcpy(data, hva, len);
		assert_int_equal(used, len + 1);
	}
	return *st;
}

static uint8_t segments_req(struct fixture *f, uint32_t type,
			    const struct virtio_blk_discard_write_zeroes *segs, int nseg)
{
	uint32_t len = (uint32_t)nseg * sizeof(*segs);
	void *hva;
	uint8_t *st;
	struct vtd_buf bufs[3] = {
		{ header(f, type, 0), 16, false },
		{ vtd_alloc(&f->t, len, &hva), len, false },
		{ status_buf(f, &st), 1, true },
	};
	memcpy(hva, segs, len);
	run_chain(f, bufs, 3);
	return *st;
}

static uint8_t one_segment(struct fixture *f, uint32_t type, uint64_t sector, uint32_t n,
			   uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes s = { htole64(sector), htole32(n), htole32(flags) };
	return segments_req(f, type, &s, 1);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static uint64_t allocated_bytes(struct fixture *f)
{
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* ---- Configuration and features ---- */

static uint32_t config32(struct fixture *f, uint32_t off)
{
	uint32_t v;
	virtio_blk_ops.read_config(&f->t.dev, off, (uint8_t *)&v, 4);
	return le32toh(v);
}

static void config_space_describes_the_image(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint64_t cap;
	virtio_blk_ops.read_config(&f->t.dev, 0, (uint8_t *)&cap, 8);
	assert_int_equal(le64toh(cap), SECTORS);
	assert_int_equal(config32(f, 12), VIRTIO_BLK_SEG_MAX);
	assert_int_equal(config32(f, 20), 512);
	assert_int_equal(config32(f, 36), VIRTIO_BLK_MAX_DISCARD_SECTORS);
	assert_int_equal(config32(f, 40), VIRTIO_BLK_MAX_DISCARD_SEG);
	assert_int_equal(config32(f, 52), VIRTIO_BLK_MAX_DISCARD_SEG);
	uint8_t unmap;
	virtio_blk_ops.read_config(&f->t.dev, 56, &unmap, 1);
	assert_int_equal(unmap, 1);
	uint64_t feat = virtio_blk_ops.features(&f->t.dev);
	assert_true(feat & F(VIRTIO_BLK_F_FLUSH));
	assert_true(feat & F(VIRTIO_BLK_F_DISCARD));
	assert_false(feat & F(VIRTIO_BLK_F_RO));
	fixture_free(f);
}

static void read_only_and_unsafe_drives_offer_less(void **state)
{
	struct drive_opts o = { .read_only = true, .cache = DRIVE_CACHE_UNSAFE,
				.features = F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_RO) };
	struct fixture *f = fixture_new(&o);
	uint64_t feat = virtio_blk_ops.features(&f->t.dev);
	assert_true(feat & F(VIRTIO_BLK_F_RO));
	assert_false(feat & (F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_DISCARD) |
			     F(VIRTIO_BLK_F_WRITE_ZEROES)));
	/* Without a writeback cache there is nothing to flush: UNSUPP, not a fake OK. */
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	fixture_free(f);
}

/* ---- Data path ---- */

static void written_data_is_in_the_image_and_reads_back(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t out[64 << 10], in[64 << 10], file[64 << 10];
	fill(out, sizeof(out), 7);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 100, out, sizeof(out)), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(f->fd, file, sizeof(file), 100 * 512), sizeof(file));
	assert_memory_equal(file, out, sizeof(out));
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 100, in, sizeof(in)), VIRTIO_BLK_S_OK);
	assert_memory_equal(in, out, sizeof(out));
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_true(vtd_interrupts(&f->t) > 0);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.write_ops, 1);
	assert_int_equal(s.write_bytes, sizeof(out));
	assert_int_equal(s.read_ops, 1);
	assert_int_equal(s.flush_ops, 1);
	assert_int_equal(s.io_errors + s.bad_requests, 0);
	fixture_free(f);
}

/* The header, data and status may be split anywhere (2.6.4: no framing assumed). */
static void requests_split_across_many_buffers_work(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t *h, *d, *st;
	uint64_t hg = vtd_alloc(&f->t, 16 + 512, (void **)&h);
	*(struct virtio_blk_req_hdr *)h = (struct virtio_blk_req_hdr){ .type = htole32(1),
								       .sector = htole64(5) };
	fill(h + 16, 512, 3);
	uint64_t dg = vtd_alloc(&f->t, 1024, (void **)&d);
	fill(d, 1024, 4);
	struct vtd_buf out[] = { { hg, 8, false }, { hg + 8, 8 + 512, false }, { dg, 1000, false },
				 { dg + 1000, 24, false }, { status_buf(f, &st), 1, true } };
	assert_int_equal(run_chain(f, out, 5), 1);
	assert_int_equal(*st, VIRTIO_BLK_S_OK);
	uint8_t file[1536];
	assert_int_equal(pread(f->fd, file, sizeof(file), 5 * 512), sizeof(file));
	assert_memory_equal(file, h + 16, 512);
	assert_memory_equal(file + 512, d, 1024);
	/* IN whose status byte shares the last data buffer: 513 bytes = 1 sector + status. */
	uint8_t *buf;
	uint64_t bg = vtd_alloc(&f->t, 513, (void **)&buf);
	buf[512] = UNTOUCHED;
	struct vtd_buf in[] = { { header(f, VIRTIO_BLK_T_IN, 5), 16, false }, { bg, 513, true } };
	assert_int_equal(run_chain(f, in, 2), 513);
	assert_int_equal(buf[512], VIRTIO_BLK_S_OK);
	assert_memory_equal(buf, h + 16, 512);
	fixture_free(f);
}

/* Many requests in flight at once (as many as 256 descriptors hold), completed in
 * whatever order the engine finishes them. */
static void many_requests_in_flight_all_complete(void **state)
{
	struct fixture *f = rw_fixture(state);
	enum { N = VIRTIO_BLK_QUEUE_SIZE / 3, LEN = 4096 };
	uint8_t *st[N], *data[N];
	for (int i = 0; i < N; i++) {
		struct vtd_buf b[3] = {
			{ header(f, VIRTIO_BLK_T_OUT, (uint64_t)i * 8), 16, false },
			{ vtd_alloc(&f->t, LEN, (void **)&data[i]), LEN, false },
			{ status_buf(f, &st[i]), 1, true },
		};
		fill(data[i], LEN, (unsigned)i);
		vtd_add_chain(&f->t, 0, b, 3);
	}
	vtd_kick(&f->t, 0);
	int done = 0;
	uint32_t id, len;
	while (done < N && vtd_wait_used(&f->t, 0, 5000))
		while (vtd_get_used(&f->t, 0, &id, &len))
			done++;
	assert_int_equal(done, N);
	static uint8_t file[N * LEN];
	assert_int_equal(pread(f->fd, file, sizeof(file), 0), sizeof(file));
	for (int i = 0; i < N; i++) {
		assert_int_equal(*st[i], VIRTIO_BLK_S_OK);
		assert_memory_equal(file + (size_t)i * LEN, data[i], LEN);
	}
	fixture_free(f);
}

static void get_id_returns_the_drive_id_nul_padded(void **state)
{
	struct fixture *f = rw_fixture(state);
	char id[VIRTIO_BLK_ID_BYTES];
	memset(id, 'x', sizeof(id));
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id)), VIRTIO_BLK_S_OK);
	assert_memory_equal(id, "disk0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", VIRTIO_BLK_ID_BYTES);
	char short_id[19];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_GET_ID, 0, short_id, sizeof(short_id)),
			 VIRTIO_BLK_S_IOERR);
	fixture_free(f);
}

/* ---- Hostile requests ---- */

static void short_header_is_an_io_error(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t *st;
	struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, 0), 15, false },
			       { status_buf(f, &st), 1, true } };
	run_chain(f, b, 2);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	/* A header hidden in a writable buffer is no header either. */
	struct vtd_buf w[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, true },
			       { status_buf(f, &st), 1, true } };
	run_chain(f, w, 2);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	fixture_free(f);
}

/* A chain with no writable byte has nowhere for a status: it goes back with nothing
 * written and counted, and the disk goes on serving (issue 8, finding 5). */
static void chain_without_status_byte_fails_alone(void **state)
{
	struct fixture *f = rw_fixture(state);
	void *d;
	struct vtd_buf out[] = { { header(f, VIRTIO_BLK_T_OUT, 0), 16, false },
				 { vtd_alloc(&f->t, 512, &d), 512, false } };
	assert_int_equal(run_chain(f, out, 2), 0);
	struct vtd_buf in[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false } };
	assert_int_equal(run_chain(f, in, 1), 0);
	assert_false(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	uint8_t buf[512];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.bad_requests, 2);
	assert_int_equal(s.read_ops, 1);
	assert_false(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	fixture_free(f);
}

/* One request of `type` whose chain has a device-writable area of `area` bytes (the
 * status byte is its last); readable: the header and `payload` bytes. Returns the
 * used length, the status in *st. */
static uint32_t used_len_of(struct fixture *f, uint32_t type, uint64_t sector,
			    const void *payload, uint32_t plen, uint32_t area, uint8_t *st)
{
	struct vtd_buf b[3] = { { header(f, type, sector), 16, false } };
	int n = 1;
	if (plen) {
		void *p;
		b[n++] = (struct vtd_buf){ vtd_alloc(&f->t, plen, &p), plen, false };
		memcpy(p, payload, plen);
	}
	uint8_t *w;
	b[n++] = (struct vtd_buf){ vtd_alloc(&f->t, area, (void **)&w), area, true };
	w[area - 1] = UNTOUCHED;
	uint32_t used = run_chain(f, b, n);
	*st = w[area - 1];
	return used;
}

/* 2.7.8.2: the used length is what the device wrote. A failed request of any kind
 * wrote its status byte and nothing else, however big its writable area (a 1 GiB
 * read that failed once claimed 1 GiB + 1). */
static void failed_requests_report_the_status_byte_only(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct block_backend *bb = virtio_blk_block_backend(f->blk);
	for (int op = 0; op < BLOCK_OP_COUNT; op++)
		block_backend_inject_error(bb, (enum block_op)op, EIO);
	struct virtio_blk_discard_write_zeroes seg = { 0, htole32(8), 0 };
	const struct {
		uint32_t type;
		uint64_t sector;
		uint32_t plen, area;
		uint8_t status;
	} reqs[] = {
		{ VIRTIO_BLK_T_IN, 0, 0, 4096 + 1, VIRTIO_BLK_S_IOERR },	     /* host error */
		{ VIRTIO_BLK_T_IN, SECTORS, 0, 4096 + 1, VIRTIO_BLK_S_IOERR },   /* past the end */
		{ VIRTIO_BLK_T_OUT, 0, 0, 512 + 1, VIRTIO_BLK_S_IOERR },	     /* data writable */
		{ VIRTIO_BLK_T_FLUSH, 0, 0, 512 + 1, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_GET_ID, 0, 0, 10 + 1, VIRTIO_BLK_S_IOERR },	     /* too short */
		{ VIRTIO_BLK_T_DISCARD, 0, sizeof(seg), 512 + 1, VIRTIO_BLK_S_IOERR },
		{ VIRTIO_BLK_T_WRITE_ZEROES, 0, sizeof(seg), 512 + 1, VIRTIO_BLK_S_IOERR },
		{ 2, 0, 0, 512 + 1, VIRTIO_BLK_S_UNSUPP },
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		uint8_t st;
		uint32_t used = used_len_of(f, reqs[i].type, reqs[i].sector, &seg, reqs[i].plen,
					    reqs[i].area, &st);
		assert_int_equal(st, reqs[i].status);
		assert_int_equal(used, 1);
	}
	fixture_free(f);
}

/* A successful read wrote its data and status, GET_ID the 20 ID bytes and status
 * (not the rest of a bigger buffer), and the rest the status byte alone. */
static void successful_requests_report_what_they_wrote(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct virtio_blk_discard_write_zeroes seg = { 0, htole32(8), 0 };
	uint8_t data[4096] = { 0 }, st;
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_IN, 0, NULL, 0, 4096 + 1, &st), 4096 + 1);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_IN, SECTORS, NULL, 0, 1, &st), 1);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_GET_ID, 0, NULL, 0, 512 + 1, &st),
			 VIRTIO_BLK_ID_BYTES + 1);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data), 1, &st), 1);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 512 + 1, &st), 1);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof(seg), 512 + 1, &st), 1);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	assert_int_equal(used_len_of(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof(seg), 512 + 1,
				     &st), 1);
	assert_int_equal(st, VIRTIO_BLK_S_OK);
	fixture_free(f);
}

static void data_in_the_wrong_direction_is_an_io_error(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t *st, *d;
	/* IN with a device-readable data buffer: the device must not write it. */
	uint64_t dg = vtd_alloc(&f->t, 512, (void **)&d);
	memset(d, 0x5a, 512);
	struct vtd_buf in[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false }, { dg, 512, false },
				{ status_buf(f, &st), 1, true } };
	run_chain(f, in, 3);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	assert_int_equal(d[0], 0x5a);
	/* OUT with its data device-writable: nothing to write, and not an OK either. */
	struct vtd_buf out[] = { { header(f, VIRTIO_BLK_T_OUT, 0), 16, false }, { dg, 512, true },
				 { status_buf(f, &st), 1, true } };
	run_chain(f, out, 3);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	fixture_free(f);
}

static void sector_ranges_are_checked_without_overflow(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t buf[1024];
	const uint64_t bad[] = { SECTORS, SECTORS + 1, UINT64_MAX, UINT64_MAX - 1,
				 UINT64_MAX >> 9, (UINT64_MAX >> 9) + 1, 1ULL << 55, SECTORS - 1 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, bad[i], buf, 1024), VIRTIO_BLK_S_IOERR);
		assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, bad[i], buf, 1024), VIRTIO_BLK_S_IOERR);
	}
	/* The last sector is fine; a zero-length request at the very end too. */
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, SECTORS - 1, buf, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, SECTORS - 2, buf, 1024), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, SECTORS, buf, 0), VIRTIO_BLK_S_OK);
	struct stat st;
	assert_int_equal(fstat(f->fd, &st), 0);
	assert_int_equal(st.st_size, IMAGE_BYTES); /* nothing written past the end */
	fixture_free(f);
}

static void partial_sectors_are_an_io_error(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t buf[1024];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, buf, 511), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, buf, 513), VIRTIO_BLK_S_IOERR);
	fixture_free(f);
}

static void unknown_request_types_are_unsupported(void **state)
{
	struct fixture *f = rw_fixture(state);
	const uint32_t types[] = { 2, 3, 5, 7, VIRTIO_BLK_T_GET_LIFETIME, 12,
				   VIRTIO_BLK_T_SECURE_ERASE, 15, 0x80000000u, UINT32_MAX };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		assert_int_equal(blk_io(f, types[i], 0, NULL, 0), VIRTIO_BLK_S_UNSUPP);
	/* Features the driver did not take are unsupported too. */
	f->t.dev.driver_features &= ~F(VIRTIO_BLK_F_DISCARD);
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	fixture_free(f);
}

/* 255 data buffers: one more than seg_max, reachable within 256 descriptors when the
 * first buffer holds the header and a sector. */
static void more_segments_than_seg_max_is_an_io_error(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct vtd_buf b[256];
	uint8_t *h, *st;
	uint64_t hg = vtd_alloc(&f->t, 16 + 512, (void **)&h);
	*(struct virtio_blk_req_hdr *)h = (struct virtio_blk_req_hdr){ .type = htole32(1) };
	b[0] = (struct vtd_buf){ hg, 16 + 512, false };
	for (int i = 1; i < 255; i++)
		b[i] = (struct vtd_buf){ vtd_alloc(&f->t, 512, NULL), 512, false };
	b[255] = (struct vtd_buf){ status_buf(f, &st), 1, true };
	run_chain(f, b, 256);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	/* One buffer fewer fits. */
	b[254] = b[255];
	run_chain(f, b, 255);
	assert_int_equal(*st, VIRTIO_BLK_S_OK);
	fixture_free(f);
}

static void huge_buffers_fail_alone(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t *st;
	/* Past guest RAM: the walker refuses the chain; no status is written. */
	struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false },
			       { 1ULL << 20, 0xfffff000u, true },
			       { status_buf(f, &st), 1, true } };
	assert_int_equal(run_chain(f, b, 3), 0);
	assert_int_equal(*st, UNTOUCHED);
	/* Inside RAM but larger than the disk: IOERR, and only the status was written. */
	b[1] = (struct vtd_buf){ vtd_alloc(&f->t, 8 << 20, NULL), 8 << 20, true };
	assert_int_equal(run_chain(f, b, 3), 1);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	/* The device still works. */
	uint8_t buf[512];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, buf, 512), VIRTIO_BLK_S_OK);
	assert_false(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	fixture_free(f);
}

static void discard_segments_are_checked(void **state)
{
	struct fixture *f = rw_fixture(state);
	const uint32_t T = VIRTIO_BLK_T_DISCARD, Z = VIRTIO_BLK_T_WRITE_ZEROES;
	assert_int_equal(one_segment(f, T, SECTORS - 8, 9, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_segment(f, T, UINT64_MAX - 1, 4, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_segment(f, Z, UINT64_MAX >> 9, 1, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_segment(f, T, 0, VIRTIO_BLK_MAX_DISCARD_SECTORS + 1, 0),
			 VIRTIO_BLK_S_IOERR);
	/* 5.2.6.2: UNMAP on a discard and unknown flags anywhere are UNSUPP. */
	assert_int_equal(one_segment(f, T, 0, 8, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(one_segment(f, Z, 0, 8, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(one_segment(f, Z, 0, 8, 0x80000000u), VIRTIO_BLK_S_UNSUPP);
	/* Too many segments, or a length that is not whole segments. */
	struct virtio_blk_discard_write_zeroes segs[VIRTIO_BLK_MAX_DISCARD_SEG + 1];
	for (int i = 0; i <= VIRTIO_BLK_MAX_DISCARD_SEG; i++)
		segs[i] = (struct virtio_blk_discard_write_zeroes){ htole64(i * 8ULL), htole32(8), 0 };
	assert_int_equal(segments_req(f, T, segs, VIRTIO_BLK_MAX_DISCARD_SEG + 1),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(segments_req(f, T, segs, VIRTIO_BLK_MAX_DISCARD_SEG), VIRTIO_BLK_S_OK);
	uint8_t *st;
	struct vtd_buf odd[] = { { header(f, T, 0), 16, false },
				 { vtd_alloc(&f->t, 24, NULL), 24, false },
				 { status_buf(f, &st), 1, true } };
	run_chain(f, odd, 3);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	struct vtd_buf none[] = { { header(f, T, 0), 16, false }, { status_buf(f, &st), 1, true } };
	run_chain(f, none, 2);
	assert_int_equal(*st, VIRTIO_BLK_S_IOERR);
	/* A segment of zero sectors is nothing to do. */
	assert_int_equal(one_segment(f, T, SECTORS, 0, 0), VIRTIO_BLK_S_OK);
	fixture_free(f);
}

static void read_only_drive_refuses_every_write(void **state)
{
	struct fixture *f0 = rw_fixture(state);
	uint8_t data[4096];
	fill(data, sizeof(data), 9);
	assert_int_equal(pwrite(f0->fd, data, sizeof(data), 0), sizeof(data));
	/* A second, read-only view of the same file cannot be had while it is writable. */
	struct virtio_blk *other;
	struct drive_config cfg = { .drive_id = "ro", .path_on_host = f0->path, .is_read_only = true };
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -EBUSY);
	fixture_free(f0);

	struct drive_opts o = { .read_only = true, .features = RW_FEATURES | F(VIRTIO_BLK_F_RO) };
	struct fixture *f = fixture_new(&o);
	assert_int_equal(pwrite(f->fd, data, sizeof(data), 0), sizeof(data));
	uint8_t junk[4096] = { 0 }, back[4096];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, junk, sizeof(junk)), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, sizeof(data));
	/* Readers share: a second read-only backend opens; a writer does not. */
	cfg.path_on_host = f->path;
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), 0);
	virtio_blk_backend_free(other);
	cfg.is_read_only = false;
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -EBUSY);
	fixture_free(f);
}

static void a_second_writer_is_refused_by_the_lock(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct virtio_blk *other;
	struct drive_config cfg = { .drive_id = "twin", .path_on_host = f->path };
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -EBUSY);
	cfg.path_on_host = "/nonexistent/argon-disk.img";
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -ENOENT);
	cfg.path_on_host = "/dev/null";
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -EINVAL);
	fixture_free(f);
}

/* ---- Discard and write-zeroes on the image ---- */

static void discard_frees_blocks_and_reads_zeroes(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t data[1 << 20], back[1 << 20];
	fill(data, sizeof(data), 1);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	uint64_t before = allocated_bytes(f);
	assert_true(before >= sizeof(data));
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_DISCARD, 0, sizeof(data) / 512, 0),
			 VIRTIO_BLK_S_OK);
	assert_true(allocated_bytes(f) + sizeof(data) / 2 <= before);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_OK);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	fixture_free(f);
}

static void write_zeroes_zeroes_with_and_without_unmap(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t data[256 << 10], back[256 << 10];
	fill(data, sizeof(data), 2);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 1024, data, sizeof(data)), VIRTIO_BLK_S_OK);
	struct virtio_blk_discard_write_zeroes segs[2] = {
		{ htole64(8), htole32(16), 0 },
		{ htole64(1024), htole32(sizeof(data) / 512),
		  htole32(VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) },
	};
	assert_int_equal(segments_req(f, VIRTIO_BLK_T_WRITE_ZEROES, segs, 2), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, 8 * 512);
	for (size_t i = 8 * 512; i < 24 * 512; i++)
		assert_int_equal(back[i], 0);
	assert_memory_equal(back + 24 * 512, data + 24 * 512, sizeof(data) - 24 * 512);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 1024, back, sizeof(back)), VIRTIO_BLK_S_OK);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.write_zeroes_ops, 1);
	fixture_free(f);
}

/* tmpfs has PUNCH_HOLE but not ZERO_RANGE: write-zeroes without UNMAP falls back. */
static void write_zeroes_falls_back_where_zero_range_is_missing(void **state)
{
	struct drive_opts o = { .dir = "/dev/shm", .engine = *(enum block_engine *)*state };
	if (access("/dev/shm", W_OK) != 0) {
		fprintf(stderr, "SKIPPED: missing: a writable /dev/shm (tmpfs, which lacks ZERO_RANGE)\n");
		skip();
	}
	struct fixture *f = fixture_new(&o);
	static uint8_t data[300 << 10], back[300 << 10];
	fill(data, sizeof(data), 5);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)), VIRTIO_BLK_S_OK);
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_WRITE_ZEROES, 1, sizeof(data) / 512 - 2, 0),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, 512);
	for (size_t i = 512; i < sizeof(back) - 512; i++)
		assert_int_equal(back[i], 0);
	assert_memory_equal(back + sizeof(back) - 512, data + sizeof(data) - 512, 512);
	fixture_free(f);
}

/* ---- Host errors ---- */

static void host_errors_fail_the_request_and_the_device_lives(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct block_backend *bb = virtio_blk_block_backend(f->blk);
	uint8_t data[4096], back[4096];
	fill(data, sizeof(data), 4);
	block_backend_inject_error(bb, BLOCK_OP_WRITE, ENOSPC);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)), VIRTIO_BLK_S_IOERR);
	block_backend_inject_error(bb, BLOCK_OP_FLUSH, EIO);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_IOERR);
	block_backend_inject_error(bb, BLOCK_OP_READ, EIO);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_IOERR);
	block_backend_inject_error(bb, BLOCK_OP_DISCARD, EIO);
	assert_int_equal(one_segment(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	for (int op = 0; op < BLOCK_OP_COUNT; op++)
		block_backend_inject_error(bb, (enum block_op)op, 0);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_FLUSH, 0, NULL, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, sizeof(back)), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, data, sizeof(data));
	struct virtio_blk_stats s;
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.io_errors, 4);
	assert_false(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	fixture_free(f);
}

/* A real refusal from the kernel: writes past RLIMIT_FSIZE fail with EFBIG, as a full
 * filesystem fails with ENOSPC, partway through a request. */
static void a_real_write_error_is_an_io_error(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t data[128 << 10];
	fill(data, sizeof(data), 6);
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 64 << 10;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint8_t at_start = blk_io(f, VIRTIO_BLK_T_OUT, 0, data, sizeof(data)); /* crosses it */
	uint8_t past = blk_io(f, VIRTIO_BLK_T_OUT, 1024, data, 4096);
	uint8_t below = blk_io(f, VIRTIO_BLK_T_OUT, 8, data, 4096);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, prev);
	assert_int_equal(at_start, VIRTIO_BLK_S_IOERR);
	assert_int_equal(past, VIRTIO_BLK_S_IOERR);
	assert_int_equal(below, VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 1024, data, 4096), VIRTIO_BLK_S_OK);
	fixture_free(f);
}

static void an_image_that_shrinks_gives_io_errors(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t buf[4096];
	assert_int_equal(ftruncate(f->fd, 8192), 0);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 100, buf, sizeof(buf)), VIRTIO_BLK_S_IOERR);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, buf, sizeof(buf)), VIRTIO_BLK_S_OK);
	fixture_free(f);
}

/* ---- Rate limiting, reset ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rate_limiter_parks_requests_until_tokens_return(void **state)
{
	/* 2 ops per 100 ms: 6 reads take at least 200 ms (2 at once, then one per 50 ms). */
	struct drive_opts o = { .engine = *(enum block_engine *)*state,
				.rl = { .ops = { .size = 2, .refill_time_ms = 100 } } };
	struct fixture *f = fixture_new(&o);
	enum { N = 6 };
	uint8_t *st[N];
	for (int i = 0; i < N; i++) {
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false },
				       { vtd_alloc(&f->t, 512, NULL), 512, true },
				       { status_buf(f, &st[i]), 1, true } };
		vtd_add_chain(&f->t, 0, b, 3);
	}
	uint64_t start = mono_ms();
	vtd_kick(&f->t, 0);
	int done = 0;
	uint32_t id, len;
	while (done < N && vtd_wait_used(&f->t, 0, 2000))
		while (vtd_get_used(&f->t, 0, &id, &len))
			done++;
	uint64_t took = mono_ms() - start;
	assert_int_equal(done, N);
	assert_true(took >= 190);
	assert_true(took < 1500);
	for (int i = 0; i < N; i++)
		assert_int_equal(*st[i], VIRTIO_BLK_S_OK);
	struct virtio_blk_stats s;
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_true(s.throttled >= 4 - 1);
	fixture_free(f);
}

static void reset_waits_for_io_in_flight(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t data[64 << 10];
	for (int i = 0; i < 64; i++) {
		void *hva;
		uint8_t *st;
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_OUT, (uint64_t)i * 128), 16, false },
				       { vtd_alloc(&f->t, sizeof(data), &hva), sizeof(data), false },
				       { status_buf(f, &st), 1, true } };
		memcpy(hva, data, sizeof(data));
		vtd_add_chain(&f->t, 0, b, 3);
	}
	vtd_kick(&f->t, 0);
	pthread_mutex_lock(&f->t.dev.lock);
	virtio_blk_ops.reset(&f->t.dev);
	pthread_mutex_unlock(&f->t.dev.lock);
	assert_int_equal(block_backend_inflight(virtio_blk_block_backend(f->blk)), 0);
	fixture_free(f);
}

static void two_drives_work_side_by_side(void **state)
{
	struct fixture *a = rw_fixture(state), *b = rw_fixture(state);
	uint8_t x[512], y[512], back[512];
	fill(x, 512, 1);
	fill(y, 512, 2);
	assert_int_equal(blk_io(a, VIRTIO_BLK_T_OUT, 3, x, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(b, VIRTIO_BLK_T_OUT, 3, y, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(blk_io(a, VIRTIO_BLK_T_IN, 3, back, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, x, 512);
	assert_int_equal(blk_io(b, VIRTIO_BLK_T_IN, 3, back, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, y, 512);
	fixture_free(a);
	fixture_free(b);
}

/* ---- Changing the image and the limiter after boot (virtio_blk_update) ---- */

#define ISR_CONFIG_CHANGE 2 /* virtio 1.2, 4.2.2: InterruptStatus bit 1 */

/* A second image of `bytes`, each sector of it filled by fill(seed). */
static int other_image(char *path, size_t len, uint64_t bytes, unsigned seed)
{
	snprintf(path, len, "/tmp/argon-blk-new-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	static uint8_t sector[512];
	for (uint64_t s = 0; s < 64; s++) {
		fill(sector, sizeof(sector), seed + (unsigned)s);
		assert_int_equal(pwrite(fd, sector, 512, (off_t)(s * 512)), 512);
	}
	return fd;
}

static uint64_t capacity_of(struct fixture *f)
{
	uint64_t cap;
	virtio_blk_ops.read_config(&f->t.dev, 0, (uint8_t *)&cap, 8);
	return le64toh(cap);
}

static void update_moves_io_to_the_new_image(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t a[512], b[512], back[512];
	fill(a, 512, 1);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 10, a, 512), VIRTIO_BLK_S_OK);
	char path[64];
	int fd = other_image(path, sizeof(path), IMAGE_BYTES / 2, 100);
	uint32_t gen = f->t.dev.config_generation;
	vtd_interrupts(&f->t);
	__atomic_store_n(&f->t.dev.interrupt_status, 0, __ATOMIC_RELEASE);

	assert_int_equal(virtio_blk_update(&f->t.dev, path, NULL), 0);
	assert_int_equal(capacity_of(f), SECTORS / 2);
	assert_true(f->t.dev.config_generation != gen);
	assert_true(f->t.dev.interrupt_status & ISR_CONFIG_CHANGE);
	assert_int_equal(vtd_interrupts(&f->t), 1);
	/* Reads see the new image, writes land in it, the old one is left alone. */
	fill(b, 512, 110);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 10, back, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, b, 512);
	fill(b, 512, 7);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 20, b, 512), VIRTIO_BLK_S_OK);
	assert_int_equal(pread(fd, back, 512, 20 * 512), 512);
	assert_memory_equal(back, b, 512);
	assert_int_equal(pread(f->fd, back, 512, 20 * 512), 512);
	assert_int_equal(back[0], 0);
	/* The new capacity holds: past it is an error now. */
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, SECTORS / 2, back, 512), VIRTIO_BLK_S_IOERR);
	/* The old image was closed: its lock is free for someone else. */
	struct virtio_blk *other;
	struct drive_config cfg = { .drive_id = "old", .path_on_host = f->path };
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), 0);
	virtio_blk_backend_free(other);
	/* The new one is locked by the drive. */
	cfg.path_on_host = path;
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &other), -EBUSY);
	fixture_free(f);
	close(fd);
	unlink(path);
}

/* Each refusal leaves the old image serving, its capacity and config untouched. */
static void update_to_a_bad_image_keeps_the_old_one(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint8_t a[512], back[512];
	fill(a, 512, 3);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 4, a, 512), VIRTIO_BLK_S_OK);
	char path[64];
	int fd = other_image(path, sizeof(path), IMAGE_BYTES, 50);
	struct virtio_blk *holder; /* another VMM holding the new image */
	struct drive_config cfg = { .drive_id = "holder", .path_on_host = path };
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &holder), 0);
	uint32_t gen = f->t.dev.config_generation;
	struct rate_limiter_config rl = { .ops = { .size = 1, .refill_time_ms = 100000 } };
	const struct {
		const char *path;
		int err;
	} bad[] = { { "/nonexistent/argon-disk.img", -ENOENT }, { path, -EBUSY },
		    { "/dev/null", -EINVAL }, { "/tmp", -EISDIR } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(virtio_blk_update(&f->t.dev, bad[i].path, &rl), bad[i].err);
		assert_int_equal(capacity_of(f), SECTORS);
		assert_int_equal(f->t.dev.config_generation, gen);
		/* Still the old image, and the limiter that came along was not taken. */
		for (int n = 0; n < 3; n++) {
			assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 4, back, 512), VIRTIO_BLK_S_OK);
			assert_memory_equal(back, a, 512);
		}
	}
	virtio_blk_backend_free(holder);
	assert_int_equal(virtio_blk_update(&f->t.dev, path, NULL), 0);
	fixture_free(f);
	close(fd);
	unlink(path);
}

/* The path of the image already open (resized on the host): no second open (its own
 * lock would refuse it), just the new size. */
static void update_to_the_same_image_rereads_its_size(void **state)
{
	struct fixture *f = rw_fixture(state);
	uint32_t gen = f->t.dev.config_generation;
	assert_int_equal(ftruncate(f->fd, IMAGE_BYTES * 2), 0);
	assert_int_equal(virtio_blk_update(&f->t.dev, f->path, NULL), 0);
	assert_int_equal(capacity_of(f), SECTORS * 2);
	assert_true(f->t.dev.config_generation != gen);
	uint8_t buf[512];
	fill(buf, 512, 9);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, SECTORS * 2 - 1, buf, 512), VIRTIO_BLK_S_OK);
	fixture_free(f);
}

/* Requests in flight when the image changes finish on the old image and are answered. */
static void update_waits_for_io_in_flight(void **state)
{
	struct fixture *f = rw_fixture(state);
	enum { N = 64, LEN = 64 << 10 };
	uint8_t *st[N];
	for (int i = 0; i < N; i++) {
		void *hva;
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_OUT, (uint64_t)i * 128), 16, false },
				       { vtd_alloc(&f->t, LEN, &hva), LEN, false },
				       { status_buf(f, &st[i]), 1, true } };
		fill(hva, LEN, (unsigned)i);
		vtd_add_chain(&f->t, 0, b, 3);
	}
	vtd_kick(&f->t, 0);
	char path[64];
	int fd = other_image(path, sizeof(path), IMAGE_BYTES, 0);
	assert_int_equal(virtio_blk_update(&f->t.dev, path, NULL), 0);
	uint32_t id, len;
	int done = 0;
	while (vtd_get_used(&f->t, 0, &id, &len))
		done++;
	assert_int_equal(done, N); /* answered by the update itself, not later */
	static uint8_t want[LEN], got[LEN];
	for (int i = 0; i < N; i++) {
		assert_int_equal(*st[i], VIRTIO_BLK_S_OK);
		fill(want, LEN, (unsigned)i);
		assert_int_equal(pread(f->fd, got, LEN, (off_t)i * 128 * 512), LEN);
		assert_memory_equal(got, want, LEN);
	}
	fixture_free(f);
	close(fd);
	unlink(path);
}

static void update_keeps_a_read_only_drive_read_only(void **state)
{
	struct drive_opts o = { .read_only = true, .engine = *(enum block_engine *)*state,
				.features = RW_FEATURES | F(VIRTIO_BLK_F_RO) };
	struct fixture *f = fixture_new(&o);
	char path[64];
	int fd = other_image(path, sizeof(path), IMAGE_BYTES, 20);
	/* A reader shares the new image with us; a writer is kept out afterwards. */
	struct virtio_blk *reader, *writer;
	struct drive_config cfg = { .drive_id = "r", .path_on_host = path, .is_read_only = true };
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &reader), 0);
	assert_int_equal(virtio_blk_update(&f->t.dev, path, NULL), 0);
	cfg.is_read_only = false;
	assert_int_equal(virtio_blk_backend_new(&cfg, BLOCK_ENGINE_AUTO, &writer), -EBUSY);
	uint8_t junk[512] = { 0 }, back[512], want[512];
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_OUT, 0, junk, 512), VIRTIO_BLK_S_IOERR);
	fill(want, 512, 20);
	assert_int_equal(blk_io(f, VIRTIO_BLK_T_IN, 0, back, 512), VIRTIO_BLK_S_OK);
	assert_memory_equal(back, want, 512);
	virtio_blk_backend_free(reader);
	fixture_free(f);
	close(fd);
	unlink(path);
}

/* N reads of sector 0, all offered at once; returns the ms until all completed. */
static uint64_t timed_reads(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false },
				       { vtd_alloc(&f->t, 512, NULL), 512, true },
				       { vtd_alloc(&f->t, 1, NULL), 1, true } };
		vtd_add_chain(&f->t, 0, b, 3);
	}
	uint64_t start = mono_ms();
	vtd_kick(&f->t, 0);
	int done = 0;
	uint32_t id, len;
	while (done < n && vtd_wait_used(&f->t, 0, 3000))
		while (vtd_get_used(&f->t, 0, &id, &len))
			done++;
	assert_int_equal(done, n);
	return mono_ms() - start;
}

static void update_replaces_the_rate_limiter(void **state)
{
	struct fixture *f = rw_fixture(state); /* unlimited */
	struct virtio_blk_stats s;
	timed_reads(f, 6);
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.throttled, 0);
	/* 2 ops per 100 ms from now: 6 reads take at least 200 ms. */
	struct rate_limiter_config two = { .ops = { .size = 2, .refill_time_ms = 100 } };
	assert_int_equal(virtio_blk_update(&f->t.dev, NULL, &two), 0);
	assert_int_equal(capacity_of(f), SECTORS);
	assert_true(timed_reads(f, 6) >= 190);
	virtio_blk_get_stats(&f->t.dev, &s);
	uint64_t throttled = s.throttled;
	assert_true(throttled > 0);
	/* Unlimited again: nothing is held back, and the count of past throttling stays. */
	struct rate_limiter_config none = { 0 };
	assert_int_equal(virtio_blk_update(&f->t.dev, NULL, &none), 0);
	timed_reads(f, 6);
	virtio_blk_get_stats(&f->t.dev, &s);
	assert_int_equal(s.throttled, throttled);
	fixture_free(f);
}

/* A request the old limiter holds back is let through by a new one at once. */
static void update_releases_a_parked_request(void **state)
{
	struct drive_opts o = { .engine = *(enum block_engine *)*state,
				.rl = { .ops = { .size = 1, .refill_time_ms = 60000 } } };
	struct fixture *f = fixture_new(&o);
	uint8_t *st[2];
	for (int i = 0; i < 2; i++) {
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, 0), 16, false },
				       { vtd_alloc(&f->t, 512, NULL), 512, true },
				       { status_buf(f, &st[i]), 1, true } };
		vtd_add_chain(&f->t, 0, b, 3);
	}
	vtd_kick(&f->t, 0);
	uint32_t id, len;
	assert_true(vtd_wait_used(&f->t, 0, 2000));
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
	assert_false(vtd_wait_used(&f->t, 0, 100)); /* the second waits a minute */
	struct rate_limiter_config none = { 0 };
	assert_int_equal(virtio_blk_update(&f->t.dev, NULL, &none), 0);
	assert_true(vtd_wait_used(&f->t, 0, 2000));
	assert_int_equal(*st[1], VIRTIO_BLK_S_OK);
	fixture_free(f);
}

/* A parked request the new, smaller image no longer holds fails; the rest go on. */
static void update_fails_a_parked_request_past_the_new_end(void **state)
{
	struct drive_opts o = { .engine = *(enum block_engine *)*state,
				.rl = { .ops = { .size = 1, .refill_time_ms = 60000 } } };
	struct fixture *f = fixture_new(&o);
	uint8_t *st[2];
	for (int i = 0; i < 2; i++) {
		struct vtd_buf b[] = { { header(f, VIRTIO_BLK_T_IN, SECTORS - 8), 16, false },
				       { vtd_alloc(&f->t, 4096, NULL), 4096, true },
				       { status_buf(f, &st[i]), 1, true } };
		vtd_add_chain(&f->t, 0, b, 3);
	}
	vtd_kick(&f->t, 0);
	uint32_t id, len;
	assert_true(vtd_wait_used(&f->t, 0, 2000));
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
	assert_int_equal(*st[0], VIRTIO_BLK_S_OK);
	char path[64];
	int fd = other_image(path, sizeof(path), IMAGE_BYTES / 4, 0);
	assert_int_equal(virtio_blk_update(&f->t.dev, path, NULL), 0);
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
	assert_int_equal(*st[1], VIRTIO_BLK_S_IOERR);
	fixture_free(f);
	close(fd);
	unlink(path);
}

static void update_refuses_other_devices(void **state)
{
	struct virtio_device not_blk = { .ops = &(struct virtio_device_ops){ .name = "x" } };
	assert_int_equal(virtio_blk_update(&not_blk, "/tmp/x", NULL), -EINVAL);
	assert_int_equal(virtio_blk_update(NULL, NULL, NULL), -EINVAL);
}

/* ---- Merging adjacent requests ---- */

/* A request offered without a kick: data in nbufs equal buffers. */
struct pending {
	uint16_t head;
	uint8_t *st, *data;
	uint32_t len, used_len;
};

static void offer(struct fixture *f, uint32_t type, uint64_t sector, uint32_t len, int nbufs,
		  struct pending *p)
{
	struct vtd_buf b[8] = { { header(f, type, sector), 16, false } };
	bool in = type == VIRTIO_BLK_T_IN;
	p->len = len;
	p->used_len = UINT32_MAX;
	uint64_t gpa = len ? vtd_alloc(&f->t, len, (void **)&p->data) : 0;
	int n = 1;
	for (int i = 0; i < nbufs && len; i++, n++)
		b[n] = (struct vtd_buf){ gpa + (uint64_t)i * (len / nbufs), len / nbufs, in };
	if (len && !in)
		fill(p->data, len, (unsigned)sector);
	b[n++] = (struct vtd_buf){ status_buf(f, &p->st), 1, true };
	p->head = vtd_add_chain(&f->t, 0, b, n);
}

/* Kicks once and waits for all n; order[k] (when given): the index answered k-th. */
static void kick_and_wait(struct fixture *f, struct pending *p, int n, int *order)
{
	vtd_kick(&f->t, 0);
	int done = 0;
	uint32_t id, len;
	while (done < n && vtd_wait_used(&f->t, 0, 5000))
		while (vtd_get_used(&f->t, 0, &id, &len)) {
			int i = 0;
			while (i < n && p[i].head != id)
				i++;
			assert_true(i < n);
			p[i].used_len = len;
			if (order)
				order[done] = i;
			done++;
		}
	assert_int_equal(done, n);
}

static uint64_t submitted(struct fixture *f)
{
	return block_backend_submitted(virtio_blk_block_backend(f->blk));
}

/* Reads and writes for adjacent sectors in one notification are one operation each,
 * and every request gets its own data, status and used length. */
static void adjacent_requests_are_merged(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t image[64 * 512];
	fill(image, sizeof(image), 7);
	assert_int_equal(pwrite(f->fd, image, sizeof(image), 0), sizeof(image));
	static const uint64_t sector[4] = { 0, 8, 24, 48 }, count[4] = { 8, 16, 24, 16 };
	struct pending p[4];
	for (int i = 0; i < 4; i++)
		offer(f, VIRTIO_BLK_T_IN, sector[i], (uint32_t)count[i] * 512, i + 1, &p[i]);
	uint64_t before = submitted(f);
	kick_and_wait(f, p, 4, NULL);
	assert_int_equal(submitted(f) - before, 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
		assert_int_equal(p[i].used_len, p[i].len + 1);
		assert_memory_equal(p[i].data, image + sector[i] * 512, p[i].len);
	}
	for (int i = 0; i < 3; i++)
		offer(f, VIRTIO_BLK_T_OUT, 100 + (uint64_t)i * 8, 4096, 2, &p[i]);
	before = submitted(f);
	kick_and_wait(f, p, 3, NULL);
	assert_int_equal(submitted(f) - before, 1);
	uint8_t back[4096];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
		assert_int_equal(p[i].used_len, 1);
		assert_int_equal(pread(f->fd, back, 4096, (100 + i * 8) * 512), 4096);
		assert_memory_equal(back, p[i].data, 4096);
	}
	struct virtio_blk_stats st;
	virtio_blk_get_stats(&f->t.dev, &st);
	assert_int_equal(st.read_ops, 4);
	assert_int_equal(st.read_bytes, 64 * 512);
	assert_int_equal(st.write_ops, 3);
	assert_int_equal(st.write_bytes, 3 * 4096);
	fixture_free(f);
}

/* Reads merge only up to 128 KiB and a read batch that size is started (and, from
 * the page cache, answered) before the next chain is taken, so a driver reading big
 * blocks gets each one as it is copied; writes still merge into one operation. */
static void big_reads_stream_and_big_writes_merge(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct pending p[4];
	for (int i = 0; i < 4; i++)
		offer(f, VIRTIO_BLK_T_IN, (uint64_t)i * 128, 64 * 1024, 1, &p[i]);
	uint64_t before = submitted(f);
	kick_and_wait(f, p, 4, NULL);
	assert_int_equal(submitted(f) - before, 2); /* two 128 KiB reads */
	for (int i = 0; i < 4; i++)
		offer(f, VIRTIO_BLK_T_IN, 1024 + (uint64_t)i * 256, 128 * 1024, 1, &p[i]);
	before = submitted(f);
	kick_and_wait(f, p, 4, NULL);
	assert_int_equal(submitted(f) - before, 4);
	for (int i = 0; i < 4; i++)
		offer(f, VIRTIO_BLK_T_OUT, 2048 + (uint64_t)i * 256, 128 * 1024, 1, &p[i]);
	before = submitted(f);
	kick_and_wait(f, p, 4, NULL);
	assert_int_equal(submitted(f) - before, 1); /* one 512 KiB write */
	for (int i = 0; i < 4; i++)
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
	fixture_free(f);
}

/* Gaps, overlaps, a request that ends where the batch starts and other types keep
 * requests apart; writes never merge across a FLUSH, which is answered only after
 * the write before it. */
static void only_adjacent_requests_of_one_kind_merge(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct pending p[6];
	offer(f, VIRTIO_BLK_T_IN, 0, 4096, 1, &p[0]);
	offer(f, VIRTIO_BLK_T_IN, 16, 4096, 1, &p[1]);	/* a gap */
	offer(f, VIRTIO_BLK_T_IN, 8, 4096, 1, &p[2]);	/* ends where p[1] starts */
	offer(f, VIRTIO_BLK_T_IN, 12, 4096, 1, &p[3]);	/* overlaps p[2] */
	offer(f, VIRTIO_BLK_T_OUT, 20, 4096, 1, &p[4]); /* adjacent, but a write */
	offer(f, VIRTIO_BLK_T_IN, 28, 4096, 1, &p[5]);	/* adjacent to the write */
	uint64_t before = submitted(f);
	kick_and_wait(f, p, 6, NULL);
	assert_int_equal(submitted(f) - before, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
	offer(f, VIRTIO_BLK_T_OUT, 200, 4096, 1, &p[0]);
	offer(f, VIRTIO_BLK_T_FLUSH, 0, 0, 0, &p[1]);
	offer(f, VIRTIO_BLK_T_OUT, 208, 4096, 1, &p[2]);
	offer(f, VIRTIO_BLK_T_OUT, 216, 4096, 1, &p[3]);
	int order[4];
	before = submitted(f);
	kick_and_wait(f, p, 4, order);
	assert_int_equal(submitted(f) - before, 3); /* write, flush, the two after merged */
	for (int i = 0; i < 4; i++)
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
	int write_at = 0, flush_at = 0;
	for (int k = 0; k < 4; k++) {
		write_at = order[k] == 0 ? k : write_at;
		flush_at = order[k] == 1 ? k : flush_at;
	}
	assert_true(write_at < flush_at);
	fixture_free(f);
}

/* A failed merged operation fails every request in it, each counted; the device
 * goes on working and merging. */
static void a_failed_merged_read_fails_every_request(void **state)
{
	struct fixture *f = rw_fixture(state);
	struct block_backend *bb = virtio_blk_block_backend(f->blk);
	struct pending p[3];
	block_backend_inject_error(bb, BLOCK_OP_READ, EIO);
	for (int i = 0; i < 3; i++)
		offer(f, VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, 1, &p[i]);
	uint64_t before = submitted(f);
	kick_and_wait(f, p, 3, NULL);
	assert_int_equal(submitted(f) - before, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_IOERR);
		assert_int_equal(p[i].used_len, 1); /* the status byte, no data */
	}
	struct virtio_blk_stats st;
	virtio_blk_get_stats(&f->t.dev, &st);
	assert_int_equal(st.io_errors, 3);
	assert_int_equal(st.read_ops, 0);
	block_backend_inject_error(bb, BLOCK_OP_READ, 0);
	for (int i = 0; i < 3; i++)
		offer(f, VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, 1, &p[i]);
	kick_and_wait(f, p, 3, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
	fixture_free(f);
}

/* The image shrank under a merged read: it comes back short, then at the end of the
 * file. The request read whole is answered OK with its data; the one cut in the
 * middle and the one past the end fail. */
static void a_short_merged_read_completes_what_it_read(void **state)
{
	struct fixture *f = rw_fixture(state);
	static uint8_t image[24 * 512];
	fill(image, sizeof(image), 3);
	uint64_t start = SECTORS - 24;
	assert_int_equal(pwrite(f->fd, image, sizeof(image), (off_t)start * 512), sizeof(image));
	assert_int_equal(ftruncate(f->fd, (off_t)(start + 12) * 512), 0);
	struct pending p[3];
	for (int i = 0; i < 3; i++)
		offer(f, VIRTIO_BLK_T_IN, start + (uint64_t)i * 8, 4096, 2, &p[i]);
	uint64_t before = submitted(f);
	kick_and_wait(f, p, 3, NULL);
	assert_int_equal(submitted(f) - before, 1);
	assert_int_equal(*p[0].st, VIRTIO_BLK_S_OK);
	assert_int_equal(p[0].used_len, 4096 + 1);
	assert_memory_equal(p[0].data, image, 4096);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_IOERR);
		assert_int_equal(p[i].used_len, 1); /* p[1] got half its data: not reported */
	}
	struct virtio_blk_stats st;
	virtio_blk_get_stats(&f->t.dev, &st);
	assert_int_equal(st.read_ops, 1);
	assert_int_equal(st.io_errors, 2);
	fixture_free(f);
}


/* 2 ops per 100 ms: the first two adjacent reads go together; each one the limiter
 * held back goes alone when its token comes, and every read gets its own data. */
static void requests_held_by_the_rate_limiter_go_alone(void **state)
{
	struct drive_opts o = { .engine = *(enum block_engine *)*state,
				.rl = { .ops = { .size = 2, .refill_time_ms = 100 } } };
	struct fixture *f = fixture_new(&o);
	static uint8_t image[48 * 512];
	fill(image, sizeof(image), 9);
	assert_int_equal(pwrite(f->fd, image, sizeof(image), 0), sizeof(image));
	enum { N = 6 };
	struct pending p[N];
	for (int i = 0; i < N; i++)
		offer(f, VIRTIO_BLK_T_IN, (uint64_t)i * 8, 4096, 1, &p[i]);
	uint64_t before = submitted(f);
	kick_and_wait(f, p, N, NULL);
	assert_true(submitted(f) - before >= N - 2);
	for (int i = 0; i < N; i++) {
		assert_int_equal(*p[i].st, VIRTIO_BLK_S_OK);
		assert_memory_equal(p[i].data, image + i * 4096, 4096);
	}
	fixture_free(f);
}

/* ---- The fallback engine ---- */

static void count_done(void *opaque, struct block_io *io)
{
	(*(int *)opaque)++;
}

/* In a child: io_uring_setup refused by seccomp, as a jailed VMM may find it. */
static int fallback_child(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return 2;
	unsetenv("ARGON_BLOCK_ENGINE");
	char path[] = "/tmp/argon-blk-XXXXXX";
	int fd = mkstemp(path);
	struct block_backend *bb;
	if (fd < 0 || ftruncate(fd, 1 << 20) ||
	    block_backend_open(path, false, "fallback", 8, BLOCK_ENGINE_AUTO, -1, &bb))
		return 3;
	unlink(path);
	if (strcmp(block_backend_engine_name(bb), "threads") != 0)
		return 4;
	static uint8_t buf[64 << 10], back[64 << 10];
	fill(buf, sizeof(buf), 8);
	struct iovec iov[2] = { { buf, 4096 }, { buf + 4096, sizeof(buf) - 4096 } };
	struct block_io io = { .op = BLOCK_OP_WRITE, .offset = 8192, .iov = iov, .iovcnt = 2,
			       .sync = true };
	int done = 0;
	if (block_backend_submit(bb, &io))
		return 5;
	block_backend_kick(bb);
	block_backend_drain(bb, count_done, &done);
	if (done != 1 || io.result || pread(fd, back, sizeof(back), 8192) != sizeof(back) ||
	    memcmp(back, buf, sizeof(buf)) != 0)
		return 6;
	block_backend_close(bb);
	return 0;
}

static void refused_io_uring_falls_back_to_threads(void **state)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fallback_child());
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, &uring), cmocka_unit_test_prestate(fn, &threads)

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		BOTH(config_space_describes_the_image),
		cmocka_unit_test_prestate(read_only_and_unsafe_drives_offer_less, &uring),
		BOTH(written_data_is_in_the_image_and_reads_back),
		BOTH(requests_split_across_many_buffers_work),
		BOTH(many_requests_in_flight_all_complete),
		BOTH(adjacent_requests_are_merged),
		BOTH(big_reads_stream_and_big_writes_merge),
		BOTH(only_adjacent_requests_of_one_kind_merge),
		BOTH(a_failed_merged_read_fails_every_request),
		BOTH(a_short_merged_read_completes_what_it_read),
		BOTH(requests_held_by_the_rate_limiter_go_alone),
		BOTH(get_id_returns_the_drive_id_nul_padded),
		BOTH(short_header_is_an_io_error),
		BOTH(chain_without_status_byte_fails_alone),
		BOTH(failed_requests_report_the_status_byte_only),
		BOTH(successful_requests_report_what_they_wrote),
		BOTH(data_in_the_wrong_direction_is_an_io_error),
		BOTH(sector_ranges_are_checked_without_overflow),
		BOTH(partial_sectors_are_an_io_error),
		BOTH(unknown_request_types_are_unsupported),
		BOTH(more_segments_than_seg_max_is_an_io_error),
		BOTH(huge_buffers_fail_alone),
		BOTH(discard_segments_are_checked),
		BOTH(read_only_drive_refuses_every_write),
		BOTH(a_second_writer_is_refused_by_the_lock),
		BOTH(discard_frees_blocks_and_reads_zeroes),
		BOTH(write_zeroes_zeroes_with_and_without_unmap),
		BOTH(write_zeroes_falls_back_where_zero_range_is_missing),
		BOTH(host_errors_fail_the_request_and_the_device_lives),
		BOTH(a_real_write_error_is_an_io_error),
		BOTH(an_image_that_shrinks_gives_io_errors),
		BOTH(rate_limiter_parks_requests_until_tokens_return),
		BOTH(reset_waits_for_io_in_flight),
		BOTH(two_drives_work_side_by_side),
		BOTH(update_moves_io_to_the_new_image),
		BOTH(update_to_a_bad_image_keeps_the_old_one),
		BOTH(update_to_the_same_image_rereads_its_size),
		BOTH(update_waits_for_io_in_flight),
		BOTH(update_keeps_a_read_only_drive_read_only),
		BOTH(update_replaces_the_rate_limiter),
		BOTH(update_releases_a_parked_request),
		BOTH(update_fails_a_parked_request_past_the_new_end),
		cmocka_unit_test(update_refuses_other_devices),
		cmocka_unit_test(refused_io_uring_falls_back_to_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
