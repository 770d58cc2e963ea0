/* Sections "vm", "serial" and "i8042" (state_sections.h has the layouts). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "snapshot/section_in.h"
#include "snapshot/state_sections.h"

#define MIN_MEM_SIZE (16ull << 20) /* VM_MIN_MEM_MIB */

int machine_section_write(struct snap_writer *w, const struct snapshot_machine *m)
{
	int err = snap_section_begin(w, MACHINE_SECTION, "", DEVICE_SECTION_VERSION);
	if (err)
		return err;
	snap_put_u32(w, m->vcpus);
	snap_put_u64(w, m->mem_size);
	snap_put_u32(w, m->virtio_devices); /* each has its own section */
	return snap_section_end(w);
}

int machine_section_read(const struct snap_reader *r, const char *file, int max_vcpus,
			 uint64_t max_mem, struct snapshot_machine *m, char *err, size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, MACHINE_SECTION, "", DEVICE_SECTION_VERSION, err,
				 errlen);
	if (rc)
		return rc;
	m->vcpus = snap_get_u32(&in.c);
	m->mem_size = snap_get_u64(&in.c);
	m->virtio_devices = snap_get_u32(&in.c);
	if (!in.c.failed && (m->vcpus < 1 || m->vcpus > (uint32_t)max_vcpus))
		section_in_fail(&in, "vcpu_count", "%u: expected 1..%d", m->vcpus, max_vcpus);
	if (!in.c.failed && (m->mem_size % 4096 || m->mem_size < MIN_MEM_SIZE ||
			     m->mem_size > max_mem))
		section_in_fail(&in, "mem_size", "%llu bytes: expected a multiple of 4096 from %llu "
				"to %llu", (unsigned long long)m->mem_size, MIN_MEM_SIZE,
				(unsigned long long)max_mem);
	if (!in.c.failed && m->virtio_devices > SNAPSHOT_MAX_VIRTIO)
		section_in_fail(&in, "virtio_devices", "%u: at most %u", m->virtio_devices,
				SNAPSHOT_MAX_VIRTIO);
	return section_in_close(&in);
}

int serial_section_write(struct snap_writer *w, const struct serial_state *s)
{
	int err = snap_section_begin(w, SERIAL_SECTION, "", DEVICE_SECTION_VERSION);
	if (err)
		return err;
	const uint8_t f[] = { s->ier, s->fcr, s->lcr, s->mcr, s->scr, s->dll, s->dlm,
			      s->thr_interrupt, s->irq_level };
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		snap_put_u8(w, f[i]);
	snap_put_blob(w, s->rx, s->rx_count);
	return snap_section_end(w);
}

/* A flag byte must be 0 or 1. */
static bool get_flag(struct section_in *in, const char *field)
{
	uint8_t v = snap_get_u8(&in->c);
	if (!in->c.failed && v > 1)
		section_in_fail(in, field, "%u: expected 0 or 1", v);
	return v == 1;
}

/* A queue's bytes: at most max, copied into out. */
static uint8_t get_bytes(struct section_in *in, const char *field, uint8_t *out, uint32_t max)
{
	uint32_t len = 0;
	const void *p = in->c.failed ? NULL : snap_get_blob_max(&in->c, max, &len);
	if (!p) {
		if (!in->bad)
			section_in_fail(in, field, "longer than %u bytes, or truncated", max);
		return 0;
	}
	memcpy(out, p, len);
	return (uint8_t)len;
}

int serial_section_read(const struct snap_reader *r, const char *file, struct serial_state *s,
			char *err, size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, SERIAL_SECTION, "", DEVICE_SECTION_VERSION, err,
				 errlen);
	if (rc)
		return rc;
	uint8_t *f[] = { &s->ier, &s->fcr, &s->lcr, &s->mcr, &s->scr, &s->dll, &s->dlm };
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		*f[i] = snap_get_u8(&in.c);
	s->thr_interrupt = get_flag(&in, "thr_interrupt");
	s->irq_level = get_flag(&in, "irq_level");
	s->rx_count = get_bytes(&in, "rx", s->rx, SERIAL_RX_FIFO_SIZE);
	return section_in_close(&in);
}

int i8042_section_write(struct snap_writer *w, const struct i8042_state *s)
{
	int err = snap_section_begin(w, I8042_SECTION, "", DEVICE_SECTION_VERSION);
	if (err)
		return err;
	const uint8_t f[] = { s->ctr, s->outp, s->ctl_pending, s->kbd_pending, s->last_out,
			      s->kbd_last, s->last_write_cmd, s->xlate_break, s->irq_level };
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		snap_put_u8(w, f[i]);
	snap_put_blob(w, s->reply, s->nreply);
	snap_put_blob(w, s->keys, s->nkeys);
	return snap_section_end(w);
}

int i8042_section_read(const struct snap_reader *r, const char *file, struct i8042_state *s,
		       char *err, size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, I8042_SECTION, "", DEVICE_SECTION_VERSION, err,
				 errlen);
	if (rc)
		return rc;
	uint8_t *f[] = { &s->ctr, &s->outp, &s->ctl_pending, &s->kbd_pending, &s->last_out,
			 &s->kbd_last };
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		*f[i] = snap_get_u8(&in.c);
	s->last_write_cmd = get_flag(&in, "last_write_cmd");
	s->xlate_break = get_flag(&in, "xlate_break");
	s->irq_level = get_flag(&in, "irq_level");
	s->nreply = get_bytes(&in, "reply", s->reply, I8042_REPLY_MAX);
	s->nkeys = get_bytes(&in, "keys", s->keys, I8042_KBD_BUFFER);
	return section_in_close(&in);
}
