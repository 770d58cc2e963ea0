/* Section "vcpu"/<index> (state_sections.h has the layout). Each part of the state has
 * a put and a get side by side, so the two orders cannot drift apart. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "snapshot/section_in.h"
#include "snapshot/state_sections.h"

/* The event flags argon writes back (vcpu_state.c); PAYLOAD and TRIPLE_FAULT need
 * capabilities argon never enables, so a file that has them was not made by argon. */
#define EVENT_FLAGS_KNOWN (KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR | \
			   KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM)
#define FPU_LEGACY 0
#define FPU_XSAVE 1

/* ---- regs ---- */

static __u64 *regs_fields(struct kvm_regs *r, int i)
{
	__u64 *f[] = { &r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rsp, &r->rbp,
		       &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
		       &r->rip, &r->rflags };
	return i < (int)ARRAY_SIZE(f) ? f[i] : NULL;
}

static void put_regs(struct snap_writer *w, const struct kvm_regs *r)
{
	struct kvm_regs copy = *r;
	for (int i = 0; regs_fields(&copy, i); i++)
		snap_put_u64(w, *regs_fields(&copy, i));
}

static void get_regs(struct section_in *in, struct kvm_regs *r)
{
	for (int i = 0; regs_fields(r, i); i++)
		*regs_fields(r, i) = snap_get_u64(&in->c);
}

/* ---- sregs ---- */

static void put_segment(struct snap_writer *w, const struct kvm_segment *s)
{
	snap_put_u64(w, s->base);
	snap_put_u32(w, s->limit);
	snap_put_u16(w, s->selector);
	const uint8_t bits[] = { s->type, s->present, s->dpl, s->db, s->s, s->l, s->g, s->avl,
				 s->unusable };
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		snap_put_u8(w, bits[i]);
}

static void get_segment(struct section_in *in, struct kvm_segment *s)
{
	s->base = snap_get_u64(&in->c);
	s->limit = snap_get_u32(&in->c);
	s->selector = snap_get_u16(&in->c);
	uint8_t *bits[] = { &s->type, &s->present, &s->dpl, &s->db, &s->s, &s->l, &s->g, &s->avl,
			    &s->unusable };
	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		*bits[i] = snap_get_u8(&in->c);
}

static struct kvm_segment *sregs_segment(struct kvm_sregs *s, int i)
{
	struct kvm_segment *seg[] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr,
				      &s->ldt };
	return i < (int)ARRAY_SIZE(seg) ? seg[i] : NULL;
}

static __u64 *sregs_control(struct kvm_sregs *s, int i)
{
	__u64 *f[] = { &s->cr0, &s->cr2, &s->cr3, &s->cr4, &s->cr8, &s->efer, &s->apic_base,
		       &s->interrupt_bitmap[0], &s->interrupt_bitmap[1], &s->interrupt_bitmap[2],
		       &s->interrupt_bitmap[3] };
	return i < (int)ARRAY_SIZE(f) ? f[i] : NULL;
}

static void put_sregs(struct snap_writer *w, const struct kvm_sregs *orig)
{
	struct kvm_sregs s = *orig;
	for (int i = 0; sregs_segment(&s, i); i++)
		put_segment(w, sregs_segment(&s, i));
	snap_put_u64(w, s.gdt.base);
	snap_put_u16(w, s.gdt.limit);
	snap_put_u64(w, s.idt.base);
	snap_put_u16(w, s.idt.limit);
	for (int i = 0; sregs_control(&s, i); i++)
		snap_put_u64(w, *sregs_control(&s, i));
}

static void get_sregs(struct section_in *in, struct kvm_sregs *s)
{
	for (int i = 0; sregs_segment(s, i); i++)
		get_segment(in, sregs_segment(s, i));
	s->gdt.base = snap_get_u64(&in->c);
	s->gdt.limit = snap_get_u16(&in->c);
	s->idt.base = snap_get_u64(&in->c);
	s->idt.limit = snap_get_u16(&in->c);
	for (int i = 0; sregs_control(s, i); i++)
		*sregs_control(s, i) = snap_get_u64(&in->c);
}

/* ---- FPU: the XSAVE region (KVM's opaque ABI blob), or the legacy fields ---- */

static void put_fpu(struct snap_writer *w, const struct vcpu_state *s)
{
	snap_put_u8(w, s->xsave_size ? FPU_XSAVE : FPU_LEGACY);
	if (s->xsave_size) {
		snap_put_blob(w, s->xsave, s->xsave_size);
		return;
	}
	const struct kvm_fpu *f = &s->fpu;
	snap_put_blob(w, f->fpr, sizeof(f->fpr));
	snap_put_u16(w, f->fcw);
	snap_put_u16(w, f->fsw);
	snap_put_u8(w, f->ftwx);
	snap_put_u16(w, f->last_opcode);
	snap_put_u64(w, f->last_ip);
	snap_put_u64(w, f->last_dp);
	snap_put_blob(w, f->xmm, sizeof(f->xmm));
	snap_put_u32(w, f->mxcsr);
}

static void get_legacy_fpu(struct section_in *in, struct kvm_fpu *f)
{
	snap_get_blob(&in->c, f->fpr, sizeof(f->fpr));
	f->fcw = snap_get_u16(&in->c);
	f->fsw = snap_get_u16(&in->c);
	f->ftwx = snap_get_u8(&in->c);
	f->last_opcode = snap_get_u16(&in->c);
	f->last_ip = snap_get_u64(&in->c);
	f->last_dp = snap_get_u64(&in->c);
	snap_get_blob(&in->c, f->xmm, sizeof(f->xmm));
	f->mxcsr = snap_get_u32(&in->c);
}

/* The region must be at least KVM_GET_XSAVE's 4096 bytes and no more than this host's
 * KVM takes (KVM_CAP_XSAVE2); vcpu_state.c pads a shorter one. */
static void get_fpu(struct section_in *in, const struct vcpu_state_host *host,
		    struct vcpu_state *s)
{
	uint8_t kind = snap_get_u8(&in->c);
	if (kind == FPU_LEGACY) {
		s->xsave_size = 0;
		get_legacy_fpu(in, &s->fpu);
		return;
	}
	if (kind != FPU_XSAVE)
		return section_in_fail(in, "fpu", "kind %u: expected 0 (legacy) or 1 (xsave)", kind);
	uint32_t len = 0;
	const void *p = snap_get_blob_max(&in->c, VCPU_STATE_XSAVE_MAX, &len);
	if (!p)
		return;
	uint32_t max = host->xsave ? host->xsave_size : 0;
	if (len < sizeof(struct kvm_xsave) || len > max)
		return section_in_fail(in, "xsave", "%u bytes: this host's KVM takes %zu to %u",
				       len, sizeof(struct kvm_xsave), max);
	if (vcpu_state_set_xsave_size(s, len))
		return section_in_fail(in, "xsave", "out of memory");
	memcpy(s->xsave, p, len);
}

/* ---- XCRs, debug registers ---- */

static void put_xcrs(struct snap_writer *w, const struct vcpu_state *s)
{
	uint32_t n = s->has_xcrs ? MIN(s->xcrs.nr_xcrs, (uint32_t)KVM_MAX_XCRS) : 0;
	snap_put_u8(w, s->has_xcrs);
	snap_put_u32(w, s->xcrs.flags);
	snap_put_u32(w, n);
	for (uint32_t i = 0; i < n; i++) {
		snap_put_u32(w, s->xcrs.xcrs[i].xcr);
		snap_put_u64(w, s->xcrs.xcrs[i].value);
	}
}

static void get_xcrs(struct section_in *in, struct vcpu_state *s)
{
	uint8_t has = snap_get_u8(&in->c);
	if (has > 1)
		return section_in_fail(in, "has_xcrs", "%u: expected 0 or 1", has);
	s->has_xcrs = has;
	s->xcrs.flags = snap_get_u32(&in->c);
	s->xcrs.nr_xcrs = section_in_count(in, "xcrs", KVM_MAX_XCRS);
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
		s->xcrs.xcrs[i].xcr = snap_get_u32(&in->c);
		s->xcrs.xcrs[i].value = snap_get_u64(&in->c);
	}
}

static void put_debugregs(struct snap_writer *w, const struct kvm_debugregs *d)
{
	for (int i = 0; i < 4; i++)
		snap_put_u64(w, d->db[i]);
	snap_put_u64(w, d->dr6);
	snap_put_u64(w, d->dr7);
	snap_put_u64(w, d->flags);
}

static void get_debugregs(struct section_in *in, struct kvm_debugregs *d)
{
	for (int i = 0; i < 4; i++)
		d->db[i] = snap_get_u64(&in->c);
	d->dr6 = snap_get_u64(&in->c);
	d->dr7 = snap_get_u64(&in->c);
	d->flags = snap_get_u64(&in->c);
}

/* ---- events ---- */

static void put_events(struct snap_writer *w, const struct kvm_vcpu_events *e)
{
	const uint8_t a[] = { e->exception.injected, e->exception.nr,
			      e->exception.has_error_code, e->exception.pending };
	for (size_t i = 0; i < ARRAY_SIZE(a); i++)
		snap_put_u8(w, a[i]);
	snap_put_u32(w, e->exception.error_code);
	const uint8_t b[] = { e->interrupt.injected, e->interrupt.nr, e->interrupt.soft,
			      e->interrupt.shadow, e->nmi.injected, e->nmi.pending, e->nmi.masked };
	for (size_t i = 0; i < ARRAY_SIZE(b); i++)
		snap_put_u8(w, b[i]);
	snap_put_u32(w, e->sipi_vector);
	snap_put_u32(w, e->flags & EVENT_FLAGS_KNOWN);
	const uint8_t c[] = { e->smi.smm, e->smi.pending, e->smi.smm_inside_nmi,
			      e->smi.latched_init };
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		snap_put_u8(w, c[i]);
}

static void get_events(struct section_in *in, struct kvm_vcpu_events *e)
{
	uint8_t *a[] = { &e->exception.injected, &e->exception.nr, &e->exception.has_error_code,
			 &e->exception.pending };
	for (size_t i = 0; i < ARRAY_SIZE(a); i++)
		*a[i] = snap_get_u8(&in->c);
	e->exception.error_code = snap_get_u32(&in->c);
	uint8_t *b[] = { &e->interrupt.injected, &e->interrupt.nr, &e->interrupt.soft,
			 &e->interrupt.shadow, &e->nmi.injected, &e->nmi.pending, &e->nmi.masked };
	for (size_t i = 0; i < ARRAY_SIZE(b); i++)
		*b[i] = snap_get_u8(&in->c);
	e->sipi_vector = snap_get_u32(&in->c);
	e->flags = snap_get_u32(&in->c);
	uint8_t *c[] = { &e->smi.smm, &e->smi.pending, &e->smi.smm_inside_nmi,
			 &e->smi.latched_init };
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		*c[i] = snap_get_u8(&in->c);
	if (!in->c.failed && (e->flags & ~(uint32_t)EVENT_FLAGS_KNOWN))
		section_in_fail(in, "events.flags", "0x%x has flags argon never writes", e->flags);
}

/* ---- CPUID and MSRs ---- */

static void put_cpuid(struct snap_writer *w, const struct vcpu_state *s)
{
	snap_put_u32(w, s->ncpuid);
	for (uint32_t i = 0; i < s->ncpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &s->cpuid[i];
		const uint32_t f[] = { e->function, e->index, e->flags, e->eax, e->ebx, e->ecx,
				       e->edx };
		for (size_t j = 0; j < ARRAY_SIZE(f); j++)
			snap_put_u32(w, f[j]);
	}
}

static void get_cpuid(struct section_in *in, struct vcpu_state *s)
{
	s->ncpuid = section_in_count(in, "cpuid", VCPU_STATE_MAX_CPUID);
	for (uint32_t i = 0; i < s->ncpuid; i++) {
		struct kvm_cpuid_entry2 *e = &s->cpuid[i];
		uint32_t *f[] = { &e->function, &e->index, &e->flags, &e->eax, &e->ebx, &e->ecx,
				  &e->edx };
		for (size_t j = 0; j < ARRAY_SIZE(f); j++)
			*f[j] = snap_get_u32(&in->c);
	}
}

static void put_msrs(struct snap_writer *w, const struct vcpu_state *s)
{
	snap_put_u32(w, s->nmsrs);
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		snap_put_u32(w, s->msrs[i].index);
		snap_put_u64(w, s->msrs[i].data);
	}
}

/* At most the VM's list, each index in it, none twice: a snapshot holds only MSRs
 * this host keeps (one from a PVM host names 0x4b564d10, which other hosts lack). */
static void get_msrs(struct section_in *in, const struct vcpu_state_host *host,
		     struct vcpu_state *s)
{
	s->nmsrs = section_in_count(in, "msrs", host->nmsrs);
	for (uint32_t i = 0; i < s->nmsrs && !in->bad && !in->c.failed; i++) {
		uint32_t index = snap_get_u32(&in->c);
		s->msrs[i] = (struct kvm_msr_entry){ .index = index, .data = snap_get_u64(&in->c) };
		char field[32];
		snprintf(field, sizeof(field), "msrs[%u].index", i);
		if (!in->c.failed && !vcpu_state_host_has_msr(host, index))
			section_in_fail(in, field, "MSR 0x%x is not one this host's KVM keeps%s",
					index, index >= MSR_PVM_FIRST && index <= MSR_PVM_LAST
						       ? " (the snapshot comes from a PVM host)" : "");
		for (uint32_t j = 0; j < i && !in->bad; j++)
			if (s->msrs[j].index == index)
				section_in_fail(in, field, "MSR 0x%x appears twice", index);
	}
}

/* ---- the section ---- */

int vcpu_section_write(struct snap_writer *w, int index, const struct vcpu_state *s)
{
	char id[16];
	snprintf(id, sizeof(id), "%d", index);
	int err = snap_section_begin(w, VCPU_SECTION, id, VCPU_SECTION_VERSION);
	if (err)
		return err;
	snap_put_u32(w, s->mp_state.mp_state);
	put_regs(w, &s->regs);
	put_sregs(w, &s->sregs);
	put_fpu(w, s);
	put_xcrs(w, s);
	put_debugregs(w, &s->debugregs);
	snap_put_blob(w, s->lapic.regs, sizeof(s->lapic.regs));
	put_events(w, &s->events);
	put_cpuid(w, s);
	put_msrs(w, s);
	return snap_section_end(w);
}

int vcpu_section_read(const struct snap_reader *r, const char *file, int index,
		      const struct vcpu_state_host *host, struct vcpu_state *s, char *err,
		      size_t errlen)
{
	char id[16];
	snprintf(id, sizeof(id), "%d", index);
	struct section_in in;
	int rc = section_in_open(&in, r, file, VCPU_SECTION, id, VCPU_SECTION_VERSION, err, errlen);
	if (rc)
		return rc;
	s->mp_state.mp_state = snap_get_u32(&in.c);
	get_regs(&in, &s->regs);
	get_sregs(&in, &s->sregs);
	get_fpu(&in, host, s);
	get_xcrs(&in, s);
	get_debugregs(&in, &s->debugregs);
	snap_get_blob(&in.c, s->lapic.regs, sizeof(s->lapic.regs)); /* exactly 1024 bytes */
	get_events(&in, &s->events);
	get_cpuid(&in, s);
	get_msrs(&in, host, s);
	return section_in_close(&in);
}
