/* vCPU and VM state against the real /dev/kvm: what one VM saves, a second VM takes
 * back and reads out the same; what a host cannot take is refused with a clear error.
 * Skipped (loudly, by cmocka) where /dev/kvm is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01u
#define MSR_PVM_MAGIC 0x4b564d11u
#define VIF_GPA 0x5000ull

static bool have_kvm(void)
{
	return access("/dev/kvm", R_OK | W_OK) == 0;
}

static int set_msr(struct vcpu *v, uint32_t index, uint64_t data)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} b = { .hdr.nmsrs = 1, .e = { .index = index, .data = data } };
	return ioctl(v->fd, KVM_SET_MSRS, &b);
}

static const struct kvm_msr_entry *find_msr(const struct vcpu_state *s, uint32_t index)
{
	for (uint32_t i = 0; i < s->nmsrs; i++)
		if (s->msrs[i].index == index)
			return &s->msrs[i];
	return NULL;
}

/* Marks vCPU 1 of vm with values a fresh vCPU would not have. */
static void mark_vcpu(struct vm *vm, bool pvm)
{
	struct vcpu *v = &vm->vcpus[1];
	struct kvm_regs regs = { .rip = 0x123456, .rax = 0xfeedface, .r15 = 42, .rflags = 0x2 };
	assert_int_equal(ioctl(v->fd, KVM_SET_REGS, &regs), 0);
	struct kvm_lapic_state lapic;
	assert_int_equal(ioctl(v->fd, KVM_GET_LAPIC, &lapic), 0);
	lapic.regs[0x80] = 0x20; /* TPR */
	assert_int_equal(ioctl(v->fd, KVM_SET_LAPIC, &lapic), 0);
	assert_int_equal(set_msr(v, MSR_KVM_SYSTEM_TIME_NEW, 0x7000 | 1), 1);
	if (pvm)
		assert_int_equal(set_msr(v, MSR_PVM_VIF, VIF_GPA | 0x400), 1);
}

struct saved {
	struct vm_state vm;
	struct vcpu_state *vcpu[2];
};

static void save_all(struct vm *vm, struct saved *s)
{
	assert_int_equal(vm_state_save(vm, &s->vm), 0);
	for (int i = 0; i < 2; i++) {
		s->vcpu[i] = vcpu_state_alloc();
		assert_non_null(s->vcpu[i]);
		assert_int_equal(vcpu_state_save(&vm->vcpus[i], s->vcpu[i]), 0);
	}
}

static int restore_all(struct vm *vm, const struct saved *s)
{
	int err = vm_state_restore_tsc(vm, &s->vm);
	if (!err)
		err = vm_state_restore_irqchip(vm, &s->vm);
	for (int i = 0; !err && i < 2; i++)
		err = vcpu_state_restore(&vm->vcpus[i], s->vcpu[i]);
	if (!err)
		err = vm_state_restore_clock(vm, &s->vm);
	return err;
}

static void free_saved(struct saved *s)
{
	for (int i = 0; i < 2; i++)
		vcpu_state_free(s->vcpu[i]);
}

static void state_moves_to_a_second_vm(void **state)
{
	if (!have_kvm())
		skip();
	struct vm a, b;
	assert_int_equal(vm_create(&a, 2, 16), 0);
	const struct vcpu_state_host *host = vcpu_state_host(&a);
	assert_non_null(host);
	bool pvm = vcpu_state_host_has_msr(host, MSR_PVM_VIF);
	mark_vcpu(&a, pvm);
	struct saved s, again;
	save_all(&a, &s);
	assert_int_equal(vm_create(&b, 2, 16), 0);
	assert_int_equal(restore_all(&b, &s), 0);
	save_all(&b, &again);
	const struct vcpu_state *x = s.vcpu[1], *y = again.vcpu[1];
	assert_int_equal(y->regs.rip, 0x123456);
	assert_memory_equal(&x->regs, &y->regs, sizeof(x->regs));
	assert_int_equal(y->lapic.regs[0x80], 0x20);
	assert_int_equal(x->nmsrs, y->nmsrs);
	assert_int_equal(find_msr(y, MSR_KVM_SYSTEM_TIME_NEW)->data, 0x7001);
	if (pvm)
		assert_int_equal(find_msr(y, MSR_PVM_VIF)->data, VIF_GPA | 0x400);
	/* The guest's clock goes on from where it was saved, not back. */
	assert_true(again.vm.clock_ns >= s.vm.clock_ns);
	assert_true(again.vm.clock_ns - s.vm.clock_ns < 1000000000ull);
	free_saved(&s);
	free_saved(&again);
	vm_destroy(&a);
	vm_destroy(&b);
}

/* A read-only MSR (PVM's 0x4b564d11) restores only onto the same value; any host
 * whose MSR list lacks an index never gets that far (the decoder refuses it). */
static void a_different_read_only_msr_is_refused(void **state)
{
	if (!have_kvm())
		skip();
	struct vm a;
	assert_int_equal(vm_create(&a, 2, 16), 0);
	if (!vcpu_state_host_has_msr(vcpu_state_host(&a), MSR_PVM_MAGIC)) {
		vm_destroy(&a);
		skip(); /* not a PVM host */
	}
	struct saved s;
	save_all(&a, &s);
	struct kvm_msr_entry *magic = (struct kvm_msr_entry *)find_msr(s.vcpu[0], MSR_PVM_MAGIC);
	magic->data ^= 1;
	assert_int_equal(vcpu_state_restore(&a.vcpus[0], s.vcpu[0]), -EINVAL);
	magic->data ^= 1;
	assert_int_equal(vcpu_state_restore(&a.vcpus[0], s.vcpu[0]), 0);
	free_saved(&s);
	vm_destroy(&a);
}

/* A TSC slower than the host's: KVM scales it (hardware with TSC scaling) or the
 * restore says it cannot. Either way the guest never runs at the wrong rate. */
static void another_tsc_frequency_is_scaled_or_refused(void **state)
{
	if (!have_kvm())
		skip();
	struct vm a;
	assert_int_equal(vm_create(&a, 2, 16), 0);
	struct vm_state vs;
	assert_int_equal(vm_state_save(&a, &vs), 0);
	if (vs.tsc_khz == 0) {
		vm_destroy(&a);
		skip();
	}
	vs.tsc_khz /= 2;
	int err = vm_state_restore_tsc(&a, &vs);
	if (err == 0)
		assert_int_equal(ioctl(a.vcpus[1].fd, KVM_GET_TSC_KHZ, 0), (int)vs.tsc_khz);
	else
		assert_int_equal(err, -ENOTSUP);
	vm_destroy(&a);
}

/* Every MSR the list names is one KVM_GET_MSRS reads, without duplicates, and the TSC
 * comes before the TSC deadline. */
static void the_msr_list_is_readable_and_ordered(void **state)
{
	if (!have_kvm())
		skip();
	struct vm a;
	assert_int_equal(vm_create(&a, 1, 16), 0);
	const struct vcpu_state_host *host = vcpu_state_host(&a);
	assert_non_null(host);
	assert_true(host->nmsrs > 10);
	int tsc = -1, deadline = -1;
	for (uint32_t i = 0; i < host->nmsrs; i++) {
		for (uint32_t j = i + 1; j < host->nmsrs; j++)
			assert_int_not_equal(host->msrs[i], host->msrs[j]);
		tsc = host->msrs[i] == 0x10 ? (int)i : tsc;
		deadline = host->msrs[i] == 0x6e0 ? (int)i : deadline;
	}
	assert_int_equal(tsc, 0);
	if (deadline >= 0)
		assert_int_equal(deadline, (int)host->nmsrs - 1);
	vm_destroy(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_moves_to_a_second_vm),
		cmocka_unit_test(a_different_read_only_msr_is_refused),
		cmocka_unit_test(another_tsc_frequency_is_scaled_or_refused),
		cmocka_unit_test(the_msr_list_is_readable_and_ordered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
