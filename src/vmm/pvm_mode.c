#include "vmm/pvm_mode.h"

#include <linux/kvm.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vcpu.h"

#define MSR_PVM_VIF 0x4b564d10	     /* the VIF page's address | 0x400 once registered */
#define MSR_PVM_SIGNATURE 0x4b564d11 /* reads "PVM" on a PVM host, absent elsewhere */
#define PVM_SIGNATURE 0x4d5650
#define PVM_VIF_GPA_MASK (~0xfffULL)

/* One MSR through KVM_GET_MSRS; false when KVM does not have it. */
static bool read_msr(int vcpu_fd, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = { .hdr.nmsrs = 1, .entry.index = index };
	if (ioctl(vcpu_fd, KVM_GET_MSRS, &msrs) != 1)
		return false;
	*value = msrs.entry.data;
	return true;
}

bool pvm_mode_check(struct vcpu *vcpu)
{
	uint64_t sig, vif;
	if (!read_msr(vcpu->fd, MSR_PVM_SIGNATURE, &sig) || sig != PVM_SIGNATURE)
		return false; /* hardware-virtualized KVM: every kernel runs natively */
	if (read_msr(vcpu->fd, MSR_PVM_VIF, &vif) && (vif & PVM_VIF_GPA_MASK))
		return false;
	log_warn("the kernel is not PVM-aware (it registered no PVM VIF page before its first "
		 "exit): on this PVM host this kernel will run under KVM's instruction emulator, "
		 "thousands of times slower");
	return true;
}
