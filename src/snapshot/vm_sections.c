/* Sections "irqchip", "pit" and "clock" (state_sections.h has the layouts). */
#include <errno.h>
#include <stdio.h>

#include "common/util.h"
#include "snapshot/section_in.h"
#include "snapshot/state_sections.h"

#define PIT_CHANNELS 3
#define PIT_FLAGS_KNOWN (KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON)

/* ---- irqchip ---- */

static uint8_t *pic_fields(struct kvm_pic_state *p, int i)
{
	uint8_t *f[] = { &p->last_irr, &p->irr, &p->imr, &p->isr, &p->priority_add,
			 &p->irq_base, &p->read_reg_select, &p->poll, &p->special_mask,
			 &p->init_state, &p->auto_eoi, &p->rotate_on_auto_eoi,
			 &p->special_fully_nested_mode, &p->init4, &p->elcr, &p->elcr_mask };
	return i < (int)ARRAY_SIZE(f) ? f[i] : NULL;
}

static void put_irqchip(struct snap_writer *w, const struct vm_state *s)
{
	for (int chip = 0; chip < 2; chip++) {
		struct kvm_pic_state p = s->pic[chip];
		for (int i = 0; pic_fields(&p, i); i++)
			snap_put_u8(w, *pic_fields(&p, i));
	}
	snap_put_u64(w, s->ioapic.base_address);
	snap_put_u32(w, s->ioapic.ioregsel);
	snap_put_u32(w, s->ioapic.id);
	snap_put_u32(w, s->ioapic.irr);
	snap_put_u32(w, KVM_IOAPIC_NUM_PINS);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		snap_put_u64(w, s->ioapic.redirtbl[i].bits);
}

static void get_irqchip(struct section_in *in, struct vm_state *s)
{
	for (int chip = 0; chip < 2; chip++)
		for (int i = 0; pic_fields(&s->pic[chip], i); i++)
			*pic_fields(&s->pic[chip], i) = snap_get_u8(&in->c);
	s->ioapic.base_address = snap_get_u64(&in->c);
	s->ioapic.ioregsel = snap_get_u32(&in->c);
	s->ioapic.id = snap_get_u32(&in->c);
	s->ioapic.irr = snap_get_u32(&in->c);
	uint32_t pins = snap_get_u32(&in->c);
	if (!in->c.failed && pins != KVM_IOAPIC_NUM_PINS)
		return section_in_fail(in, "ioapic.pins", "%u: KVM's IOAPIC has %d", pins,
				       KVM_IOAPIC_NUM_PINS);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		s->ioapic.redirtbl[i].bits = snap_get_u64(&in->c);
}

/* ---- PIT ---- */

static void put_pit(struct snap_writer *w, const struct kvm_pit_state2 *pit)
{
	snap_put_u32(w, PIT_CHANNELS);
	for (int i = 0; i < PIT_CHANNELS; i++) {
		const struct kvm_pit_channel_state *c = &pit->channels[i];
		snap_put_u32(w, c->count);
		snap_put_u16(w, c->latched_count);
		const uint8_t b[] = { c->count_latched, c->status_latched, c->status, c->read_state,
				      c->write_state, c->write_latch, c->rw_mode, c->mode, c->bcd,
				      c->gate };
		for (size_t j = 0; j < ARRAY_SIZE(b); j++)
			snap_put_u8(w, b[j]);
		snap_put_u64(w, (uint64_t)c->count_load_time);
	}
	snap_put_u32(w, pit->flags);
}

static void get_pit(struct section_in *in, struct kvm_pit_state2 *pit)
{
	uint32_t n = snap_get_u32(&in->c);
	if (!in->c.failed && n != PIT_CHANNELS)
		return section_in_fail(in, "channels", "%u: a PIT has %d", n, PIT_CHANNELS);
	for (int i = 0; i < PIT_CHANNELS; i++) {
		struct kvm_pit_channel_state *c = &pit->channels[i];
		c->count = snap_get_u32(&in->c);
		c->latched_count = snap_get_u16(&in->c);
		uint8_t *b[] = { &c->count_latched, &c->status_latched, &c->status, &c->read_state,
				 &c->write_state, &c->write_latch, &c->rw_mode, &c->mode, &c->bcd,
				 &c->gate };
		for (size_t j = 0; j < ARRAY_SIZE(b); j++)
			*b[j] = snap_get_u8(&in->c);
		c->count_load_time = (int64_t)snap_get_u64(&in->c);
	}
	pit->flags = snap_get_u32(&in->c);
	if (!in->c.failed && (pit->flags & ~(uint32_t)PIT_FLAGS_KNOWN))
		section_in_fail(in, "flags", "0x%x: unknown PIT flags", pit->flags);
}

/* ---- clock ---- */

static void put_clock(struct snap_writer *w, const struct vm_state *s)
{
	snap_put_u64(w, s->clock_ns);
	snap_put_u32(w, s->clock_flags);
	snap_put_u64(w, s->realtime_ns);
	snap_put_u64(w, s->host_tsc);
	snap_put_u32(w, s->tsc_khz);
}

static void get_clock(struct section_in *in, struct vm_state *s)
{
	s->clock_ns = snap_get_u64(&in->c);
	s->clock_flags = snap_get_u32(&in->c);
	s->realtime_ns = snap_get_u64(&in->c);
	s->host_tsc = snap_get_u64(&in->c);
	s->tsc_khz = snap_get_u32(&in->c);
}

/* ---- the sections ---- */

int vm_sections_write(struct snap_writer *w, const struct vm_state *s)
{
	int err = snap_section_begin(w, IRQCHIP_SECTION, "", VM_STATE_SECTION_VERSION);
	if (!err) {
		put_irqchip(w, s);
		err = snap_section_end(w);
	}
	if (!err && !(err = snap_section_begin(w, PIT_SECTION, "", VM_STATE_SECTION_VERSION))) {
		put_pit(w, &s->pit);
		err = snap_section_end(w);
	}
	if (!err && !(err = snap_section_begin(w, CLOCK_SECTION, "", VM_STATE_SECTION_VERSION))) {
		put_clock(w, s);
		err = snap_section_end(w);
	}
	return err;
}

int vm_sections_read(const struct snap_reader *r, const char *file, struct vm_state *s,
		     char *err, size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, IRQCHIP_SECTION, "", VM_STATE_SECTION_VERSION, err,
				 errlen);
	if (!rc) {
		get_irqchip(&in, s);
		rc = section_in_close(&in);
	}
	if (!rc && !(rc = section_in_open(&in, r, file, PIT_SECTION, "",
					  VM_STATE_SECTION_VERSION, err, errlen))) {
		get_pit(&in, &s->pit);
		rc = section_in_close(&in);
	}
	if (!rc && !(rc = section_in_open(&in, r, file, CLOCK_SECTION, "",
					  VM_STATE_SECTION_VERSION, err, errlen))) {
		get_clock(&in, s);
		rc = section_in_close(&in);
	}
	return rc;
}
