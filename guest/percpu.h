/* Per-vCPU state. A vCPU finds its struct cpu through its stack: stacks are
 * STACK_SIZE aligned and their lowest word points to the owner, so no MSR
 * (an exit in PVM mode) is needed to know who we are. */
#ifndef GUEST_PERCPU_H
#define GUEST_PERCPU_H

#include <stdint.h>

#include "arch.h"

enum cpu_state { CPU_OFFLINE, CPU_STARTING, CPU_ONLINE };

struct cpu {
	uint32_t index;
	uint32_t apic_id;
	volatile uint8_t *vif; /* VIF page in PVM mode, else NULL */
	uint64_t stack_top;
	volatile int state;
	/* Work slot: smp_run() fills it and sends an IPI; the vCPU's idle loop
	 * runs it and clears work. */
	void (*volatile work)(void *arg);
	void *volatile work_arg;
	volatile uint64_t irqs; /* interrupts handled, for diagnostics */
};

extern struct cpu cpus[MAX_CPUS];
extern uint8_t cpu_stacks[MAX_CPUS][STACK_SIZE];

static inline struct cpu *this_cpu(void)
{
	uint64_t rsp;

	__asm__("mov %%rsp, %0" : "=r"(rsp));
	return *(struct cpu **)(rsp & ~(uint64_t)(STACK_SIZE - 1));
}

#endif
