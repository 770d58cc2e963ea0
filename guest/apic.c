/* Local APIC access, setup, EOI and IPIs. */
#include "apic.h"
#include "arch.h"
#include "cpu.h"
#include "idt.h"
#include "printf.h"
#include "pvm.h"

#define APIC_BASE_EXTD (1u << 10)
#define APIC_BASE_EN (1u << 11)
#define APIC_BASE_ADDR 0xfffff000ull
#define SVR_ENABLE 0x100
#define ICR_PENDING (1u << 12)
#define X2APIC_MSR(reg) (0x800 + ((reg) >> 4))

static bool x2apic;
static uint64_t xapic_base = 0xfee00000;

bool apic_probe(void)
{
	uint32_t r[4];

	guest_cpuid(1, 0, r);
	x2apic = r[2] & (1u << 21);
	if (!x2apic)
		printf("argon-guest: no x2APIC offered; using the xAPIC through MMIO\n");
	return x2apic || (r[3] & (1u << 9));
}

uint32_t apic_read(uint32_t reg)
{
	return x2apic ? (uint32_t)rdmsr(X2APIC_MSR(reg)) : mmio_read32(xapic_base + reg);
}

void apic_write(uint32_t reg, uint32_t val)
{
	if (x2apic)
		wrmsr(X2APIC_MSR(reg), val);
	else
		mmio_write32(xapic_base + reg, val);
}

uint32_t apic_init_cpu(void)
{
	uint64_t base = rdmsr(MSR_APIC_BASE);

	/* xAPIC -> x2APIC is a legal transition; EN and EXTD are set at once. */
	if (x2apic && !(base & APIC_BASE_EXTD))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD);
	else if (!x2apic && !(base & APIC_BASE_EN))
		wrmsr(MSR_APIC_BASE, base | APIC_BASE_EN);
	if (!x2apic)
		xapic_base = base & APIC_BASE_ADDR;
	apic_write(APIC_SVR, SVR_ENABLE | VEC_SPURIOUS);
	apic_write(APIC_LVT_LINT0, APIC_LVT_MASKED);
	apic_write(APIC_TPR, 0);
	return x2apic ? apic_read(APIC_ID) : apic_read(APIC_ID) >> 24;
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

void apic_send_ipi(uint32_t apic_id, uint32_t icr)
{
	if (x2apic) {
		wrmsr(X2APIC_MSR(APIC_ICR), ((uint64_t)apic_id << 32) | icr);
		return;
	}
	apic_write(APIC_ICR_HIGH, apic_id << 24);
	apic_write(APIC_ICR, icr);
	for (int i = 0; i < 100000 && (apic_read(APIC_ICR) & ICR_PENDING); i++)
		cpu_relax();
}
