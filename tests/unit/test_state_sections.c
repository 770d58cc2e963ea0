/* The VM's own state in the snapshot file: what is written reads back the same, and a
 * hostile file (counts past the limits, MSRs the host does not keep, wrong blob sizes,
 * unknown flags, truncation) is refused with one line naming file, section and field.
 * No /dev/kvm needed: the states and the host's MSR list are made up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/snapfile.h"
#include "snapshot/state_sections.h"

static char path[64];
static struct vcpu_state_host host;

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/argon-sections-%d.snap", getpid());
	memset(&host, 0, sizeof(host));
	const uint32_t msrs[] = { 0x10, 0x174, 0xc0000080, 0x4b564d01, MSR_PVM_VIF, 0x6e0 };
	for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++)
		host.msrs[host.nmsrs++] = msrs[i];
	host.xsave = true;
	host.xsave_size = 4096;
	host.xcrs = true;
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	return 0;
}

static struct vcpu_state *sample_vcpu(void)
{
	struct vcpu_state *s = vcpu_state_alloc();
	assert_non_null(s);
	s->mp_state.mp_state = KVM_MP_STATE_HALTED;
	s->regs = (struct kvm_regs){ .rax = 1, .r15 = 15, .rip = 0x100200, .rflags = 0x202 };
	s->sregs.cs = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = 0x10,
					    .type = 11, .present = 1, .l = 1, .g = 1 };
	s->sregs.tr.unusable = 1;
	s->sregs.gdt = (struct kvm_dtable){ .base = 0x1000, .limit = 0x2f };
	s->sregs.cr0 = 0x80050033;
	s->sregs.efer = 0xd01;
	s->sregs.apic_base = 0xfee00d00;
	s->sregs.interrupt_bitmap[3] = 1ull << 63;
	assert_int_equal(vcpu_state_set_xsave_size(s, 4096), 0);
	memset(s->xsave, 0x5a, 4096);
	s->has_xcrs = true;
	s->xcrs.nr_xcrs = 1;
	s->xcrs.xcrs[0] = (struct kvm_xcr){ .xcr = 0, .value = 7 };
	s->debugregs.dr7 = 0x400;
	s->lapic.regs[0x20] = 1;
	s->lapic.regs[1023] = 0xee;
	s->events.nmi.masked = 1;
	s->events.flags = KVM_VCPUEVENT_VALID_SHADOW;
	s->ncpuid = 2;
	s->cpuid[1] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 1 << 3 };
	s->nmsrs = 3;
	s->msrs[0] = (struct kvm_msr_entry){ .index = 0x10, .data = 123456789 };
	s->msrs[1] = (struct kvm_msr_entry){ .index = MSR_PVM_VIF, .data = 0x1000 | 0x400 };
	s->msrs[2] = (struct kvm_msr_entry){ .index = 0x6e0, .data = 99 };
	return s;
}

static void write_file(const struct vcpu_state *v, const struct vm_state *vm)
{
	struct snap_writer *w;
	char err[256];
	assert_int_equal(snap_writer_create(path, &w, err, sizeof(err)), 0);
	assert_int_equal(vcpu_section_write(w, 0, v), 0);
	assert_int_equal(vm_sections_write(w, vm), 0);
	assert_int_equal(snap_writer_commit(w, err, sizeof(err)), 0);
}

/* Reads vcpu/0 of path into out; returns the read's status, the message in err. */
static int read_vcpu(struct vcpu_state *out, char *err, size_t errlen)
{
	struct snap_reader *r;
	assert_int_equal(snap_reader_open(path, &r, err, errlen), 0);
	int rc = vcpu_section_read(r, path, 0, &host, out, err, errlen);
	snap_reader_close(r);
	return rc;
}

static void a_vcpu_reads_back_the_same(void **state)
{
	struct vcpu_state *s = sample_vcpu(), *back = vcpu_state_alloc();
	struct vm_state vm = { .clock_ns = 5 };
	write_file(s, &vm);
	char err[256] = "";
	assert_int_equal(read_vcpu(back, err, sizeof(err)), 0);
	assert_memory_equal(&s->regs, &back->regs, sizeof(s->regs));
	assert_memory_equal(&s->sregs, &back->sregs, sizeof(s->sregs));
	assert_int_equal(back->xsave_size, 4096);
	assert_memory_equal(s->xsave, back->xsave, 4096);
	assert_memory_equal(&s->xcrs.xcrs[0], &back->xcrs.xcrs[0], sizeof(s->xcrs.xcrs[0]));
	assert_memory_equal(&s->debugregs, &back->debugregs, sizeof(s->debugregs));
	assert_memory_equal(&s->lapic, &back->lapic, sizeof(s->lapic));
	assert_memory_equal(&s->events, &back->events, sizeof(s->events));
	assert_memory_equal(s->cpuid, back->cpuid, 2 * sizeof(s->cpuid[0]));
	assert_memory_equal(s->msrs, back->msrs, 3 * sizeof(s->msrs[0]));
	assert_int_equal(back->mp_state.mp_state, KVM_MP_STATE_HALTED);
	vcpu_state_free(s);
	vcpu_state_free(back);
}

static void the_vm_sections_read_back_the_same(void **state)
{
	struct vcpu_state *v = sample_vcpu();
	struct vm_state s = { .clock_ns = 123456789012, .clock_flags = 2, .tsc_khz = 1996248 };
	s.pic[1].imr = 0xff;
	s.pic[0].elcr_mask = 0xf8;
	s.ioapic.base_address = 0xfec00000;
	s.ioapic.redirtbl[23].bits = 0x10030;
	s.pit.channels[2].count_load_time = -5;
	s.pit.channels[0].mode = 2;
	s.pit.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	write_file(v, &s);
	struct snap_reader *r;
	char err[256];
	assert_int_equal(snap_reader_open(path, &r, err, sizeof(err)), 0);
	struct vm_state back;
	memset(&back, 0, sizeof(back));
	assert_int_equal(vm_sections_read(r, path, &back, err, sizeof(err)), 0);
	assert_memory_equal(&s.pic, &back.pic, sizeof(s.pic));
	assert_memory_equal(&s.ioapic, &back.ioapic, sizeof(s.ioapic));
	assert_memory_equal(&s.pit.channels, &back.pit.channels, sizeof(s.pit.channels));
	assert_int_equal(back.pit.flags, s.pit.flags);
	assert_int_equal(back.clock_ns, s.clock_ns);
	assert_int_equal(back.tsc_khz, s.tsc_khz);
	snap_reader_close(r);
	vcpu_state_free(v);
}

/* Writes the state, lets mutate() spoil it, and expects the read to fail naming
 * what. */
static void expect_refused(void (*mutate)(struct vcpu_state *), const char *what)
{
	struct vcpu_state *s = sample_vcpu(), *back = vcpu_state_alloc();
	struct vm_state vm = { 0 };
	mutate(s);
	write_file(s, &vm);
	char err[256] = "";
	assert_int_equal(read_vcpu(back, err, sizeof(err)), -EINVAL);
	if (!strstr(err, what) || !strstr(err, path))
		fail_msg("message '%s' does not name '%s' and the file", err, what);
	vcpu_state_free(s);
	vcpu_state_free(back);
}

static void foreign_msr(struct vcpu_state *s) { s->msrs[1].index = 0x4b564d42; }
static void duplicate_msr(struct vcpu_state *s) { s->msrs[2].index = 0x10; }
static void many_msrs(struct vcpu_state *s)
{
	s->nmsrs = host.nmsrs + 1;
	for (uint32_t i = 0; i < s->nmsrs; i++)
		s->msrs[i].index = i < host.nmsrs ? host.msrs[i] : 0x174;
}
static void big_xsave(struct vcpu_state *s)
{
	assert_int_equal(vcpu_state_set_xsave_size(s, 8192), 0);
}

static void hostile_vcpu_sections_are_refused(void **state)
{
	expect_refused(foreign_msr, "field msrs[1].index: MSR 0x4b564d42");
	expect_refused(duplicate_msr, "field msrs[2].index: MSR 0x10 appears twice");
	expect_refused(many_msrs, "field msrs: 7 entries, at most 6");
	expect_refused(big_xsave, "field xsave: 8192 bytes");
}

/* A snapshot from a PVM host on a host without PVM: the VIF MSR is not in the list. */
static void a_pvm_snapshot_names_pvm_elsewhere(void **state)
{
	struct vcpu_state *s = sample_vcpu(), *back = vcpu_state_alloc();
	struct vm_state vm = { 0 };
	write_file(s, &vm);
	host.msrs[4] = 0x174; /* this host lacks 0x4b564d10 (listed twice does no harm) */
	char err[256] = "";
	assert_int_equal(read_vcpu(back, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "MSR 0x4b564d10 is not one this host's KVM keeps (the "
				    "snapshot comes from a PVM host)"));
	host.msrs[4] = MSR_PVM_VIF;
	vcpu_state_free(s);
	vcpu_state_free(back);
}

/* Raw payloads: a section claiming more entries than it holds, bad event flags, an
 * IOAPIC of the wrong size, a missing section, another version. */
static void write_raw(const char *kind, const char *id, uint32_t version,
		      void (*fill)(struct snap_writer *))
{
	struct snap_writer *w;
	char err[256];
	assert_int_equal(snap_writer_create(path, &w, err, sizeof(err)), 0);
	assert_int_equal(snap_section_begin(w, kind, id, version), 0);
	fill(w);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_commit(w, err, sizeof(err)), 0);
}

static void truncated_vcpu(struct snap_writer *w)
{
	snap_put_u32(w, 0);
	snap_put_u64(w, 1);
}

static void short_ioapic(struct snap_writer *w)
{
	for (int i = 0; i < 32; i++)
		snap_put_u8(w, 0);
	snap_put_u64(w, 0xfec00000);
	for (int i = 0; i < 3; i++)
		snap_put_u32(w, 0);
	snap_put_u32(w, 1000000); /* pins */
}

static int read_vm(char *err, size_t errlen)
{
	struct snap_reader *r;
	assert_int_equal(snap_reader_open(path, &r, err, errlen), 0);
	struct vm_state s;
	int rc = vm_sections_read(r, path, &s, err, errlen);
	snap_reader_close(r);
	return rc;
}

static void hostile_raw_sections_are_refused(void **state)
{
	char err[256] = "";
	struct vcpu_state *back = vcpu_state_alloc();
	write_raw("vcpu", "0", 1, truncated_vcpu);
	assert_int_equal(read_vcpu(back, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "section vcpu/0 is truncated or malformed"));
	write_raw("vcpu", "0", 2, truncated_vcpu);
	assert_int_equal(read_vcpu(back, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "section vcpu/0 has version 2; this argon reads 1"));
	write_raw("vcpu", "1", 1, truncated_vcpu);
	assert_int_equal(read_vcpu(back, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no section vcpu/0"));
	write_raw("irqchip", "", 1, short_ioapic);
	assert_int_equal(read_vm(err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "section irqchip/: field ioapic.pins: 1000000"));
	vcpu_state_free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_vcpu_reads_back_the_same),
		cmocka_unit_test(the_vm_sections_read_back_the_same),
		cmocka_unit_test(hostile_vcpu_sections_are_refused),
		cmocka_unit_test(a_pvm_snapshot_names_pvm_elsewhere),
		cmocka_unit_test(hostile_raw_sections_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
