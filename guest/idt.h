/* The IDT, exception reporting, interrupt handler registration, and the
 * exception fixup table (an instruction that may fault names where to resume). */
#ifndef GUEST_IDT_H
#define GUEST_IDT_H

#include <stdint.h>

struct irq_frame {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Interrupt vectors argon-guest uses. */
#define VEC_TIMER 0x20
#define VEC_SERIAL 0x21
#define VEC_WORK 0x22
#define VEC_KEYBOARD 0x23
#define VEC_VIRTIO_BASE 0x30 /* + device index, up to VIRTIO_MAX_DEVICES */
#define VEC_SPURIOUS 0xff

typedef void (*irq_handler)(struct irq_frame *f);

/* Builds the IDT (once, on the BSP). */
void idt_init(void);
/* Loads it on the calling vCPU. */
void idt_load(void);
/* Handlers for vectors >= 32 run with interrupts masked and are followed by
 * a LAPIC EOI. */
void idt_set_handler(int vector, irq_handler h);

/* Marks the instruction at label 1 as allowed to fault: execution resumes
 * at label 3 (see safe_rdmsr in idt.c). */
#define FIXUP_ENTRY(insn, resume)                                                             \
	".pushsection .fixup_table, \"a\"\n.balign 8\n.quad " insn ", " resume "\n.popsection\n"

/* rdmsr that returns -1 instead of faulting on a missing MSR. */
int safe_rdmsr(uint32_t msr, uint64_t *val);

#endif
