/* Saving and restoring a vCPU (vcpu_state.h). The orders follow what KVM needs, as
 * api.rst and Firecracker's vstate/vcpu/x86_64.rs spell out; each step says why. */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MSR_BATCH 128u /* fewer than KVM's MAX_IO_MSRS (256) per call */

/* One vCPU ioctl; on failure one line naming the vCPU and the ioctl, and -errno. */
static int vcpu_ioctl(struct vcpu *vcpu, unsigned long request, void *arg, const char *name)
{
	if (ioctl(vcpu->fd, request, arg) >= 0)
		return 0;
	int err = -errno;
	log_error("vCPU %d: %s: %s", vcpu->index, name, strerror(-err));
	return err;
}
#define VCPU_IOCTL(vcpu, req, arg) vcpu_ioctl(vcpu, req, arg, #req)

struct vcpu_state *vcpu_state_alloc(void)
{
	return calloc(1, sizeof(struct vcpu_state));
}

void vcpu_state_free(struct vcpu_state *s)
{
	if (s)
		free(s->xsave);
	free(s);
}

int vcpu_state_set_xsave_size(struct vcpu_state *s, uint32_t size)
{
	if (size < sizeof(struct kvm_xsave) || size > VCPU_STATE_XSAVE_MAX)
		return -EINVAL;
	struct kvm_xsave *x = calloc(1, size);
	if (!x)
		return -ENOMEM;
	free(s->xsave);
	s->xsave = x;
	s->xsave_size = size;
	return 0;
}

/* ---- save ---- */

/* api.rst, KVM_GET_XSAVE2: as many bytes as KVM_CAP_XSAVE2 says on the VM fd (more
 * than KVM_GET_XSAVE's 4096 when the host has AMX and the like). Without XSAVE, the
 * legacy FPU/SSE state. */
static int save_fpu(struct vcpu *vcpu, const struct vcpu_state_host *host,
		    struct vcpu_state *s)
{
	if (!host->xsave) {
		s->xsave_size = 0;
		return VCPU_IOCTL(vcpu, KVM_GET_FPU, &s->fpu);
	}
	int err = vcpu_state_set_xsave_size(s, host->xsave_size);
	if (err)
		return err;
	if (host->xsave_size > sizeof(struct kvm_xsave))
		return VCPU_IOCTL(vcpu, KVM_GET_XSAVE2, s->xsave);
	return VCPU_IOCTL(vcpu, KVM_GET_XSAVE, s->xsave);
}

/* Reads host's MSR list in batches; KVM must read every one (the list was built by
 * reading them on this VM). */
static int save_msrs(struct vcpu *vcpu, const struct vcpu_state_host *host,
		     struct vcpu_state *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MSR_BATCH];
	} b;
	s->nmsrs = 0;
	for (uint32_t next = 0; next < host->nmsrs;) {
		uint32_t n = MIN(host->nmsrs - next, MSR_BATCH);
		memset(&b, 0, sizeof(b));
		b.hdr.nmsrs = n;
		for (uint32_t i = 0; i < n; i++)
			b.e[i].index = host->msrs[next + i];
		int got = ioctl(vcpu->fd, KVM_GET_MSRS, &b);
		if (got < 0 || (uint32_t)got != n) {
			log_error("vCPU %d: KVM_GET_MSRS: %s", vcpu->index,
				  got < 0 ? strerror(errno) : "refused an MSR it read before");
			return got < 0 ? -errno : -EIO;
		}
		memcpy(&s->msrs[next], b.e, n * sizeof(b.e[0]));
		next += n;
	}
	s->nmsrs = host->nmsrs;
	return 0;
}

/* The CPUID table the guest was given (KVM_SET_CPUID2 at vcpu_create): a restored
 * guest must see the same CPU, whatever this host would offer. */
static int save_cpuid(struct vcpu *vcpu, struct vcpu_state *s)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[VCPU_STATE_MAX_CPUID];
	} b;
	memset(&b, 0, sizeof(b));
	b.hdr.nent = VCPU_STATE_MAX_CPUID;
	int err = VCPU_IOCTL(vcpu, KVM_GET_CPUID2, &b);
	if (err)
		return err;
	s->ncpuid = MIN(b.hdr.nent, (uint32_t)VCPU_STATE_MAX_CPUID);
	memcpy(s->cpuid, b.e, s->ncpuid * sizeof(b.e[0]));
	return 0;
}

/* Order (Firecracker's save_state, from KVM's code): KVM_GET_MP_STATE first, because
 * it calls kvm_apic_accept_events() and may change the vCPU and LAPIC state the
 * later reads return; KVM_GET_VCPU_EVENTS last, because the other reads may change
 * the pending-event state it reports. */
int vcpu_state_save(struct vcpu *vcpu, struct vcpu_state *s)
{
	const struct vcpu_state_host *host = vcpu_state_host(vcpu->vm);
	if (!host)
		return -ENOTSUP;
	int err = VCPU_IOCTL(vcpu, KVM_GET_MP_STATE, &s->mp_state);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_GET_REGS, &s->regs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_GET_SREGS, &s->sregs);
	if (!err)
		err = save_fpu(vcpu, host, s);
	s->has_xcrs = host->xcrs;
	if (!err && host->xcrs)
		err = VCPU_IOCTL(vcpu, KVM_GET_XCRS, &s->xcrs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_GET_DEBUGREGS, &s->debugregs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_GET_LAPIC, &s->lapic);
	if (!err)
		err = save_cpuid(vcpu, s);
	if (!err)
		err = save_msrs(vcpu, host, s);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_GET_VCPU_EVENTS, &s->events);
	return err;
}

/* ---- restore ---- */

static int restore_cpuid(struct vcpu *vcpu, const struct vcpu_state *s)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[VCPU_STATE_MAX_CPUID];
	} b;
	memset(&b, 0, sizeof(b));
	b.hdr.nent = MIN(s->ncpuid, (uint32_t)VCPU_STATE_MAX_CPUID);
	memcpy(b.e, s->cpuid, b.hdr.nent * sizeof(b.e[0]));
	return VCPU_IOCTL(vcpu, KVM_SET_CPUID2, &b);
}

/* A snapshot's xsave region may be shorter than this host's (KVM_CAP_XSAVE2 grew):
 * the components past it are absent from its XSTATE_BV and so in their initial state,
 * which zero bytes are. A longer one holds state this host cannot take. */
static int restore_fpu(struct vcpu *vcpu, const struct vcpu_state_host *host,
		       const struct vcpu_state *s)
{
	if (s->xsave_size == 0)
		return VCPU_IOCTL(vcpu, KVM_SET_FPU, (void *)&s->fpu);
	if (!host->xsave || s->xsave_size > host->xsave_size) {
		log_error("vCPU %d: the snapshot's XSAVE state is %u bytes; this host's KVM takes "
			  "%u", vcpu->index, s->xsave_size, host->xsave ? host->xsave_size : 0);
		return -ENOTSUP;
	}
	struct kvm_xsave *x = calloc(1, host->xsave_size);
	if (!x)
		return -ENOMEM;
	memcpy(x, s->xsave, s->xsave_size);
	int err = VCPU_IOCTL(vcpu, KVM_SET_XSAVE, x);
	free(x);
	return err;
}

/* KVM refused to write e: fine only if the MSR is read-only and already holds the
 * saved value (PVM's 0x4b564d11-13, an unset VIF page's 0x400): the new host is the
 * same kind of host. Anything else would leave the guest on different ground. */
static int check_unwritten_msr(struct vcpu *vcpu, const struct kvm_msr_entry *e)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} b = { .hdr.nmsrs = 1, .e.index = e->index };
	int got = ioctl(vcpu->fd, KVM_GET_MSRS, &b);
	if (got == 1 && b.e.data == e->data)
		return 0;
	log_error("vCPU %d: MSR 0x%x: KVM refused the snapshot's value 0x%llx (this host %s "
		  "0x%llx)", vcpu->index, e->index, (unsigned long long)e->data,
		  got == 1 ? "reads" : "cannot read it;", (unsigned long long)b.e.data);
	return -EINVAL;
}

/* api.rst, KVM_SET_MSRS: returns how many it wrote, stopping at the first it refuses. */
static int restore_msrs(struct vcpu *vcpu, const struct vcpu_state *s)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MSR_BATCH];
	} b;
	for (uint32_t next = 0; next < s->nmsrs;) {
		uint32_t n = MIN(s->nmsrs - next, MSR_BATCH);
		memset(&b, 0, sizeof(b));
		b.hdr.nmsrs = n;
		memcpy(b.e, &s->msrs[next], n * sizeof(b.e[0]));
		int set = ioctl(vcpu->fd, KVM_SET_MSRS, &b);
		if (set < 0) {
			log_error("vCPU %d: KVM_SET_MSRS: %s", vcpu->index, strerror(errno));
			return -errno;
		}
		next += (uint32_t)set;
		if ((uint32_t)set < n) {
			int err = check_unwritten_msr(vcpu, &s->msrs[next]);
			if (err)
				return err;
			next++;
		}
	}
	return 0;
}

/* KVM_GET_VCPU_EVENTS fills the NMI and interrupt-shadow fields whether or not it
 * sets their flags; setting them restores both. A SIPI vector is never valid from a
 * GET (KVM's own comment), so it is not written back. */
static int restore_events(struct vcpu *vcpu, const struct vcpu_state *s)
{
	struct kvm_vcpu_events ev = s->events;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
	ev.flags &= ~(uint32_t)KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	return VCPU_IOCTL(vcpu, KVM_SET_VCPU_EVENTS, &ev);
}

/* Order (Firecracker's restore_state, from KVM's code):
 * - (the TSC frequency before anything writes the TSC: vm_state_restore_tsc;)
 * - CPUID first: other SETs check guest features against it (XSAVE
 *   components, MSRs);
 * - KVM_SET_REGS before KVM_SET_VCPU_EVENTS: SET_REGS clears a pending exception,
 *   which the events put back;
 * - KVM_SET_SREGS before KVM_SET_LAPIC: sregs carry the APIC base MSR (xAPIC or
 *   x2APIC mode), which decides how the LAPIC's registers are read;
 * - KVM_SET_LAPIC before KVM_SET_MSRS: the TSC deadline MSR is only taken by a LAPIC
 *   already in TSC-deadline mode;
 * - KVM_SET_VCPU_EVENTS last: pending exceptions, NMIs and the interrupt shadow, which
 *   the other SETs may have cleared. */
int vcpu_state_restore(struct vcpu *vcpu, const struct vcpu_state *s)
{
	const struct vcpu_state_host *host = vcpu_state_host(vcpu->vm);
	if (!host)
		return -ENOTSUP;
	int err = restore_cpuid(vcpu, s);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_SET_MP_STATE, (void *)&s->mp_state);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_SET_REGS, (void *)&s->regs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_SET_SREGS, (void *)&s->sregs);
	if (!err)
		err = restore_fpu(vcpu, host, s);
	if (!err && s->has_xcrs)
		err = VCPU_IOCTL(vcpu, KVM_SET_XCRS, (void *)&s->xcrs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_SET_DEBUGREGS, (void *)&s->debugregs);
	if (!err)
		err = VCPU_IOCTL(vcpu, KVM_SET_LAPIC, (void *)&s->lapic);
	if (!err)
		err = restore_msrs(vcpu, s);
	if (!err)
		err = restore_events(vcpu, s);
	return err;
}
