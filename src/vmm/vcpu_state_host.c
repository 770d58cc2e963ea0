/* Which vCPU state this host's KVM holds, and so what a snapshot saves: capabilities,
 * and the MSR list, built once per VM (vcpu_state.h).
 *
 * PVM's range, probed with KVM_GET_MSRS index by index on 2026-12-06 on this project's
 * host ("vm": AMD EPYC, 2 CPUs, Linux 6.18.44-fc-v1294, kvm_pvm), a fresh vCPU:
 *   0x4b564d00-0x4b564d07  live: KVM's own paravirtual MSRs (wall clock, kvm-clock
 *                          0x4b564d01, async PF, steal time, PV EOI, poll control
 *                          (reads 1), async PF INT/ACK); these eight ARE in this
 *                          host's KVM_GET_MSR_INDEX_LIST, and write back as read
 *   0x4b564d10             live, not listed: the VIF page (reads 0x400 while unset;
 *                          KVM_SET_MSRS refuses 0x400, takes gpa|0x400)
 *   0x4b564d11             live, not listed, read-only: 0x4d5650 ("PVM")
 *   0x4b564d12             live, not listed, read-only: 0x1ff
 *   0x4b564d13             live, not listed, read-only: the TSC frequency in kHz
 *   every other index      refused by KVM_GET_MSRS
 * The read-only ones are saved too: a restore cannot write them, but checks that the
 * new host reads the same values (vcpu_state.c), so a snapshot does not wake on a
 * host whose PVM or TSC differs. On a hardware-virtualized host only 0x4b564d00-07
 * answer (and only when listed). */
#include "vmm/vcpu_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "arch/x86/cpuid.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define MSR_IA32_TSC 0x10u
#define MSR_IA32_TSC_DEADLINE 0x6e0u
#define MSR_BATCH 128u /* KVM takes fewer than 256 (MAX_IO_MSRS) per KVM_GET/SET_MSRS */

/* Candidates, before the vCPU says which it reads. */
struct msr_candidates {
	uint32_t n;
	uint32_t index[VCPU_STATE_MAX_MSRS];
};

static void add_candidate(struct msr_candidates *c, uint32_t index)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->index[i] == index)
			return;
	if (c->n < VCPU_STATE_MAX_MSRS)
		c->index[c->n++] = index;
	else
		log_warn("more than %d MSRs: 0x%x and later are not saved", VCPU_STATE_MAX_MSRS,
			 index);
}

/* api.rst, KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST: a first call with
 * nmsrs 0 fails with E2BIG and says how many there are. */
static int add_kvm_list(struct msr_candidates *c, int kvm_fd, unsigned long request,
			const char *name)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	if (ioctl(kvm_fd, request, &probe) < 0 && errno != E2BIG) {
		log_error("%s: %s", name, strerror(errno));
		return -errno;
	}
	uint32_t n = MIN(probe.nmsrs, (uint32_t)VCPU_STATE_MAX_MSRS);
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + n * sizeof(uint32_t));
	if (!list)
		return -ENOMEM;
	list->nmsrs = n;
	int err = ioctl(kvm_fd, request, list) < 0 ? -errno : 0;
	if (err)
		log_error("%s: %s", name, strerror(-err));
	for (uint32_t i = 0; !err && i < list->nmsrs && i < n; i++)
		add_candidate(c, list->indices[i]);
	free(list);
	return err;
}

/* The MTRRs (SDM vol. 3, 12.11): no KVM list names them, yet Linux reads them and a
 * guest may program them (QEMU and Firecracker save them when CPUID offers MTRRs):
 * capability, the variable pairs 0x200-0x20f, the fixed ranges, the default type. */
static void add_mtrrs(struct msr_candidates *c)
{
	static const uint32_t fixed[] = { 0xfe, 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
					  0x26b, 0x26c, 0x26d, 0x26e, 0x26f, 0x2ff };
	for (uint32_t index = 0x200; index <= 0x20f; index++)
		add_candidate(c, index);
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		add_candidate(c, fixed[i]);
}

static int gather_candidates(struct vm *vm, struct msr_candidates *c)
{
	int err = add_kvm_list(c, vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, "KVM_GET_MSR_INDEX_LIST");
	if (!err && ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) > 0)
		err = add_kvm_list(c, vm->kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST,
				   "KVM_GET_MSR_FEATURE_INDEX_LIST");
	if (err)
		return err;
	/* What vcpu_create sets at reset (MTRR default type, MISC_ENABLE, ...) is the
	 * guest's whether or not the host lists it. */
	struct kvm_msr_entry reset[CPUID_MSR_RESET_MAX];
	int nreset = cpuid_reset_msrs(reset, CPUID_MSR_RESET_MAX);
	for (int i = 0; i < nreset; i++)
		add_candidate(c, reset[i].index);
	add_mtrrs(c);
	for (uint32_t index = MSR_PVM_FIRST; index <= MSR_PVM_LAST; index++)
		add_candidate(c, index);
	return 0;
}

/* Keeps the candidates KVM_GET_MSRS reads on vcpu_fd. KVM stops a batch at the first
 * MSR it refuses and returns how many it read before it (api.rst, KVM_GET_MSRS), so
 * each call either reads the rest or names one to drop. */
static int keep_readable(int vcpu_fd, const struct msr_candidates *c,
			 struct vcpu_state_host *host)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[MSR_BATCH];
	} b;
	uint32_t next = 0;
	while (next < c->n) {
		uint32_t n = MIN(c->n - next, MSR_BATCH);
		memset(&b, 0, sizeof(b));
		b.hdr.nmsrs = n;
		for (uint32_t i = 0; i < n; i++)
			b.e[i].index = c->index[next + i];
		int got = ioctl(vcpu_fd, KVM_GET_MSRS, &b);
		if (got < 0) {
			log_error("KVM_GET_MSRS: %s", strerror(errno));
			return -errno;
		}
		for (int i = 0; i < got; i++)
			host->msrs[host->nmsrs++] = b.e[i].index;
		next += (uint32_t)got + ((uint32_t)got < n ? 1 : 0); /* skip the refused one */
	}
	return 0;
}

/* Restore order inside the list: the TSC first, the TSC deadline last. A deadline is
 * a guest TSC value and KVM arms the LAPIC timer against the TSC as it stands when
 * the deadline is written (Firecracker restores the deadline after the TSC too). */
static void order_for_restore(struct vcpu_state_host *host)
{
	uint32_t sorted[VCPU_STATE_MAX_MSRS], n = 0;
	bool tsc = vcpu_state_host_has_msr(host, MSR_IA32_TSC);
	bool deadline = vcpu_state_host_has_msr(host, MSR_IA32_TSC_DEADLINE);
	if (tsc)
		sorted[n++] = MSR_IA32_TSC;
	for (uint32_t i = 0; i < host->nmsrs; i++)
		if (host->msrs[i] != MSR_IA32_TSC && host->msrs[i] != MSR_IA32_TSC_DEADLINE)
			sorted[n++] = host->msrs[i];
	if (deadline)
		sorted[n++] = MSR_IA32_TSC_DEADLINE;
	memcpy(host->msrs, sorted, n * sizeof(*sorted));
}

static void probe_caps(struct vm *vm, struct vcpu_state_host *host)
{
	host->xsave = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	int xsave2 = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	host->xsave_size = xsave2 > (int)sizeof(struct kvm_xsave) ? (uint32_t)xsave2
								  : (uint32_t)sizeof(struct kvm_xsave);
	host->xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
}

/* Snapshots cannot do without these; every KVM since Linux 2.6.35 has them. */
static int check_required_caps(struct vm *vm)
{
	static const struct {
		int cap;
		const char *name;
	} caps[] = { { KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS" },
		     { KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS" },
		     { KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" } };
	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
			log_error("/dev/kvm: missing %s, which a snapshot needs", caps[i].name);
			return -ENOTSUP;
		}
	}
	return 0;
}

static struct vcpu_state_host *probe(struct vm *vm)
{
	struct vcpu_state_host *host = calloc(1, sizeof(*host));
	struct msr_candidates *c = calloc(1, sizeof(*c));
	int err = host && c ? check_required_caps(vm) : -ENOMEM;
	if (!err)
		err = gather_candidates(vm, c);
	if (!err)
		err = keep_readable(vm->vcpus[0].fd, c, host);
	free(c);
	if (err) {
		free(host);
		return NULL;
	}
	probe_caps(vm, host);
	order_for_restore(host);
	for (uint32_t i = 0; i < host->nmsrs; i++)
		host->npvm += host->msrs[i] >= MSR_PVM_FIRST && host->msrs[i] <= MSR_PVM_LAST;
	log_debug("vCPU state: %u MSRs (%u in PVM's range), xsave %u bytes%s", host->nmsrs,
		  host->npvm, host->xsave ? host->xsave_size : 0, host->xcrs ? ", XCRs" : "");
	return host;
}

const struct vcpu_state_host *vcpu_state_host(struct vm *vm)
{
	if (!vm->state_host && vm->nvcpus > 0 && vm->vcpus)
		vm->state_host = probe(vm);
	return vm->state_host;
}

bool vcpu_state_host_has_msr(const struct vcpu_state_host *host, uint32_t index)
{
	for (uint32_t i = 0; i < host->nmsrs; i++)
		if (host->msrs[i] == index)
			return true;
	return false;
}
