/* x2APIC setup, EOI and IPIs. */
#include "apic.h"
#include "arch.h"
#include "cpu.h"
#include "idt.h"
#include "pvm.h"

#define APIC_BASE_EXTD (1u << 10)
#define APIC_BASE_EN (1u << 11)
#define SVR_ENABLE 0x100

bool apic_x2apic_supported(void)
{
	uint32_t r[4];

	guest_cpuid(1, 0, r);
	return r[2] & (1u << 21);
}

uint32_t apic_init_cpu(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);

	/* xAPIC -> x2APIC is a legal transition; EN and EXTD are set at once. */
	if (!(base & APIC_BASE_EXTD))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD);
	wrmsr(MSR_X2APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
	wrmsr(MSR_X2APIC_LVT_LINT0, APIC_LVT_MASKED);
	wrmsr(MSR_X2APIC_TPR, 0);
	return (uint32_t)rdmsr(MSR_X2APIC_ID);
}

void apic_eoi(void)
{
	wrmsr(MSR_X2APIC_EOI, 0);
}

void apic_send_ipi(uint32_t apic_id, uint32_t icr)
{
	wrmsr(MSR_X2APIC_ICR, ((uint64_t)apic_id << 32) | icr);
}
