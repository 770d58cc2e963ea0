/* A vCPU's architectural state as KVM holds it, in memory: what a snapshot saves and a
 * restore puts back so the guest runs on as if nothing happened (issue 9). Saving and
 * restoring happen only while the vCPU's thread is parked or not yet started: KVM's
 * vCPU ioctls must not race KVM_RUN (api.rst, KVM_GET_VCPU_EVENTS: "unsafe if other
 * vCPUs are still running" is about the VM as a whole).
 *
 * What "every MSR" means is a per-VM list (struct vcpu_state_host), built once from
 * the host: KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST, the MSRs argon
 * sets at reset, and PVM's range 0x4b564d00-0x4b564dff (not all listed on a PVM host),
 * each kept only if KVM_GET_MSRS on this VM's vCPU reads it. */
#ifndef ARGON_VMM_VCPU_STATE_H
#define ARGON_VMM_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vm;

#define VCPU_STATE_MAX_MSRS 1024  /* KVM's lists hold ~50-150; PVM's range adds up to 256 */
#define VCPU_STATE_MAX_CPUID 256  /* as vcpu.c's KVM_GET_SUPPORTED_CPUID table */
#define VCPU_STATE_XSAVE_MAX (1u << 20) /* KVM_CAP_XSAVE2's size is ~4-12 KiB */

/* PVM's MSR range (/work/shared/PVM.md): probed, saved only where it exists. */
#define MSR_PVM_FIRST 0x4b564d00u
#define MSR_PVM_LAST 0x4b564dffu
#define MSR_PVM_VIF 0x4b564d10u

/* What this host's KVM offers for vCPU state, probed once per VM. */
struct vcpu_state_host {
	bool xsave;	     /* KVM_CAP_XSAVE: else the legacy FPU state (KVM_GET_FPU) */
	uint32_t xsave_size; /* KVM_CAP_XSAVE2's size on the VM fd, else 4096 */
	bool xcrs;	     /* KVM_CAP_XCRS */
	uint32_t nmsrs;	     /* the MSRs saved, in restore order */
	uint32_t msrs[VCPU_STATE_MAX_MSRS];
	uint32_t npvm;	     /* of them in PVM's range (0 on a hardware-virtualized host) */
};

struct vcpu_state {
	struct kvm_mp_state mp_state;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint32_t xsave_size;	/* 0: the FPU is in fpu, else xsave holds this many bytes */
	struct kvm_fpu fpu;
	struct kvm_xsave *xsave;
	bool has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[VCPU_STATE_MAX_MSRS];
	uint32_t ncpuid;
	struct kvm_cpuid_entry2 cpuid[VCPU_STATE_MAX_CPUID];
};

/* The VM's vcpu_state_host, probed on the first call (on vCPU 0, parked or never
 * run; a probe is side-effect free: KVM_GET_MSRS only) and kept in vm until
 * vm_destroy. NULL after a log_error line when the host lacks what a snapshot needs. */
const struct vcpu_state_host *vcpu_state_host(struct vm *vm);
/* True when index is one of the MSRs host saves. */
bool vcpu_state_host_has_msr(const struct vcpu_state_host *host, uint32_t index);

/* A zeroed state (NULL when out of memory); vcpu_state_free frees it and its xsave. */
struct vcpu_state *vcpu_state_alloc(void);
void vcpu_state_free(struct vcpu_state *s);
/* Makes room for an xsave region of size bytes (<= VCPU_STATE_XSAVE_MAX). 0 or -ENOMEM. */
int vcpu_state_set_xsave_size(struct vcpu_state *s, uint32_t size);

/* Reads vcpu's whole state into s. The vCPU's thread is parked. Returns 0, or -errno
 * after one log_error line naming the vCPU and the ioctl. */
int vcpu_state_save(struct vcpu *vcpu, struct vcpu_state *s);
/* Puts s into vcpu, a vCPU created by vcpu_create that has not run since (or is
 * parked), after vm_state_restore_tsc (vm_state.h). Returns 0, or -errno after one
 * log_error line. */
int vcpu_state_restore(struct vcpu *vcpu, const struct vcpu_state *s);

#endif
