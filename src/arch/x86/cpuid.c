/* What a vCPU sees of its CPU: the CPUID topology (one socket, cores of two hyperthreads,
 * as on EC2 where a vCPU is a hyperthread) and the MSRs it starts with. References:
 * Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E; Linux
 * Documentation/virt/kvm/x86/cpuid.rst for the 0x4000_00xx leaves. */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/util.h"

#define CPUID_MAX_VCPUS 1024 /* KVM_MAX_VCPUS on x86 */

struct topo {
	uint32_t apic_id;	   /* = vCPU index */
	uint32_t nvcpus;
	uint32_t threads_per_core; /* 2, or 1 for a single vCPU */
	uint32_t smt_shift;	   /* APIC id bits of the thread within its core */
	uint32_t pkg_shift;	   /* APIC id bits below the package: ceil(log2(nvcpus)) */
};

static uint32_t ceil_log2(uint32_t n)
{
	uint32_t s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

/* With APIC id = index and two threads per core, thread = id bit 0 and core = the rest,
 * and ceil(log2(nvcpus)) bits address every id: 1 + ceil(log2(ceil(n/2))) equals it.
 * Without SMT every vCPU is a core of its own. */
static struct topo topo_init(int index, int nvcpus, bool smt)
{
	struct topo t = { .apic_id = (uint32_t)index, .nvcpus = (uint32_t)nvcpus };
	t.threads_per_core = smt && nvcpus > 1 ? 2 : 1;
	t.smt_shift = ceil_log2(t.threads_per_core);
	t.pkg_shift = ceil_log2(t.nvcpus);
	return t;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/* The entry for (fn, index), appended zeroed when missing and there is room; NULL
 * otherwise. indexed marks leaves whose subleaf (ECX) selects the entry. */
static struct kvm_cpuid_entry2 *get_or_add(struct kvm_cpuid2 *c, uint32_t capacity, uint32_t fn,
					   uint32_t index, bool indexed)
{
	struct kvm_cpuid_entry2 *e = find(c, fn, index);
	if (e || c->nent >= capacity)
		return e;
	e = &c->entries[c->nent++];
	*e = (struct kvm_cpuid_entry2){
		.function = fn,
		.index = index,
		.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
	};
	return e;
}

static uint32_t max_leaf(struct kvm_cpuid2 *c, uint32_t base)
{
	struct kvm_cpuid_entry2 *e = find(c, base, 0);
	return e ? e->eax : 0;
}

/* Leaf 0's vendor string is EBX, EDX, ECX. Hygon's Dhyana is an AMD Zen. */
static bool vendor_is(struct kvm_cpuid2 *c, const char *vendor)
{
	struct kvm_cpuid_entry2 *e = find(c, 0, 0);
	char s[12];
	if (!e)
		return false;
	memcpy(s, &e->ebx, 4);
	memcpy(s + 4, &e->edx, 4);
	memcpy(s + 8, &e->ecx, 4);
	return memcmp(s, vendor, sizeof(s)) == 0;
}

static bool is_amd(struct kvm_cpuid2 *c)
{
	return vendor_is(c, "AuthenticAMD") || vendor_is(c, "HygonGenuine");
}

/* Leaf 1: EBX[31:24] initial APIC id, EBX[23:16] APIC ids reserved per package (valid
 * when EDX.HTT), ECX[31] "running under a hypervisor". x2APIC (ECX[21]) and
 * TSC-deadline (ECX[24]) stay as KVM reports them: both are emulated by its LAPIC. */
static void set_leaf1(struct kvm_cpuid2 *c, const struct topo *t)
{
	struct kvm_cpuid_entry2 *e = find(c, 1, 0);
	if (!e)
		return;
	uint32_t ids = MIN(1u << t->pkg_shift, 255u);
	e->ebx = (e->ebx & 0xFFFF) | ids << 16 | (t->apic_id & 0xFF) << 24;
	e->edx = t->nvcpus > 1 ? e->edx | 1u << 28 : e->edx & ~(1u << 28);
	e->ecx |= 1u << 31;
}

/* Intel leaf 4 and AMD leaf 0x8000_001D describe one cache per subleaf; EAX[25:14] is
 * the number of APIC ids sharing it minus one: a core's threads share L1 and L2, the
 * package shares L3. */
static void set_cache_sharing(struct kvm_cpuid2 *c, uint32_t fn, const struct topo *t)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != fn || (e->eax & 0x1F) == 0) /* type 0: no more caches */
			continue;
		uint32_t level = (e->eax >> 5) & 7;
		uint32_t shift = level <= 2 ? t->smt_shift : t->pkg_shift;
		e->eax = (e->eax & ~(0xFFFu << 14)) | (((1u << shift) - 1) & 0xFFF) << 14;
		if (fn == 4) /* EAX[31:26]: core ids per package minus one */
			e->eax = (e->eax & 0x03FFFFFF) |
				 MIN((1u << (t->pkg_shift - t->smt_shift)) - 1, 63u) << 26;
	}
}

/* Leaves 0xB and 0x1F (SDM: "V2 Extended Topology"): subleaf 0 is the SMT level, 1 the
 * core level, whose shift covers the whole package; 2 and any the host listed beyond
 * end the list (type 0). EDX is the x2APIC id in every subleaf. */
static int set_ext_topology(struct kvm_cpuid2 *c, uint32_t capacity, uint32_t fn,
			    const struct topo *t)
{
	for (uint32_t sub = 0; sub < 3; sub++)
		if (!get_or_add(c, capacity, fn, sub, true))
			return -ENOSPC;
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != fn)
			continue;
		uint32_t sub = e->index;
		e->eax = sub == 0 ? t->smt_shift : sub == 1 ? t->pkg_shift : 0;
		e->ebx = sub == 0 ? t->threads_per_core : sub == 1 ? t->nvcpus : 0;
		e->ecx = (sub < 2 ? (sub + 1) << 8 : 0) | (sub & 0xFF);
		e->edx = t->apic_id;
	}
	return 0;
}

/* AMD APM vol. 3, E.4: 0x8000_0001 ECX[1] CmpLegacy says leaf 1's logical count is
 * cores (Linux then takes threads from 0x8000_001E); 0x8000_0008 ECX[7:0] NC is
 * threads per package minus one, ECX[15:12] ApicIdSize the APIC id bits they use. */
static void set_amd_counts(struct kvm_cpuid2 *c, const struct topo *t)
{
	struct kvm_cpuid_entry2 *e = find(c, 0x80000001, 0);
	if (e)
		e->ecx = t->nvcpus > 1 ? e->ecx | 1u << 1 : e->ecx & ~(1u << 1);
	e = find(c, 0x80000008, 0);
	if (e)
		e->ecx = (e->ecx & ~0xF0FFu) | t->pkg_shift << 12 | MIN(t->nvcpus - 1, 255u);
}

/* AMD 0x8000_001E (with TopologyExtensions): EAX the extended APIC id, EBX[15:8]
 * ThreadsPerComputeUnit minus one and EBX[7:0] the compute unit (core) id, ECX node 0
 * of one node per package. */
static int set_amd_ext_apic(struct kvm_cpuid2 *c, uint32_t capacity, const struct topo *t)
{
	if (max_leaf(c, 0x80000000) < 0x8000001E)
		return 0;
	struct kvm_cpuid_entry2 *e = get_or_add(c, capacity, 0x8000001E, 0, false);
	if (!e)
		return -ENOSPC;
	e->eax = t->apic_id;
	e->ebx = (t->threads_per_core - 1) << 8 | ((t->apic_id >> t->smt_shift) & 0xFF);
	e->ecx = 0;
	e->edx = 0;
	return 0;
}

static int set_topology(struct kvm_cpuid2 *c, uint32_t capacity, const struct topo *t)
{
	int err = 0;
	set_leaf1(c, t);
	if (max_leaf(c, 0) >= 0xB)
		err = set_ext_topology(c, capacity, 0xB, t);
	if (!err && max_leaf(c, 0) >= 0x1F)
		err = set_ext_topology(c, capacity, 0x1F, t);
	if (err)
		return err;
	if (!is_amd(c)) {
		set_cache_sharing(c, 4, t);
		return 0;
	}
	set_amd_counts(c, t);
	set_cache_sharing(c, 0x8000001D, t);
	return set_amd_ext_apic(c, capacity, t);
}

/* KVM's paravirtual leaves (cpuid.rst): 0x4000_0000 names KVM and gives the highest
 * such leaf; 0x4000_0001's features (kvm-clock, PV EOI, ...) stay as KVM supports them.
 * 0x4000_0010 is the timing leaf VMware defined and QEMU also offers: EAX the TSC
 * frequency, EBX the LAPIC timer's bus clock, 1 GHz as KVM counts it in nanoseconds,
 * so a guest that reads it needs no calibration. It is added only when there is room,
 * and only then advertised. */
static void set_kvm_leaves(struct kvm_cpuid2 *c, uint32_t capacity, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *sig = find(c, 0x40000000, 0);
	if (!sig)
		return;
	memcpy(&sig->ebx, "KVMK", 4);
	memcpy(&sig->ecx, "VMKV", 4);
	memcpy(&sig->edx, "M\0\0\0", 4);
	struct kvm_cpuid_entry2 *timing = NULL;
	if (tsc_khz)
		timing = get_or_add(c, capacity, 0x40000010, 0, false);
	if (!timing)
		return;
	*timing = (struct kvm_cpuid_entry2){ .function = 0x40000010, .eax = tsc_khz,
					     .ebx = 1000000 };
	sig->eax = MAX(sig->eax, 0x40000010u); /* appending moved no entry: sig is valid */
}

int cpuid_configure(struct kvm_cpuid2 *cpuid, uint32_t capacity, int index, int nvcpus,
		    uint32_t tsc_khz)
{
	return cpuid_configure_smt(cpuid, capacity, index, nvcpus, true, tsc_khz);
}

int cpuid_configure_smt(struct kvm_cpuid2 *cpuid, uint32_t capacity, int index, int nvcpus,
			bool smt, uint32_t tsc_khz)
{
	if (nvcpus < 1 || nvcpus > CPUID_MAX_VCPUS || index < 0 || index >= nvcpus ||
	    cpuid->nent > capacity)
		return -EINVAL;
	struct topo t = topo_init(index, nvcpus, smt);
	int err = set_topology(cpuid, capacity, &t);
	set_kvm_leaves(cpuid, capacity, tsc_khz);
	return err;
}

/* MSR indices (SDM vol. 4, AMD APM vol. 2). */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1A0
#define MSR_MTRR_DEF_TYPE 0x2FF
#define MSR_STAR 0xC0000081
#define MSR_LSTAR 0xC0000082
#define MSR_CSTAR 0xC0000083
#define MSR_SYSCALL_MASK 0xC0000084
#define MSR_KERNEL_GS_BASE 0xC0000102

#define MISC_ENABLE_FAST_STRING (1u << 0)
#define MTRR_DEF_TYPE_ENABLE (1u << 11)
#define MTRR_TYPE_WRBACK 6

/* The values firmware leaves behind at reset: system-call MSRs cleared, the TSC at 0,
 * fast strings on (SDM vol. 4, IA32_MISC_ENABLE bit 0), and MTRRs enabled with
 * write-back as the default type, so guest RAM is cacheable before the guest programs
 * any MTRR. IA32_APIC_BASE is not here: it goes in with the special registers. */
static const struct kvm_msr_entry reset_msrs[] = {
	{ .index = MSR_IA32_SYSENTER_CS },
	{ .index = MSR_IA32_SYSENTER_ESP },
	{ .index = MSR_IA32_SYSENTER_EIP },
	{ .index = MSR_STAR },
	{ .index = MSR_LSTAR },
	{ .index = MSR_CSTAR },
	{ .index = MSR_SYSCALL_MASK },
	{ .index = MSR_KERNEL_GS_BASE },
	{ .index = MSR_IA32_TSC },
	{ .index = MSR_IA32_MISC_ENABLE, .data = MISC_ENABLE_FAST_STRING },
	{ .index = MSR_MTRR_DEF_TYPE, .data = MTRR_DEF_TYPE_ENABLE | MTRR_TYPE_WRBACK },
};

int cpuid_reset_msrs(struct kvm_msr_entry *entries, int max)
{
	if (max < 0 || (size_t)max < ARRAY_SIZE(reset_msrs))
		return -ENOSPC;
	memcpy(entries, reset_msrs, sizeof(reset_msrs));
	return (int)ARRAY_SIZE(reset_msrs);
}
