/* KVM's coalesced I/O: guest writes to a registered port or MMIO range are appended
 * to a ring shared with the VMM instead of exiting (~30 us per exit on PVM hosts). The
 * VMM applies them in order before it handles any exit, and on a timer. */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "vmm/vm.h"

#define RING_ENTRIES ((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / \
		      sizeof(struct kvm_coalesced_mmio))

void vm_drain_coalesced(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *ring = vm->coalesced_ring;
	if (!ring)
		return;
	pthread_mutex_lock(&vm->coalesced_lock);
	uint32_t first = __atomic_load_n(&ring->first, __ATOMIC_RELAXED);
	uint32_t last = __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE);
	/* The kernel owns `last`; a value past the ring would be a kernel bug, but it
	 * costs nothing to refuse to walk off the page. */
	for (uint32_t n = 0; first != last && last < RING_ENTRIES && n < RING_ENTRIES; n++) {
		struct kvm_coalesced_mmio *e = &ring->coalesced_mmio[first];
		uint32_t len = e->len <= sizeof(e->data) ? e->len : sizeof(e->data);
		struct bus *bus = e->pio ? &vm->pio_bus : &vm->mmio_bus;
		bus_access(bus, e->phys_addr, e->data, len, true);
		first = (first + 1) % RING_ENTRIES;
		__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->coalesced_lock);
}

static int coalesce(struct vm *vm, uint64_t addr, uint32_t len, bool pio, bool enable)
{
	if (!vm->coalesced_ring)
		return -ENOTSUP;
	struct kvm_coalesced_mmio_zone zone = { .addr = addr, .size = len, .pio = pio };
	unsigned long op = enable ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO;
	if (ioctl(vm->vm_fd, op, &zone) < 0) {
		log_debug("coalesced %s 0x%llx: %m", pio ? "PIO" : "MMIO", (unsigned long long)addr);
		return -errno;
	}
	/* Writes already in the ring were made under the old setting: apply them now. */
	if (!enable)
		vm_drain_coalesced(vm);
	return 0;
}

int vm_coalesce_pio(struct vm *vm, uint16_t port, uint32_t len, bool enable)
{
	return coalesce(vm, port, len, true, enable);
}

int vm_coalesce_mmio(struct vm *vm, uint64_t addr, uint32_t len)
{
	return coalesce(vm, addr, len, false, true);
}
