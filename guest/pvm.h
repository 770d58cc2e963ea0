/* What differs between PVM mode and hardware virtualization (PVM.md), behind
 * tiny helpers: interrupt masking, halting, hypercalls, CPUID. */
#ifndef GUEST_PVM_H
#define GUEST_PVM_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu.h"
#include "percpu.h"

/* Set by entry.S when the PVM probe succeeded and the VIF page is registered. */
extern uint8_t pvm_mode;

/* VIF page layout. */
#define VIF_IF 0      /* virtual interrupt flag, written by the guest */
#define VIF_PENDING 1 /* set by the hypervisor when an interrupt waits */

/* PVM hypercalls: int $0x1b, number in RAX. */
#define PVM_HC_UNKNOWN 0x7fff /* no such hypercall: returns -38, a cheap forced exit */

long pvm_hypercall(uint64_t nr, uint64_t a0, uint64_t a1);

static inline void irq_disable(void)
{
	if (pvm_mode) {
		this_cpu()->vif[VIF_IF] = 0;
		barrier();
	} else {
		__asm__ volatile("cli" ::: "memory");
	}
}

/* In PVM mode an interrupt that arrived while masked is only marked pending:
 * force an exit so the hypervisor delivers it. */
static inline void irq_enable(void)
{
	if (pvm_mode) {
		volatile uint8_t *vif = this_cpu()->vif;

		barrier();
		vif[VIF_IF] = 1;
		barrier();
		if (vif[VIF_PENDING])
			pvm_hypercall(PVM_HC_UNKNOWN, 0, 0);
	} else {
		__asm__ volatile("sti" ::: "memory");
	}
}

static inline bool irq_enabled(void)
{
	uint64_t flags;

	if (pvm_mode)
		return this_cpu()->vif[VIF_IF] != 0;
	__asm__ volatile("pushfq; popq %0" : "=r"(flags));
	return flags & 0x200;
}

static inline bool irq_save(void)
{
	bool was = irq_enabled();

	irq_disable();
	return was;
}

static inline void irq_restore(bool was_enabled)
{
	if (was_enabled)
		irq_enable();
}

/* Called with interrupts disabled after checking that there is nothing to
 * do: enables interrupts and sleeps until one has been handled. Returns with
 * interrupts enabled. No wake-up is lost (isr.S: the halt window). */
void cpu_wait(void);

/* True when CPUID leaf 0x40000000 carries KVM's signature. */
bool hypervisor_is_kvm(void);

/* CPUID as the VMM configured it: int $0x1a in PVM mode (plain cpuid would
 * answer from the outer host), cpuid otherwise. */
void guest_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

#endif
