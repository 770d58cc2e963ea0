/* The VM-wide state KVM holds beside the vCPUs, in memory: the in-kernel interrupt
 * controllers (PIC master and slave, IOAPIC), the PIT, kvm-clock and the TSC
 * frequency (issue 9). Saved while the VM is paused; restored into a VM that
 * vm_create built (irqchip and PIT exist) and whose vCPUs have not run.
 *
 * A restore goes in this order (vm_state.c and vcpu_state.c say why):
 *   vm_state_restore_tsc      the TSC frequency, before any vCPU's TSC is written
 *   vm_state_restore_irqchip  PIT, PICs, IOAPIC
 *   vcpu_state_restore        each vCPU (LAPIC, MSRs with the TSC, ...)
 *   vm_state_restore_clock    kvm-clock, last, just before the vCPUs run */
#ifndef ARGON_VMM_VM_STATE_H
#define ARGON_VMM_VM_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

struct vm;

struct vm_state {
	struct kvm_pic_state pic[2]; /* [0] master (ports 0x20), [1] slave (0xa0) */
	struct kvm_ioapic_state ioapic;
	struct kvm_pit_state2 pit;
	uint64_t clock_ns;	/* kvm-clock: where the guest's clock continues from */
	uint32_t clock_flags;	/* KVM_GET_CLOCK's flags, for the record */
	uint64_t realtime_ns;	/* host CLOCK_REALTIME then (KVM_CLOCK_REALTIME), or 0 */
	uint64_t host_tsc;	/* host TSC then (KVM_CLOCK_HOST_TSC), or 0 */
	uint32_t tsc_khz;	/* the guest's TSC frequency; 0 when KVM cannot say */
};

/* Reads everything into s. The VM is paused: the clock is the one pause saved, so a
 * restored guest continues where a resume would have. Returns 0, or -errno after one
 * log_error line naming the ioctl. */
int vm_state_save(struct vm *vm, struct vm_state *s);

/* Gives every vCPU s->tsc_khz when this host's TSC runs at another frequency (more
 * than 250 ppm off): KVM_SET_TSC_KHZ, or -ENOTSUP after one line saying the snapshot
 * needs a host with the same TSC frequency. */
int vm_state_restore_tsc(struct vm *vm, const struct vm_state *s);
/* KVM_SET_PIT2, then KVM_SET_IRQCHIP for both PICs and the IOAPIC. 0 or -errno. */
int vm_state_restore_irqchip(struct vm *vm, const struct vm_state *s);
/* KVM_SET_CLOCK to s->clock_ns (the guest's clock goes on from there, never back),
 * then KVM_KVMCLOCK_CTRL on each vCPU so the guest knows it was stopped. 0 or -errno. */
int vm_state_restore_clock(struct vm *vm, const struct vm_state *s);

#endif
