/* virtio-rng (virtio 1.2, 5.4): the backend's pieces, for the constructor, metrics, and unit tests driving it through the fake driver. */
#ifndef ARGON_DEVICES_VIRTIO_RNG_H
#define ARGON_DEVICES_VIRTIO_RNG_H

#include <stdint.h>

#include "devices/virtio/virtio.h"
#include "devices/rate_limiter.h"

/* The entropy device's settings: Firecracker's "entropy" object (virtio_rng_kind.c). */
struct entropy_config {
	struct rate_limiter_config rate_limiter;
};

struct vm;
int virtio_rng_create(struct vm *vm, const struct entropy_config *cfg);

#define VIRTIO_RNG_MAX_CHAIN_BYTES 65536 /* random bytes given per request, at most */

struct virtio_rng_stats {
	uint64_t requests, bytes;
	uint64_t errors;    /* malformed chains, getrandom failures */
	uint64_t throttled; /* times the rate limiter said wait */
};

struct virtio_rng;

extern const struct virtio_device_ops virtio_rng_ops;

/* The backend, with the rate limiter from cfg. It joins the event loop of the device
 * it is attached to (virtio_rng_create, or the first activation under a test driver).
 * Returns 0 or -errno. */
int virtio_rng_backend_new(const struct entropy_config *cfg, struct virtio_rng **out);
/* Frees it once no event loop can call it any more (tests: after vtd_destroy). */
void virtio_rng_backend_free(struct virtio_rng *rng);
void virtio_rng_get_stats(struct virtio_device *dev, struct virtio_rng_stats *out);

/* Snapshots (device_kind.h's hooks): the limiter's buckets. */
struct section_in;
struct snap_writer;
void virtio_rng_quiesce(struct virtio_device *dev);
void virtio_rng_save(struct virtio_device *dev, struct snap_writer *w);
int virtio_rng_restore(struct virtio_device *dev, struct section_in *in);

#endif
