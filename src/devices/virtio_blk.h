/* virtio-blk over a raw image (virtio 1.2, 5.2): the pieces the constructor, the metrics and the unit tests (which drive the device through
 * the fake driver) share. */
#ifndef ARGON_DEVICES_VIRTIO_BLK_H
#define ARGON_DEVICES_VIRTIO_BLK_H

#include <stdint.h>

#include "devices/block_backend.h"
#include "devices/virtio/virtio.h"
#include "devices/rate_limiter.h"

struct vm;

/* Firecracker's cache_type: with Writeback (argon's default) the guest sees a volatile
 * write cache and its flushes reach the disk (fdatasync) before they complete; with
 * Unsafe no flush is offered and writes are only as durable as the host's page cache. */
enum drive_cache { DRIVE_CACHE_WRITEBACK, DRIVE_CACHE_UNSAFE };

/* A drive's settings: Firecracker's drives[] entry (virtio_blk_kind.c reads them). */
struct drive_config {
	char *drive_id;	      /* drives[].drive_id */
	char *path_on_host;   /* drives[].path_on_host */
	bool is_read_only;    /* drives[].is_read_only */
	bool is_root_device;  /* drives[].is_root_device */
	enum drive_cache cache_type; /* Unsafe by default in JSON, as Firecracker's */
	struct rate_limiter_config rate_limiter;
	char *partuuid;		     /* drives[].partuuid: root=PARTUUID= for the root drive */
	/* drives[].io_engine: "Sync" is the thread pool, "Async" io_uring; absent is
	 * argon's choice (io_uring, else threads; ARGON_BLOCK_ENGINE overrides). */
	enum block_engine io_engine;
};

#define VIRTIO_BLK_MAX_DRIVES 8

/* Opens the image and adds the device to vm. Returns 0, or -errno after logging one
 * message naming the file at fault. */
int virtio_blk_create(struct vm *vm, const struct drive_config *cfg);

/* virtio 1.2, 5.2.3: feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* virtio 1.2, 5.2.6: request types, status values, the discard/write-zeroes segment. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1

struct virtio_blk_req_hdr {
	uint32_t type; /* little-endian, like every field here */
	uint32_t reserved;
	uint64_t sector;
};

struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* What argon offers (config space, 5.2.4). */
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2) /* data buffers per request */
#define VIRTIO_BLK_MAX_DISCARD_SECTORS 0x400000u       /* 2 GiB per segment */
#define VIRTIO_BLK_MAX_DISCARD_SEG BLOCK_IO_MAX_RANGES
#define VIRTIO_BLK_DISCARD_ALIGNMENT 8 /* sectors: 4 KiB, the usual filesystem block */
#define VIRTIO_BLK_CONFIG_SIZE 60      /* up to write_zeroes_may_unmap and padding */

/* Counters for metrics. io_errors: requests failed by the host (EIO, ENOSPC, ...);
 * bad_requests: requests refused as malformed (IOERR) or unsupported (UNSUPP);
 * throttled: times the rate limiter said wait. */
struct virtio_blk_stats {
	uint64_t read_ops, read_bytes, write_ops, write_bytes;
	uint64_t flush_ops, discard_ops, write_zeroes_ops, get_id_ops;
	uint64_t io_errors, bad_requests, throttled;
};

struct virtio_blk;

extern const struct virtio_device_ops virtio_blk_ops;

/* The backend for one drive: opens and locks cfg->path_on_host, starts its I/O engine
 * (engine: BLOCK_ENGINE_AUTO outside tests), copies the rest of cfg. It joins the event
 * loop of the device it is attached to: in virtio_blk_create, or at its first
 * activation when a test driver built the device. Returns 0 or -errno after logging
 * one message naming the drive and its file. */
int virtio_blk_backend_new(const struct drive_config *cfg, enum block_engine engine,
			   struct virtio_blk **out);
/* Closes the image and the timer and frees the backend; only once no event loop can
 * call it any more (tests: after vtd_destroy). */
void virtio_blk_backend_free(struct virtio_blk *blk);
/* A consistent copy of the counters (takes dev->lock). */
void virtio_blk_get_stats(struct virtio_device *dev, struct virtio_blk_stats *out);
/* Firecracker's "update block device" (PATCH /drives/{id} after boot); either argument
 * may be NULL. A new path_on_host is opened and locked as at creation (same read-only
 * mode, checks and messages); requests in flight on the old image finish there, then
 * the new one serves, and the driver is told the capacity through a configuration
 * change (config_generation moves). The path of the image already open (resized on the
 * host) just rereads its size. A new rate limiter replaces the buckets. Any thread
 * but the event loop's; takes dev->lock. Returns 0, or -errno after logging a message
 * naming the drive and path, with the drive unchanged (old image and limiter). */
int virtio_blk_update(struct virtio_device *dev, const char *path_on_host,
		      const struct rate_limiter_config *rl);
/* Snapshots (device_kind.h's hooks): drain, then the drive's own fields. */
struct section_in;
struct snap_writer;
void virtio_blk_quiesce(struct virtio_device *dev);
void virtio_blk_save(struct virtio_device *dev, struct snap_writer *w);
int virtio_blk_restore(struct virtio_device *dev, struct section_in *in);
/* The backend's error injection (block_backend_inject_error), for tests. */
struct block_backend *virtio_blk_block_backend(struct virtio_blk *blk);

#endif
