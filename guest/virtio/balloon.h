/* virtio-balloon driver (virtio 1.2, 5.5): follows the device's num_pages
 * target by giving it free guest pages (inflate queue, 4 KiB PFNs) or taking
 * them back (deflate queue), reports how many it holds in `actual`, and
 * answers the statistics queue. Serviced while a balloon command runs. */
#ifndef GUEST_VIRTIO_BALLOON_H
#define GUEST_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define BALLOON_BATCH 256 /* PFNs per request, as Linux sends them */
#define BALLOON_NSTATS 6

struct balloon_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

struct balloon {
	struct virtio_dev *vdev;
	struct virtq inflq, deflq, statq;
	uint32_t *pfns;	  /* the pages we hold, capacity entries */
	uint32_t held;	  /* = actual */
	uint32_t capacity;
	uint32_t batch[BALLOON_BATCH];
	struct balloon_stat stats[BALLOON_NSTATS];
	uint32_t target;  /* num_pages as last read */
	uint64_t stats_answered;
	uint64_t next_target_read; /* TSC */
};

/* The first balloon, started on first use; NULL after a message naming cmd. */
struct balloon *balloon_open(const char *cmd);

/* Re-reads num_pages when the device signalled a configuration change, or
 * once a second; returns the target. */
uint32_t balloon_target(struct balloon *b);

/* One inflate or deflate request of up to BALLOON_BATCH pages toward the
 * target, waited for, then `actual` updated. Returns the pages moved (0 at
 * the target), or -1 when out of free pages or the device did not answer. */
int balloon_step(struct balloon *b);

/* Answers a statistics request if the device made one. */
void balloon_service_stats(struct balloon *b);

/* Sleeps until the device may want something (or any interrupt). */
void balloon_idle(struct balloon *b);

/* `actual` as the device sees it (config space). */
uint32_t balloon_actual(struct balloon *b);

#endif
