#include "vmm/vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "vmm/exits.h"
#include "vmm/pvm_mode.h"
#include "vmm/vm.h"

/* The signal that kicks a vCPU thread out of KVM_RUN (with immediate_exit set). */
#define VCPU_KICK_SIGNAL SIGUSR1
#define CPUID_MAX_ENTRIES 256

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_install_kick_signal(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return EINTR. */
	return sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static int setup_cpuid(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	size_t size = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *cpuid = calloc(1, size);
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = CPUID_MAX_ENTRIES;
	int err = 0;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		err = -errno;
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		goto out;
	}
	int tsc_khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ, 0);
	err = cpuid_configure_smt(cpuid, CPUID_MAX_ENTRIES, vcpu->index, vm->nvcpus, vm->opts.smt,
				  tsc_khz > 0 ? (uint32_t)tsc_khz : 0);
	if (err) {
		log_error("CPUID for vCPU %d of %d: %s", vcpu->index, vm->nvcpus, strerror(-err));
		goto out;
	}
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		err = -errno;
		log_error("KVM_SET_CPUID2: %s", strerror(errno));
	}
out:
	free(cpuid);
	return err;
}

static int setup_msrs(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[CPUID_MSR_RESET_MAX];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	int count = cpuid_reset_msrs(msrs.entries, CPUID_MSR_RESET_MAX);
	if (count < 0)
		return count;
	msrs.hdr.nmsrs = (uint32_t)count;
	int set = ioctl(vcpu->fd, KVM_SET_MSRS, &msrs);
	if (set < 0)
		return -errno;
	if ((uint32_t)set != msrs.hdr.nmsrs)
		log_debug("vCPU %d: KVM took %d of %u reset MSRs (index 0x%x refused)", vcpu->index,
			  set, msrs.hdr.nmsrs, msrs.entries[set].index);
	return 0;
}

/* LINT0 as ExtINT (the PIC's output) and LINT1 as NMI, as firmware leaves them. */
static int setup_lapic(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	uint32_t *lvt_lint0 = (uint32_t *)&lapic.regs[0x350];
	uint32_t *lvt_lint1 = (uint32_t *)&lapic.regs[0x360];
	*lvt_lint0 = (*lvt_lint0 & ~0x700u & ~0x10000u) | (0x7u << 8); /* ExtINT, unmasked */
	*lvt_lint1 = (*lvt_lint1 & ~0x700u & ~0x10000u) | (0x4u << 8); /* NMI, unmasked */
	return ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0 ? -errno : 0;
}

int vcpu_create(struct vm *vm, struct vcpu *vcpu, int index)
{
	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0)
		return -errno;
	vcpu->run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		return -errno;
	}
	int err = setup_cpuid(vcpu);
	if (!err)
		err = setup_msrs(vcpu);
	if (!err)
		err = setup_lapic(vcpu);
	return err;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->vcpu_mmap_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

/* api.rst, KVM_RUN ("kvm_run"): after a KVM_EXIT_IO or KVM_EXIT_MMIO the operation is
 * complete, and the guest state consistent (RIP past the instruction, an IN's value in
 * RAX), only once KVM_RUN is entered again; with immediate_exit set, KVM finishes it
 * and returns EINTR before the guest runs another instruction. A vCPU that parks does
 * this first, so a snapshot never catches an instruction half done (restored, it
 * would run again: a second OUT to the console, a second byte read from it). A split
 * MMIO access can exit once more on the way; each such exit is handled. */
void vcpu_complete_pending(struct vcpu *vcpu)
{
	for (int i = 0; i < 8 && !vm_stop_requested(vcpu->vm); i++) {
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0)
			return; /* EINTR: done, nothing pending any more */
		vm_drain_coalesced(vcpu->vm);
		int status = exits_handle(vcpu);
		if (status > 0)
			vm_request_stop(vcpu->vm, status);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%d", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	__atomic_store_n(&vcpu->tid, (int)syscall(SYS_gettid), __ATOMIC_RELAXED);
	if (vcpu->index == 0)
		timings_mark(&vm->timings.first_run);
	bool mode_checked = vcpu->index != 0; /* vCPU 0 tells whether the guest is PVM-aware */
	while (!vm_stop_requested(vm)) {
		pause_point(vcpu); /* parks here, between exits, while the VM is paused */
		if (vm_stop_requested(vm))
			break;
		uint64_t t0 = timings_now();
		int rc = ioctl(vcpu->fd, KVM_RUN, 0);
		__atomic_add_fetch(&vcpu->run_ns, timings_now() - t0, __ATOMIC_RELAXED);
		if (rc < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("vCPU %d: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_stop(vm, EXIT_INTERNAL);
			break;
		}
		vm_drain_coalesced(vm);
		if (!mode_checked) {
			pvm_mode_check(vcpu);
			mode_checked = true;
		}
		int status = exits_handle(vcpu);
		if (status > 0)
			vm_request_stop(vm, status);
	}
	pause_vcpu_exited(vm);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	/* Host signals go to the main thread only; the thread inherits this mask. */
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	/* immediate_exit closes the race where the kick lands just before KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_stop(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	vcpu_kick(vcpu);
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}
