/* Asynchronous I/O on one disk image (a raw file or a block device), for block
 * devices. Two engines behind one interface: io_uring (liburing) where the kernel
 * allows it, else a small pool of threads doing the same system calls. Either way
 * completions are signalled on one eventfd that the caller watches on its event
 * loop, so a slow disk stalls nothing but its own requests, and requests complete in
 * any order.
 *
 * An operation (struct block_io) may take several system calls: short transfers are
 * continued, a write-through write is followed by fdatasync, discard and write-zeroes
 * go range by range and fall back (PUNCH_HOLE -> ZERO_RANGE -> writing zeroes) where
 * the filesystem lacks a mode. The caller sees one completion with 0 or -errno.
 *
 * Not thread-safe: one caller thread at a time (the device's lock), including the
 * completion callbacks, which run inside block_backend_reap/drain. */
#ifndef ARGON_DEVICES_BLOCK_BACKEND_H
#define ARGON_DEVICES_BLOCK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct block_backend;

enum block_op {
	BLOCK_OP_READ,
	BLOCK_OP_WRITE,
	BLOCK_OP_FLUSH,	       /* fdatasync: everything completed before is on disk */
	BLOCK_OP_DISCARD,      /* deallocate (PUNCH_HOLE); a no-op where unsupported */
	BLOCK_OP_WRITE_ZEROES, /* reads return zeroes afterwards */
	BLOCK_OP_COUNT
};

enum block_engine {
	BLOCK_ENGINE_AUTO,     /* io_uring, else threads; ARGON_BLOCK_ENGINE=threads|io_uring
				* in the environment overrides (for tests) */
	BLOCK_ENGINE_IO_URING, /* io_uring or fail */
	BLOCK_ENGINE_THREADS,
};

#define BLOCK_IO_MAX_RANGES 16
#define BLOCK_IO_ZERO_IOVS 16 /* writing zeroes: 16 x 64 KiB per system call */

struct block_range {
	uint64_t offset, len; /* bytes; len > 0 */
	bool unmap;	      /* write-zeroes: may deallocate */
};

struct block_io {
	/* Set by the caller before block_backend_submit. */
	enum block_op op;
	uint64_t offset;   /* READ/WRITE: byte offset in the image */
	struct iovec *iov; /* READ/WRITE: the buffers; the backend consumes the array */
	int iovcnt;
	bool sync;	   /* WRITE: fdatasync before completing (write-through) */
	struct block_range ranges[BLOCK_IO_MAX_RANGES]; /* DISCARD/WRITE_ZEROES */
	unsigned nranges;
	void *opaque; /* the caller's */
	/* The outcome, set before the completion callback: 0 or -errno. */
	int result;
	/* The backend's progress; the caller leaves these alone. */
	int last_prim, fault;
	unsigned range, method, retries;
	uint64_t range_done;
	struct iovec zero_iov[BLOCK_IO_ZERO_IOVS];
	struct block_io *next;
};

typedef void (*block_done_fn)(void *opaque, struct block_io *io);

/* Opens path (read-write, or read-only), takes an advisory lock on it (flock: shared
 * for read-only, exclusive otherwise) so two VMMs never write one disk, and starts an
 * engine for up to depth operations in flight. name (the drive's id) and path appear
 * in every message. Completions are signalled on notify_fd, an eventfd the caller owns
 * and keeps open until bb is closed, so a device can replace its backend without
 * touching what its event loop watches; -1: bb makes its own. Returns 0, or -errno
 * after logging one message: -EBUSY when another process holds the lock, -EINVAL when
 * path is neither a regular file nor a block device, open's errno otherwise. */
int block_backend_open(const char *path, bool read_only, const char *name, unsigned depth,
		       enum block_engine engine, int notify_fd, struct block_backend **out);
/* Waits for operations in flight (their callbacks are not called), stops the engine,
 * closes the image (releasing the lock) and frees bb. NULL is ignored. */
void block_backend_close(struct block_backend *bb);

uint64_t block_backend_size(const struct block_backend *bb); /* bytes */
/* True when path names the image bb has open (same device and inode): opening it a
 * second time would collide with bb's own lock. */
bool block_backend_is_image(const struct block_backend *bb, const char *path);
/* Reads the image's size again (it was resized on the host). Returns 0, or -errno
 * after logging a message. */
int block_backend_refresh_size(struct block_backend *bb);
const char *block_backend_engine_name(const struct block_backend *bb);
/* The completion eventfd: readable when block_backend_reap has work. */
int block_backend_fd(const struct block_backend *bb);
unsigned block_backend_inflight(const struct block_backend *bb);
/* Operations block_backend_submit accepted since open (a merged request counts once). */
uint64_t block_backend_submitted(const struct block_backend *bb);

/* Queues io; it starts at the latest at the next block_backend_kick. Returns 0, or
 * -EBUSY with depth operations in flight, -EINVAL for an operation with nothing to do
 * (no buffers, no ranges) or a write to a read-only image. */
int block_backend_submit(struct block_backend *bb, struct block_io *io);
/* Starts everything queued (one system call for a batch under io_uring). Operations
 * may finish inside it (reads the page cache serves): a block_backend_reap right
 * after answers them without waiting for the completion eventfd's wakeup. */
void block_backend_kick(struct block_backend *bb);
/* Calls fn for each finished operation; returns how many. */
unsigned block_backend_reap(struct block_backend *bb, block_done_fn fn, void *opaque);
/* True when a reap would find finished operations: a memory read (the io_uring
 * completion ring), no system call, for a caller that polls. */
bool block_backend_finished(struct block_backend *bb);
/* Blocks until nothing is in flight, calling fn for each operation as it finishes. */
void block_backend_drain(struct block_backend *bb, block_done_fn fn, void *opaque);

/* Test hook: every operation of kind op submitted from now on fails with -err without
 * touching the image (err 0 clears). For tests of the error paths: ENOSPC, EIO. */
void block_backend_inject_error(struct block_backend *bb, enum block_op op, int err);

#endif
