/* The local APIC in x2APIC mode, through MSRs (each access is an exit in PVM
 * mode, handled in the host kernel: ~2.5 us). */
#ifndef GUEST_APIC_H
#define GUEST_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define MSR_X2APIC_ID 0x802
#define MSR_X2APIC_TPR 0x808
#define MSR_X2APIC_EOI 0x80b
#define MSR_X2APIC_SVR 0x80f
#define MSR_X2APIC_ICR 0x830
#define MSR_X2APIC_LVT_TIMER 0x832
#define MSR_X2APIC_LVT_LINT0 0x835
#define MSR_X2APIC_TIMER_INIT 0x838
#define MSR_X2APIC_TIMER_CUR 0x839
#define MSR_X2APIC_TIMER_DIV 0x83e

#define APIC_LVT_MASKED (1u << 16)
#define APIC_TIMER_PERIODIC (1u << 17)

/* ICR delivery modes. */
#define ICR_FIXED 0x0000
#define ICR_INIT 0x4500 /* INIT, level assert */
#define ICR_SIPI 0x4600 /* start-up, level assert; OR in the vector (page number) */

/* True when CPUID advertises x2APIC. */
bool apic_x2apic_supported(void);

/* Switches this vCPU's APIC to x2APIC mode, software-enables it and masks
 * LINT0 (no legacy PIC interrupts). Returns the x2APIC ID. */
uint32_t apic_init_cpu(void);

void apic_eoi(void);
void apic_send_ipi(uint32_t apic_id, uint32_t icr);

#endif
