/* virtio-balloon (virtio 1.2, 5.5): the guest gives pages back (inflate) and the host
 * frees them; the target can change at runtime, and the guest's memory statistics are
 * kept for the API. */
#ifndef ARGON_DEVICES_VIRTIO_BALLOON_H
#define ARGON_DEVICES_VIRTIO_BALLOON_H

#include <stdint.h>

#include "devices/virtio/virtio.h"
#include <stdbool.h>

/* The balloon's settings: Firecracker's "balloon" object (virtio_balloon_kind.c). */
struct balloon_config {
	uint32_t amount_mib;		   /* target size of the balloon */
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s; /* 0: no statistics queue */
};

struct vm;
int virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg);

/* virtio 1.2, 5.5.3: feature bits. */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2

/* virtio 1.2, 5.5.2: queues (statsq only with VIRTIO_BALLOON_F_STATS_VQ). */
#define VIRTIO_BALLOON_INFLATEQ 0
#define VIRTIO_BALLOON_DEFLATEQ 1
#define VIRTIO_BALLOON_STATSQ 2

#define VIRTIO_BALLOON_PFN_SHIFT 12 /* 5.5.6: page frame numbers of 4 KiB pages */

/* virtio 1.2, 5.5.6.3: statistics tags. */
enum virtio_balloon_stat_tag {
	VIRTIO_BALLOON_S_SWAP_IN = 0,
	VIRTIO_BALLOON_S_SWAP_OUT = 1,
	VIRTIO_BALLOON_S_MAJFLT = 2,
	VIRTIO_BALLOON_S_MINFLT = 3,
	VIRTIO_BALLOON_S_MEMFREE = 4,
	VIRTIO_BALLOON_S_MEMTOT = 5,
	VIRTIO_BALLOON_S_AVAIL = 6,
	VIRTIO_BALLOON_S_CACHES = 7,
	VIRTIO_BALLOON_S_HTLB_PGALLOC = 8,
	VIRTIO_BALLOON_S_HTLB_PGFAIL = 9,
	VIRTIO_BALLOON_S_NR = 16, /* room kept; tags at or above are ignored */
};

struct virtio_balloon_stats {
	uint32_t target_pages; /* num_pages: what the host asks for */
	uint32_t actual_pages; /* actual: what the guest says it holds */
	/* The guest's latest statistics: values[tag] is valid when bit tag of valid is
	 * set. reports counts the statistics buffers received. */
	uint64_t valid;
	uint64_t values[VIRTIO_BALLOON_S_NR];
	uint64_t reports;
	/* Host side: pages freed on inflate, pages the guest took back, PFNs refused
	 * (outside RAM), ranges the host could not free, malformed chains. */
	uint64_t inflated_pages, deflated_pages, bad_pfns, free_errors, chain_errors;
};

struct virtio_balloon;

/* The backend (stats queue only when stats_polling_interval_s > 0). Returns 0 or
 * -errno. */
int virtio_balloon_backend_new(const struct balloon_config *cfg, uint64_t ram_size,
			       struct virtio_balloon **out);
void virtio_balloon_backend_free(struct virtio_balloon *b);
/* The ops for a backend (they differ in whether the stats queue exists). */
const struct virtio_device_ops *virtio_balloon_ops(const struct virtio_balloon *b);

/* virtio_balloon_create, also handing back the device for the API. */
int virtio_balloon_create_dev(struct vm *vm, const struct balloon_config *cfg,
			      struct virtio_device **out);
/* Changes the target (4 KiB pages from MiB) and raises the configuration-change
 * interrupt. -EINVAL when dev is no balloon or the target exceeds guest RAM. Safe
 * from any thread (takes dev->lock). */
int virtio_balloon_set_target(struct virtio_device *dev, uint32_t amount_mib);
int virtio_balloon_get_stats(struct virtio_device *dev, struct virtio_balloon_stats *out);
/* Changes the statistics polling interval at runtime (Firecracker's PATCH
 * /balloon/statistics). Like Firecracker, statistics cannot be switched on or off
 * after creation (the queue exists or not): -EINVAL then, or when dev is no balloon. */
int virtio_balloon_set_stats_interval(struct virtio_device *dev, uint32_t seconds);

/* Snapshots (device_kind.h's hooks): target, actual, statistics and their buffer. */
struct section_in;
struct snap_writer;
void virtio_balloon_save(struct virtio_device *dev, struct snap_writer *w);
int virtio_balloon_restore(struct virtio_device *dev, struct section_in *in);

#endif
