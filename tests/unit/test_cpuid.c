/* Unit tests for the CPUID topology and reset MSRs, on synthesized Intel-like and
 * AMD-like KVM_GET_SUPPORTED_CPUID tables. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/cpuid.h"
#include "common/util.h"

#define CAPACITY 64
#define TSC_KHZ 2500000
#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

struct table {
	struct kvm_cpuid2 hdr;
	struct kvm_cpuid_entry2 entries[CAPACITY];
};

static void add(struct table *t, uint32_t fn, uint32_t index, uint32_t flags, uint32_t eax,
		uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	assert_true(t->hdr.nent < CAPACITY);
	t->entries[t->hdr.nent++] = (struct kvm_cpuid_entry2){
		.function = fn, .index = index, .flags = flags,
		.eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx,
	};
}

static void add_vendor(struct table *t, uint32_t max, const char *vendor)
{
	uint32_t r[3];
	memcpy(r, vendor, 12);
	add(t, 0, 0, 0, max, r[0], r[2], r[1]); /* the string is EBX, EDX, ECX */
}

static void add_kvm_leaves(struct table *t)
{
	uint32_t r[3];
	memcpy(r, "KVMKVMKVM\0\0\0", 12);
	add(t, 0x40000000, 0, 0, 0x40000001, r[0], r[1], r[2]);
	add(t, 0x40000001, 0, 0, 0x01007AFB, 0, 0, 0); /* kvm-clock and friends */
}

/* Caches as subleaves: L1d, L1i, L2, L3 (with host sharing bits set), then type 0. */
static void add_caches(struct table *t, uint32_t fn)
{
	add(t, fn, 0, SIG, 0x1 | 1 << 5 | 0xFFFu << 14 | 0x3Fu << 26, 0, 0, 0);
	add(t, fn, 1, SIG, 0x2 | 1 << 5 | 0xFFFu << 14, 0, 0, 0);
	add(t, fn, 2, SIG, 0x3 | 2 << 5 | 0xFFFu << 14, 0, 0, 0);
	add(t, fn, 3, SIG, 0x3 | 3 << 5 | 0xFFFu << 14, 0, 0, 0);
	add(t, fn, 4, SIG, 0, 0, 0, 0);
}

/* An Intel host: basic leaves up to 0x1F, caches in leaf 4, host topology in 0xB/0x1F. */
static void intel_table(struct table *t)
{
	memset(t, 0, sizeof(*t));
	add_vendor(t, 0x1F, "GenuineIntel");
	add(t, 1, 0, 0, 0x000906EA, 0x00FF0800, 1u << 21 | 1u << 24 | 1u << 0, 1u << 28 | 1);
	add_caches(t, 4);
	for (uint32_t fn = 0xB; fn <= 0x1F; fn += 0x1F - 0xB) {
		add(t, fn, 0, SIG, 1, 2, 0x100, 3);
		add(t, fn, 1, SIG, 4, 16, 0x201, 3);
		add(t, fn, 2, SIG, 0, 0, 2, 3);
	}
	add_kvm_leaves(t);
	add(t, 0x80000000, 0, 0, 0x80000008, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0, 0x121, 0x2C100800);
	add(t, 0x80000008, 0, 0, 0x3027, 0, 0, 0);
}

/* An AMD host: 0xB with only two subleaves, caches in 0x8000_001D, TopologyExtensions. */
static void amd_table(struct table *t)
{
	memset(t, 0, sizeof(*t));
	add_vendor(t, 0x10, "AuthenticAMD");
	add(t, 1, 0, 0, 0x00A00F11, 0x00020800, 1u << 21 | 1u << 24, 1u << 28);
	add(t, 0xB, 0, SIG, 1, 2, 0x100, 1);
	add(t, 0xB, 1, SIG, 7, 64, 0x201, 1);
	add_kvm_leaves(t);
	add(t, 0x80000000, 0, 0, 0x80000021, 0, 0, 0);
	add(t, 0x80000001, 0, 0, 0, 0, 1u << 22 | 1u << 1, 0);
	add(t, 0x80000008, 0, 0, 0x3030, 0, 0x0003707F, 0); /* PerfTscSize bits 17:16 set */
	add_caches(t, 0x8000001D);
	add(t, 0x8000001E, 0, 0, 0xDEAD, 0xBEEF, 0x1234, 0x5678);
}

static const struct kvm_cpuid_entry2 *get(const struct table *t, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < t->hdr.nent; i++) {
		const struct kvm_cpuid_entry2 *e = &t->entries[i];
		if (e->function == fn && (!(e->flags & SIG) || e->index == index))
			return e;
	}
	fail_msg("no CPUID leaf 0x%x.%u", fn, index);
	return NULL;
}

static bool has(const struct table *t, uint32_t fn)
{
	for (uint32_t i = 0; i < t->hdr.nent; i++)
		if (t->entries[i].function == fn)
			return true;
	return false;
}

static uint32_t shift_for(int n)
{
	uint32_t s = 0;
	while ((1 << s) < n)
		s++;
	return s;
}

static void check_leaf1(const struct table *t, int index, int n)
{
	const struct kvm_cpuid_entry2 *e = get(t, 1, 0);
	assert_int_equal(e->ebx >> 24, (uint32_t)index & 0xFF);
	assert_int_equal((e->ebx >> 16) & 0xFF, MIN(1u << shift_for(n), 255u));
	assert_int_equal(e->ebx & 0xFFFF, 0x0800); /* CLFLUSH size kept */
	assert_int_equal(!!(e->edx & 1u << 28), n > 1); /* HTT */
	assert_true(e->ecx & 1u << 31);		       /* hypervisor */
	assert_true(e->ecx & 1u << 21);		       /* x2APIC kept */
	assert_true(e->ecx & 1u << 24);		       /* TSC-deadline kept */
}

static void check_ext_topology(const struct table *t, uint32_t fn, int index, int n)
{
	const struct kvm_cpuid_entry2 *smt = get(t, fn, 0), *core = get(t, fn, 1),
				      *end = get(t, fn, 2);
	assert_int_equal(smt->eax, n > 1 ? 1 : 0);
	assert_int_equal(smt->ebx, n > 1 ? 2 : 1);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(core->eax, shift_for(n));
	assert_int_equal(core->ebx, n);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);
	assert_int_equal(smt->edx, index);
	assert_int_equal(core->edx, index);
	assert_int_equal(end->edx, index);
}

/* L1 and L2 shared by a core's threads, L3 by the package. */
static void check_caches(const struct table *t, uint32_t fn, int n)
{
	uint32_t per_core = n > 1 ? 1 : 0, per_pkg = (1u << shift_for(n)) - 1;
	assert_int_equal((get(t, fn, 0)->eax >> 14) & 0xFFF, per_core);
	assert_int_equal((get(t, fn, 1)->eax >> 14) & 0xFFF, per_core);
	assert_int_equal((get(t, fn, 2)->eax >> 14) & 0xFFF, per_core);
	assert_int_equal((get(t, fn, 3)->eax >> 14) & 0xFFF, per_pkg);
	assert_int_equal(get(t, fn, 0)->eax & 0x3FFF, 0x1 | 1 << 5); /* type and level kept */
	if (fn == 4) /* core ids per package - 1 */
		assert_int_equal(get(t, 4, 0)->eax >> 26,
				 MIN((1u << (shift_for(n) - (n > 1))) - 1, 63u));
}

static void check_kvm_leaves(const struct table *t)
{
	const struct kvm_cpuid_entry2 *sig = get(t, 0x40000000, 0);
	assert_int_equal(sig->eax, 0x40000010);
	assert_memory_equal(&sig->ebx, "KVMK", 4);
	assert_memory_equal(&sig->ecx, "VMKV", 4);
	assert_memory_equal(&sig->edx, "M\0\0\0", 4);
	assert_int_equal(get(t, 0x40000001, 0)->eax, 0x01007AFB);
	const struct kvm_cpuid_entry2 *timing = get(t, 0x40000010, 0);
	assert_int_equal(timing->eax, TSC_KHZ);
	assert_int_equal(timing->ebx, 1000000);
}

static void check_intel(int index, int n)
{
	struct table t;
	intel_table(&t);
	assert_int_equal(cpuid_configure(&t.hdr, CAPACITY, index, n, TSC_KHZ), 0);
	check_leaf1(&t, index, n);
	check_ext_topology(&t, 0xB, index, n);
	check_ext_topology(&t, 0x1F, index, n);
	check_caches(&t, 4, n);
	check_kvm_leaves(&t);
	assert_int_equal(get(&t, 0x80000008, 0)->ecx, 0); /* AMD-only fields left alone */
	assert_int_equal(get(&t, 0x80000001, 0)->ecx, 0x121);
}

static void check_amd(int index, int n)
{
	struct table t;
	amd_table(&t);
	assert_int_equal(cpuid_configure(&t.hdr, CAPACITY, index, n, TSC_KHZ), 0);
	check_leaf1(&t, index, n);
	check_ext_topology(&t, 0xB, index, n); /* subleaf 2 appended */
	assert_false(has(&t, 0x1F));	       /* beyond the host's basic leaves */
	assert_false(has(&t, 4));
	check_caches(&t, 0x8000001D, n);
	check_kvm_leaves(&t);
	assert_int_equal(!!(get(&t, 0x80000001, 0)->ecx & 2), n > 1); /* CmpLegacy */
	assert_true(get(&t, 0x80000001, 0)->ecx & 1u << 22);	   /* TOPOEXT kept */
	uint32_t ecx = get(&t, 0x80000008, 0)->ecx;
	assert_int_equal(ecx & 0xFF, MIN(n - 1, 255));
	assert_int_equal((ecx >> 12) & 0xF, shift_for(n));
	assert_int_equal(ecx >> 16, 3); /* PerfTscSize kept */
	const struct kvm_cpuid_entry2 *ext = get(&t, 0x8000001E, 0);
	assert_int_equal(ext->eax, index);
	assert_int_equal(ext->ebx, (n > 1 ? 1u << 8 : 0) | (((uint32_t)index >> (n > 1)) & 0xFF));
	assert_int_equal(ext->ecx, 0);
}

static void test_eight_vcpus(void **state)
{
	(void)state;
	for (int i = 0; i < 8; i++) {
		check_intel(i, 8);
		check_amd(i, 8);
	}
}

static void test_one_vcpu(void **state)
{
	(void)state;
	check_intel(0, 1);
	check_amd(0, 1);
}

/* Odd counts: the last core has one thread; ids still fit ceil(log2(n)) bits. */
static void test_odd_counts(void **state)
{
	(void)state;
	static const int counts[] = { 3, 5, 7, 9, 31 };
	for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
		for (int i = 0; i < counts[c]; i++) {
			check_intel(i, counts[c]);
			check_amd(i, counts[c]);
		}
	}
}

/* Past 255 vCPUs the 8-bit fields saturate; x2APIC ids carry the truth. */
static void test_many_vcpus(void **state)
{
	(void)state;
	check_intel(299, 300);
	check_amd(299, 300);
	check_intel(1023, 1024);
}

static void check_rejected(int index, int n, uint32_t nent_extra)
{
	struct table t, before;
	intel_table(&t);
	t.hdr.nent += nent_extra;
	before = t;
	assert_int_equal(cpuid_configure(&t.hdr, CAPACITY, index, n, TSC_KHZ), -EINVAL);
	assert_memory_equal(&t, &before, sizeof(t));
}

static void test_bad_arguments(void **state)
{
	(void)state;
	check_rejected(0, 0, 0);
	check_rejected(-1, 4, 0);
	check_rejected(4, 4, 0);
	check_rejected(0, 1025, 0);
	check_rejected(0, 4, CAPACITY); /* nent beyond the capacity */
}

/* A full table: leaf 0x4000_0010 is optional and simply not added; a missing
 * topology subleaf is an error. */
static void test_no_room(void **state)
{
	(void)state;
	struct table t;
	intel_table(&t);
	assert_int_equal(cpuid_configure(&t.hdr, t.hdr.nent, 1, 4, TSC_KHZ), 0);
	assert_false(has(&t, 0x40000010));
	assert_int_equal(get(&t, 0x40000000, 0)->eax, 0x40000001);
	check_ext_topology(&t, 0xB, 1, 4);

	amd_table(&t);
	assert_int_equal(cpuid_configure(&t.hdr, t.hdr.nent, 1, 4, TSC_KHZ), -ENOSPC);
}

static void test_no_tsc_khz(void **state)
{
	(void)state;
	struct table t;
	intel_table(&t);
	assert_int_equal(cpuid_configure(&t.hdr, CAPACITY, 0, 2, 0), 0);
	assert_false(has(&t, 0x40000010));
	assert_int_equal(get(&t, 0x40000000, 0)->eax, 0x40000001);
}

static uint64_t msr_value(const struct kvm_msr_entry *e, int n, uint32_t index)
{
	for (int i = 0; i < n; i++)
		if (e[i].index == index)
			return e[i].data;
	fail_msg("MSR 0x%x missing", index);
	return 0;
}

static void test_reset_msrs(void **state)
{
	(void)state;
	struct kvm_msr_entry e[CPUID_MSR_RESET_MAX];
	memset(e, 0xAA, sizeof(e));
	int n = cpuid_reset_msrs(e, CPUID_MSR_RESET_MAX);
	assert_int_equal(n, 11);
	static const uint32_t zeroed[] = { 0x174, 0x175, 0x176, 0xC0000081, 0xC0000082,
					   0xC0000083, 0xC0000084, 0xC0000102, 0x10 };
	for (size_t i = 0; i < ARRAY_SIZE(zeroed); i++)
		assert_int_equal(msr_value(e, n, zeroed[i]), 0);
	assert_int_equal(msr_value(e, n, 0x1A0), 1);		   /* fast strings */
	assert_int_equal(msr_value(e, n, 0x2FF), (1 << 11) | 6); /* MTRRs on, WB */
	for (int i = 0; i < n; i++) {
		assert_int_equal(e[i].reserved, 0);
		assert_int_not_equal(e[i].index, 0x1B); /* APIC base goes with sregs */
	}
	assert_int_equal(cpuid_reset_msrs(e, n - 1), -ENOSPC);
	assert_int_equal(cpuid_reset_msrs(e, n), n);
}

/* machine-config.smt false (Firecracker's default): every vCPU a core of its own. */
static void test_without_smt(void **state)
{
	struct table t;
	intel_table(&t);
	assert_int_equal(cpuid_configure_smt(&t.hdr, CAPACITY, 3, 4, false, TSC_KHZ), 0);
	const struct kvm_cpuid_entry2 *smt = get(&t, 0xB, 0), *core = get(&t, 0xB, 1);
	assert_int_equal(smt->eax, 0); /* no thread bits in the APIC id */
	assert_int_equal(smt->ebx, 1); /* one thread per core */
	assert_int_equal(core->ebx, 4);
	assert_int_equal(smt->edx, 3);
	assert_int_equal((get(&t, 4, 0)->eax >> 14) & 0xFFF, 0); /* L1 not shared */
	assert_int_equal(get(&t, 4, 0)->eax >> 26, 3);		  /* four cores */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eight_vcpus),
		cmocka_unit_test(test_one_vcpu),
		cmocka_unit_test(test_odd_counts),
		cmocka_unit_test(test_many_vcpus),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_no_room),
		cmocka_unit_test(test_no_tsc_khz),
		cmocka_unit_test(test_reset_msrs),
		cmocka_unit_test(test_without_smt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
