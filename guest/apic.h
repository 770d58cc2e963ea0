/* The local APIC: x2APIC through MSRs when CPUID offers it (each access an
 * exit handled in the host kernel in PVM mode, ~2.5 us), else the xAPIC
 * through its MMIO page (QEMU TCG). Registers are named by their xAPIC MMIO
 * offsets; the x2APIC MSR is 0x800 + offset / 16. */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define APIC_ID 0x020
#define APIC_TPR 0x080
#define APIC_EOI 0x0b0
#define APIC_SVR 0x0f0
#define APIC_ICR 0x300
#define APIC_ICR_HIGH 0x310 /* xAPIC only */
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CUR 0x390
#define APIC_TIMER_DIV 0x3e0

#define APIC_LVT_MASKED (1u << 16)
#define APIC_TIMER_PERIODIC (1u << 17)

/* ICR delivery modes. */
#define ICR_FIXED 0x0000
#define ICR_INIT 0x4500 /* INIT, level assert */
#define ICR_SIPI 0x4600 /* start-up, level assert; OR in the vector (page number) */

/* Picks x2APIC or xAPIC for every vCPU; call once on the BSP. Returns false
 * when there is no APIC at all. */
bool apic_probe(void);

/* Puts this vCPU's APIC in the chosen mode, software-enables it and masks
 * LINT0 (no legacy PIC interrupts). Returns the APIC ID. */
uint32_t apic_init_cpu(void);

uint32_t apic_read(uint32_t reg);
void apic_write(uint32_t reg, uint32_t val);
void apic_eoi(void);
void apic_send_ipi(uint32_t apic_id, uint32_t icr);

#endif
