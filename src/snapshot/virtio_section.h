/* A virtio device's section in the snapshot file (issue 9): kind = its device kind's
 * section ("drives", "network-interfaces", "vsock", "entropy", "balloon"), id = the
 * user's id (the section name for a kind of one device), version 1:
 *
 *   config     blob: the device's configuration as the kind's to_json writes it
 *              (at most DEVICE_CONFIG_MAX bytes), read back by its parse_json, so a
 *              restore needs only the state and memory files
 *   transport  u32 device_id, u32 num_queues, u64 mmio_base, u32 gsi, u32 status,
 *              u32 device_features_sel driver_features_sel queue_sel,
 *              u64 device_features driver_features, u32 interrupt_status,
 *              u32 config_generation, u32 queue count (num_queues), each queue:
 *              u16 size, u8 ready, u64 desc avail used, u8 event_idx indirect,
 *              u16 last_avail_idx used_idx signalled_used, u8 signalled_valid
 *   own        what the kind's save hook writes (device_kind.h)
 *
 * Every field is checked against the device the restore built from the same
 * configuration and against the restored memory before anything runs: the same
 * slot and interrupt, the same features offered, no feature accepted that was not
 * offered (virtio 1.2, 3.1.1), known status bits in an order a driver can reach
 * (2.1), queue sizes powers of two up to the device's maximum (2.7), ring
 * addresses aligned inside guest RAM (2.7.10.1), and indices within a ring's reach
 * of the rings in memory (2.7.13.3). */
#ifndef ARGON_SNAPSHOT_VIRTIO_SECTION_H
#define ARGON_SNAPSHOT_VIRTIO_SECTION_H

#include <stddef.h>

#include "devices/device_kind.h"
#include "devices/rate_limiter.h"
#include "devices/virtio/virtio.h"
#include "snapshot/section_in.h"
#include "snapshot/snapfile.h"

#define DEVICE_STATE_SECTION_VERSION 1
#define DEVICE_CONFIG_MAX 16384

/* The transport's part of the section. */
void virtio_section_put(struct snap_writer *w, const struct virtio_transport_state *s);
/* Reads it and checks it against dev (its ops, offered features, slot, guest memory). */
void virtio_section_get(struct section_in *in, const struct virtio_device *dev,
			struct virtio_transport_state *s);

/* A rate limiter's buckets (rate_limiter.h): per bucket u64 tokens, u64 burst_left,
 * u64 since_refill_ns (two's complement). get puts them into rl, whose configuration
 * is set, refusing field when they do not fit it. */
void snap_put_rate_limiter(struct snap_writer *w, const struct rate_limiter *rl);
void section_in_rate_limiter(struct section_in *in, const char *field, struct rate_limiter *rl);
/* A flag byte: 0 or 1, else field is refused. */
bool section_in_flag(struct section_in *in, const char *field);

/* Writes the section of device d, whose configuration is conf: config, transport,
 * the kind's own fields. Returns 0 or the writer's -errno. */
int device_section_write(struct snap_writer *w, const struct device *d, const void *conf);
/* The configuration in the section kind->section/id: parsed by the kind into conf
 * (fresh from config_device_new), its id checked against the section's. Returns 0,
 * or -EINVAL with one line in err. */
int device_section_config(const struct snap_reader *r, const char *file,
			  const struct device_kind *kind, const char *id, void *conf, char *err,
			  size_t errlen);
/* Reads the rest of d's section into d (built from that configuration): the
 * transport checked, the kind's own state, then the transport put back and the
 * device resumed (virtio_mmio_set_state, virtio_mmio_resume). Returns 0, or -EINVAL
 * with one line in err. */
int device_section_read(const struct snap_reader *r, const char *file, struct device *d,
			char *err, size_t errlen);

#endif
