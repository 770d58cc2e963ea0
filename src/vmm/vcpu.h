/* A vCPU: its KVM fd, the shared kvm_run page and the thread that runs KVM_RUN. */
#ifndef ARGON_VMM_VCPU_H
#define ARGON_VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_run;
struct vm;
struct boot_image;

struct vcpu {
	struct vm *vm;
	int index; /* also its APIC id */
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	int tid;	 /* the thread's id, for its scheduler statistics (metrics) */
	uint64_t run_ns; /* time spent in KVM_RUN; updated atomically */
};

/* Creates vCPU index of vm: KVM_CREATE_VCPU, the kvm_run mapping, CPUID for the
 * topology, reset MSRs and the LAPIC's LINT pins. Returns 0 or -errno. */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, int index);
void vcpu_destroy(struct vcpu *vcpu);
/* Starts the thread that runs KVM_RUN until the VM stops. */
int vcpu_start(struct vcpu *vcpu);
/* Makes the thread leave KVM_RUN now, or not enter it next time (immediate_exit
 * and the kick signal); the run loop then checks why (stop, pause). */
void vcpu_kick(struct vcpu *vcpu);
/* On the vCPU's own thread, outside KVM_RUN: lets KVM finish the exit just handled
 * (an IN's value into RAX, RIP past the instruction) without running the guest
 * further, so the vCPU's state is whole. Before parking for a pause. */
void vcpu_complete_pending(struct vcpu *vcpu);
/* Kicks the thread out of KVM_RUN and joins it. */
void vcpu_stop(struct vcpu *vcpu);
/* Installs the signal the VMM uses to kick vCPU threads; call once from main. */
int vcpu_install_kick_signal(void);

#endif
