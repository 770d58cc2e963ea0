/* Saving and restoring the VM-wide state (vm_state.h). */
#include "vmm/vm_state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* Firecracker's (and QEMU's) tolerance for "the same TSC frequency": two hosts'
 * calibrations of one CPU model differ by about this much. */
#define TSC_KHZ_TOLERANCE_PPM 250

static int vm_ioctl(struct vm *vm, unsigned long request, void *arg, const char *name)
{
	if (ioctl(vm->vm_fd, request, arg) >= 0)
		return 0;
	int err = -errno;
	log_error("%s: %s", name, strerror(-err));
	return err;
}
#define VM_IOCTL(vm, req, arg) vm_ioctl(vm, req, arg, #req)

/* api.rst, KVM_GET_IRQCHIP: one chip per call, named by chip_id. */
static int save_irqchip(struct vm *vm, struct vm_state *s)
{
	struct kvm_irqchip chip;
	for (uint32_t id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_IOAPIC; id++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = id;
		int err = VM_IOCTL(vm, KVM_GET_IRQCHIP, &chip);
		if (err)
			return err;
		if (id == KVM_IRQCHIP_IOAPIC)
			s->ioapic = chip.chip.ioapic;
		else
			s->pic[id] = chip.chip.pic;
	}
	return 0;
}

/* kvm-clock as pause left it (pause.c saved it when the vCPUs stopped; resume would
 * set it back), so the restored guest sees no time pass while it was paused or on
 * disk, as QEMU and Firecracker do by default. Unpaused (tests), the clock now. */
static int save_clock(struct vm *vm, struct vm_state *s)
{
	struct kvm_clock_data clock = { 0 };
	int err = VM_IOCTL(vm, KVM_GET_CLOCK, &clock);
	if (err)
		return err;
	s->clock_ns = vm->pause.clock_saved ? vm->pause.clock_ns : clock.clock;
	s->clock_flags = clock.flags;
	s->realtime_ns = clock.flags & KVM_CLOCK_REALTIME ? clock.realtime : 0;
	s->host_tsc = clock.flags & KVM_CLOCK_HOST_TSC ? clock.host_tsc : 0;
	return 0;
}

int vm_state_save(struct vm *vm, struct vm_state *s)
{
	memset(s, 0, sizeof(*s));
	int err = save_irqchip(vm, s);
	if (!err)
		err = VM_IOCTL(vm, KVM_GET_PIT2, &s->pit);
	if (!err)
		err = save_clock(vm, s);
	/* One frequency for the whole VM: argon gives every vCPU the host's. */
	int khz = err || vm->nvcpus < 1 ? 0 : ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	return err;
}

static bool same_tsc_khz(uint32_t a, uint32_t b)
{
	uint64_t diff = a > b ? a - b : b - a;
	return diff * 1000000 <= (uint64_t)b * TSC_KHZ_TOLERANCE_PPM;
}

/* api.rst, KVM_SET_TSC_KHZ: every TSC-based clock in the guest (argon-guest's, Linux's
 * tsc clocksource) counts at the frequency it measured at boot; a TSC that ticks at
 * another rate makes them run fast or slow. KVM scales it where the hardware can (TSC
 * scaling); where it refuses, the restore stops with one clear line. */
int vm_state_restore_tsc(struct vm *vm, const struct vm_state *s)
{
	for (int i = 0; i < vm->nvcpus; i++) {
		int have = ioctl(vm->vcpus[i].fd, KVM_GET_TSC_KHZ, 0);
		if (s->tsc_khz == 0 || have <= 0 || same_tsc_khz((uint32_t)have, s->tsc_khz))
			continue; /* the same, or one side cannot say */
		if (ioctl(vm->vcpus[i].fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0) {
			log_error("the snapshot's TSC ran at %u kHz, this host's at %d kHz, and KVM "
				  "cannot scale it (KVM_SET_TSC_KHZ: %s): restore it on a host "
				  "with the same TSC frequency", s->tsc_khz, have, strerror(errno));
			return -ENOTSUP;
		}
		log_info("vCPU %d: TSC scaled to the snapshot's %u kHz (this host: %d kHz)", i,
			 s->tsc_khz, have);
	}
	return 0;
}

/* The PIT first, as Firecracker does; the chips in the order they are numbered. */
int vm_state_restore_irqchip(struct vm *vm, const struct vm_state *s)
{
	struct kvm_pit_state2 pit = s->pit;
	int err = VM_IOCTL(vm, KVM_SET_PIT2, &pit);
	struct kvm_irqchip chip;
	for (uint32_t id = KVM_IRQCHIP_PIC_MASTER; !err && id <= KVM_IRQCHIP_IOAPIC; id++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = id;
		if (id == KVM_IRQCHIP_IOAPIC)
			chip.chip.ioapic = s->ioapic;
		else
			chip.chip.pic = s->pic[id];
		err = VM_IOCTL(vm, KVM_SET_IRQCHIP, &chip);
	}
	return err;
}

/* api.rst, KVM_SET_CLOCK: flags 0 sets kvm-clock to exactly clock_ns (KVM_CLOCK_REALTIME
 * would add the wall time since the snapshot; Firecracker's default is not to, and a
 * guest that slept on disk for a day would otherwise see its timers jump). The clock
 * runs from the moment it is set, so this comes last, after the vCPUs' TSCs.
 * KVM_KVMCLOCK_CTRL (api.rst: "the guest was paused") keeps a guest's soft-lockup
 * watchdog quiet; EINVAL means the guest never enabled kvm-clock. */
int vm_state_restore_clock(struct vm *vm, const struct vm_state *s)
{
	struct kvm_clock_data clock = { .clock = s->clock_ns, .flags = 0 };
	int err = VM_IOCTL(vm, KVM_SET_CLOCK, &clock);
	for (int i = 0; !err && i < vm->nvcpus; i++)
		if (ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			log_debug("vCPU %d: KVM_KVMCLOCK_CTRL: %s", i, strerror(errno));
	return err;
}
