/* A virtio device's section: configuration, transport, the kind's own state
 * (virtio_section.h has the layout and the checks). */
#include "snapshot/virtio_section.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_json.h"
#include "vmm/timings.h"
#include "vmm/vm.h"

#define KNOWN_STATUS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
		      VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
		      VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)
#define KNOWN_INTERRUPTS (VIRTIO_INTERRUPT_USED_BUFFER | VIRTIO_INTERRUPT_CONFIG_CHANGE)

/* ---- writing ---- */

static void put_queue(struct snap_writer *w, const struct virtq_state *q)
{
	snap_put_u16(w, q->size);
	snap_put_u8(w, q->ready);
	snap_put_u64(w, q->desc_gpa);
	snap_put_u64(w, q->avail_gpa);
	snap_put_u64(w, q->used_gpa);
	snap_put_u8(w, q->event_idx);
	snap_put_u8(w, q->indirect);
	snap_put_u16(w, q->last_avail_idx);
	snap_put_u16(w, q->used_idx);
	snap_put_u16(w, q->signalled_used);
	snap_put_u8(w, q->signalled_valid);
}

void virtio_section_put(struct snap_writer *w, const struct virtio_transport_state *s)
{
	snap_put_u32(w, s->device_id);
	snap_put_u32(w, s->num_queues);
	snap_put_u64(w, s->mmio_base);
	snap_put_u32(w, s->gsi);
	snap_put_u32(w, s->status);
	snap_put_u32(w, s->device_features_sel);
	snap_put_u32(w, s->driver_features_sel);
	snap_put_u32(w, s->queue_sel);
	snap_put_u64(w, s->device_features);
	snap_put_u64(w, s->driver_features);
	snap_put_u32(w, s->interrupt_status);
	snap_put_u32(w, s->config_generation);
	snap_put_u32(w, s->num_queues);
	for (uint32_t q = 0; q < s->num_queues && q < VIRTIO_MAX_QUEUES; q++)
		put_queue(w, &s->queues[q]);
}

void snap_put_rate_limiter(struct snap_writer *w, const struct rate_limiter *rl)
{
	struct rate_limiter_state s;
	rate_limiter_get_state(rl, timings_now(), &s);
	const struct token_bucket_state *b[] = { &s.bandwidth, &s.ops };
	for (int i = 0; i < 2; i++) {
		snap_put_u64(w, b[i]->tokens);
		snap_put_u64(w, b[i]->burst_left);
		snap_put_u64(w, (uint64_t)b[i]->since_refill_ns);
	}
}

/* ---- reading ---- */

bool section_in_flag(struct section_in *in, const char *field)
{
	uint8_t v = snap_get_u8(&in->c);
	if (!in->c.failed && v > 1)
		section_in_fail(in, field, "%u: expected 0 or 1", v);
	return v == 1;
}

void section_in_rate_limiter(struct section_in *in, const char *field, struct rate_limiter *rl)
{
	struct rate_limiter_state s;
	struct token_bucket_state *b[] = { &s.bandwidth, &s.ops };
	for (int i = 0; i < 2; i++) {
		b[i]->tokens = snap_get_u64(&in->c);
		b[i]->burst_left = snap_get_u64(&in->c);
		b[i]->since_refill_ns = (int64_t)snap_get_u64(&in->c);
	}
	if (!in->c.failed && !in->bad && rate_limiter_set_state(rl, &s, timings_now()))
		section_in_fail(in, field, "tokens or burst beyond the configured buckets, or a "
				"debt over %llu s", RATE_LIMITER_MAX_DEBT_NS / 1000000000ULL);
}

static void get_queue(struct section_in *in, struct virtq_state *q)
{
	q->size = snap_get_u16(&in->c);
	q->ready = section_in_flag(in, "queue.ready");
	q->desc_gpa = snap_get_u64(&in->c);
	q->avail_gpa = snap_get_u64(&in->c);
	q->used_gpa = snap_get_u64(&in->c);
	q->event_idx = section_in_flag(in, "queue.event_idx");
	q->indirect = section_in_flag(in, "queue.indirect");
	q->last_avail_idx = snap_get_u16(&in->c);
	q->used_idx = snap_get_u16(&in->c);
	q->signalled_used = snap_get_u16(&in->c);
	q->signalled_valid = section_in_flag(in, "queue.signalled_valid");
}

/* The rings of a ready queue: aligned (2.7.10.1) and inside guest RAM. */
static bool rings_fit(const struct guest_mem *mem, const struct virtq_state *q)
{
	uint64_t n = q->size;
	return !(q->desc_gpa % 16 || q->avail_gpa % 2 || q->used_gpa % 4) &&
	       guest_mem_ptr(mem, q->desc_gpa, 16 * n) &&
	       guest_mem_ptr(mem, q->avail_gpa, 6 + 2 * n) &&
	       guest_mem_ptr(mem, q->used_gpa, 6 + 8 * n);
}

static uint16_t ring_idx(const struct guest_mem *mem, uint64_t ring_gpa)
{
	const volatile uint16_t *p = guest_mem_ptr(mem, ring_gpa + 2, 2);
	return *p;
}

/* 2.7.13.3: the driver is never more than a ring ahead of the device, and the
 * device never answers more than it took; the used index in memory is the one the
 * device last published (2.7.8). */
static void check_indices(struct section_in *in, const struct guest_mem *mem,
			  const struct virtq_state *q, char *field, size_t len, uint32_t i)
{
	uint16_t avail = ring_idx(mem, q->avail_gpa), used = ring_idx(mem, q->used_gpa);
	snprintf(field, len, "queues[%u].last_avail_idx", i);
	if ((uint16_t)(avail - q->last_avail_idx) > q->size)
		section_in_fail(in, field, "%u: the driver's available index is %u, more than "
				"the queue size %u ahead", q->last_avail_idx, avail, q->size);
	snprintf(field, len, "queues[%u].used_idx", i);
	if ((uint16_t)(q->last_avail_idx - q->used_idx) > q->size)
		section_in_fail(in, field, "%u: more than the queue size %u behind last_avail_idx "
				"%u", q->used_idx, q->size, q->last_avail_idx);
	else if (used != q->used_idx)
		section_in_fail(in, field, "%u: the used ring in memory says %u", q->used_idx, used);
}

static void check_queue(struct section_in *in, const struct virtio_device *dev,
			uint64_t accepted, const struct virtq_state *q, uint32_t i)
{
	char field[48];
	uint16_t max = dev->ops->queue_max_size;
	bool pow2 = q->size && !(q->size & (q->size - 1));
	snprintf(field, sizeof(field), "queues[%u].size", i);
	if (q->size > max || (q->ready && !pow2))
		section_in_fail(in, field, "%u: expected a power of two up to %u", q->size, max);
	if (in->bad || !q->ready)
		return;
	snprintf(field, sizeof(field), "queues[%u].event_idx", i);
	if (q->event_idx != ((accepted >> VIRTIO_F_EVENT_IDX) & 1) ||
	    q->indirect != ((accepted >> VIRTIO_F_INDIRECT_DESC) & 1))
		section_in_fail(in, field, "event_idx/indirect differ from the accepted features");
	snprintf(field, sizeof(field), "queues[%u].desc", i);
	if (!in->bad && !rings_fit(&dev->vm->mem, q))
		section_in_fail(in, field, "rings at 0x%llx, 0x%llx, 0x%llx (size %u) are not "
				"aligned inside guest memory", (unsigned long long)q->desc_gpa,
				(unsigned long long)q->avail_gpa,
				(unsigned long long)q->used_gpa, q->size);
	if (!in->bad)
		check_indices(in, &dev->vm->mem, q, field, sizeof(field), i);
}

/* 3.1.1 and 2.1: what a driver can have reached with what this device offers. */
static void check_negotiation(struct section_in *in, const struct virtio_device *dev,
			      const struct virtio_transport_state *s)
{
	if (s->device_features != dev->device_features)
		section_in_fail(in, "device_features", "0x%llx, but this device offers 0x%llx",
				(unsigned long long)s->device_features,
				(unsigned long long)dev->device_features);
	else if (s->driver_features & ~s->device_features)
		section_in_fail(in, "driver_features", "0x%llx accepts features not offered (0x%llx)",
				(unsigned long long)s->driver_features,
				(unsigned long long)(s->driver_features & ~s->device_features));
	else if (s->status & ~(uint32_t)KNOWN_STATUS)
		section_in_fail(in, "status", "0x%x has unknown bits", s->status);
	else if ((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_FEATURES_OK))
		section_in_fail(in, "status", "0x%x: DRIVER_OK without FEATURES_OK", s->status);
	else if ((s->status & VIRTIO_STATUS_FEATURES_OK) &&
		 !((s->driver_features >> VIRTIO_F_VERSION_1) & 1))
		section_in_fail(in, "status", "FEATURES_OK without VERSION_1 accepted");
	else if (s->interrupt_status & ~(uint32_t)KNOWN_INTERRUPTS)
		section_in_fail(in, "interrupt_status", "0x%x has unknown bits", s->interrupt_status);
}

static void check_identity(struct section_in *in, const struct virtio_device *dev,
			   const struct virtio_transport_state *s)
{
	if (s->device_id != dev->ops->device_id)
		section_in_fail(in, "device_id", "%u: this section's kind is device %u",
				s->device_id, dev->ops->device_id);
	else if (s->num_queues != dev->ops->num_queues)
		section_in_fail(in, "num_queues", "%u: the device has %u", s->num_queues,
				dev->ops->num_queues);
	else if (s->mmio_base != dev->mmio_base || s->gsi != dev->gsi)
		section_in_fail(in, "mmio_base", "0x%llx GSI %u: this VM put the device at 0x%llx "
				"GSI %u", (unsigned long long)s->mmio_base, s->gsi,
				(unsigned long long)dev->mmio_base, dev->gsi);
}

static void get_registers(struct section_in *in, struct virtio_transport_state *s)
{
	s->device_id = snap_get_u32(&in->c);
	s->num_queues = snap_get_u32(&in->c);
	s->mmio_base = snap_get_u64(&in->c);
	s->gsi = snap_get_u32(&in->c);
	s->status = snap_get_u32(&in->c);
	s->device_features_sel = snap_get_u32(&in->c);
	s->driver_features_sel = snap_get_u32(&in->c);
	s->queue_sel = snap_get_u32(&in->c);
	s->device_features = snap_get_u64(&in->c);
	s->driver_features = snap_get_u64(&in->c);
	s->interrupt_status = snap_get_u32(&in->c);
	s->config_generation = snap_get_u32(&in->c);
}

void virtio_section_get(struct section_in *in, const struct virtio_device *dev,
			struct virtio_transport_state *s)
{
	memset(s, 0, sizeof(*s));
	get_registers(in, s);
	if (!in->c.failed)
		check_identity(in, dev, s);
	if (!in->c.failed && !in->bad)
		check_negotiation(in, dev, s);
	uint32_t n = section_in_count(in, "queues", VIRTIO_MAX_QUEUES);
	if (!in->c.failed && !in->bad && n != dev->ops->num_queues)
		section_in_fail(in, "queues", "%u: the device has %u", n, dev->ops->num_queues);
	for (uint32_t q = 0; q < n && !in->c.failed && !in->bad; q++) {
		get_queue(in, &s->queues[q]);
		if (!in->c.failed && !in->bad)
			check_queue(in, dev, s->driver_features, &s->queues[q], q);
	}
}
