/* TSC frequency discovery and the LAPIC timer. */
#include <stdbool.h>

#include "apic.h"
#include "arch.h"
#include "cpu.h"
#include "idt.h"
#include "printf.h"
#include "pvm.h"
#include "string.h"
#include "timer.h"

uint64_t tsc_khz;
const char *tsc_source = "none";
volatile uint64_t timer_ticks;

#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

/* kvm-clock's per-vCPU time info (Linux pvclock-abi.h). */
struct pvclock {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags, pad[2];
} __attribute__((packed, aligned(32)));

static struct pvclock pvclock;
static bool kvmclock_on; /* pvclock is registered on the boot vCPU and kept */
static uint64_t clock_at_boot;

static uint32_t kvm_cpuid_max(void)
{
	uint32_t r[4];

	if (!hypervisor_is_kvm())
		return 0;
	guest_cpuid(0x40000000, 0, r);
	return r[0] < 0x40000001 ? 0x40000001 : r[0];
}

/* kvm-clock scales TSC deltas by mul * 2^(shift - 32) into ns: invert it. */
static uint64_t khz_from_kvmclock(void)
{
	uint32_t r[4];
	uint64_t khz;

	guest_cpuid(0x40000001, 0, r);
	if (!(r[0] & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	for (int i = 0; i < 1000000 && (!pvclock.version || (pvclock.version & 1)); i++)
		cpu_relax();
	khz = pvclock.tsc_to_system_mul ? (1000000ull << 32) / pvclock.tsc_to_system_mul : 0;
	khz = pvclock.tsc_shift < 0 ? khz << -pvclock.tsc_shift : khz >> pvclock.tsc_shift;
	/* Kept registered: it is the guest's clock (clock_ns). */
	kvmclock_on = khz != 0;
	if (!kvmclock_on)
		wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	return khz;
}

static uint64_t khz_from_cpuid(void)
{
	uint32_t r[4], max;

	guest_cpuid(0, 0, r);
	max = r[0];
	if (max >= 0x15) {
		guest_cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2]) {
			tsc_source = "cpuid-0x15";
			return (uint64_t)r[2] * r[1] / r[0] / 1000;
		}
	}
	if (max >= 0x16) {
		guest_cpuid(0x16, 0, r);
		if (r[0]) {
			tsc_source = "cpuid-0x16";
			return (uint64_t)r[0] * 1000;
		}
	}
	return 0;
}

/* PIT channel 2, mode 0, 10 ms: count TSC cycles until its output rises. */
static uint64_t khz_from_pit(void)
{
	const uint16_t count = 11932; /* 1.193182 MHz * 10 ms */
	uint64_t t0;

	outb(0x61, (inb(0x61) & ~0x02) | 0x01); /* gate on, speaker off */
	outb(0x43, 0xb0);			/* channel 2, lo/hi byte, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	if (inb(0x61) & 0x20)
		return 0; /* OUT2 already high: no PC speaker port (microvm) */
	t0 = rdtsc();
	for (int i = 0; i < 100000; i++)
		if (inb(0x61) & 0x20)
			return (rdtsc() - t0) / 10;
	return 0;
}

void tsc_init(void)
{
	uint32_t r[4], max = kvm_cpuid_max();

	if (max && (tsc_khz = khz_from_kvmclock())) {
		tsc_source = "kvm-clock";
		clock_at_boot = clock_ns();
		return;
	}
	if (max >= 0x40000010) {
		guest_cpuid(0x40000010, 0, r);
		if ((tsc_khz = r[0])) {
			tsc_source = "cpuid-0x40000010";
			return;
		}
	}
	if ((tsc_khz = khz_from_cpuid()))
		return;
	if ((tsc_khz = khz_from_pit()))
		tsc_source = "pit";
	else
		printf("argon-guest: TSC frequency unknown; times will read 0\n");
}

static void on_tick(struct irq_frame *f)
{
	(void)f;
	timer_ticks++;
}

/* APIC timer counts per ms, measured over 0.2 ms of TSC time: the MSR exits
 * around it (~2.5 us) make that good to about 2%, plenty for a tick. */
static uint64_t apic_timer_khz(void)
{
	uint64_t t0, t1, cur;

	apic_write(APIC_TIMER_DIV, 0xb); /* divide by 1 */
	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, 0xffffffff);
	t0 = rdtsc();
	while (rdtsc() - t0 < tsc_khz / 5)
		cpu_relax();
	cur = apic_read(APIC_TIMER_CUR);
	t1 = rdtsc();
	apic_write(APIC_TIMER_INIT, 0);
	return (0xffffffffull - cur) * tsc_khz / (t1 - t0);
}

void timer_start(void)
{
	uint64_t khz = tsc_khz ? apic_timer_khz() : 1000000; /* KVM's APIC bus: 1 GHz */

	idt_set_handler(VEC_TIMER, on_tick);
	apic_write(APIC_LVT_TIMER, APIC_TIMER_PERIODIC | VEC_TIMER);
	apic_write(APIC_TIMER_INIT, khz * 1000 / TIMER_HZ);
}

/* Split so that cycles * 10^6 cannot overflow. */
uint64_t tsc_to_ns(uint64_t cycles)
{
	if (!tsc_khz)
		return 0;
	return cycles / tsc_khz * 1000000 + cycles % tsc_khz * 1000000 / tsc_khz;
}

uint64_t tsc_khz_upper(void)
{
	return tsc_khz ? tsc_khz : 4000000;
}

void udelay(uint64_t us)
{
	uint64_t t0 = rdtsc(), wait = us * tsc_khz_upper() / 1000;

	while (rdtsc() - t0 < wait)
		cpu_relax();
}

/* pvclock ABI (Linux pvclock.h): ns = system_time + ((tsc - tsc_timestamp) scaled by
 * 2^tsc_shift, times tsc_to_system_mul / 2^32), read again while KVM updates it (odd
 * version, or a version that changed under us). The boot vCPU's area serves every
 * vCPU: KVM keeps a VM's TSCs in step. */
static uint64_t kvmclock_read(void)
{
	volatile struct pvclock *pv = &pvclock;
	uint32_t version;
	uint64_t ns;

	do {
		version = pv->version;
		__asm__ volatile("lfence" ::: "memory"); /* the TSC is read after version */
		uint64_t delta = rdtsc() - pv->tsc_timestamp;
		int8_t shift = pv->tsc_shift;

		delta = shift < 0 ? delta >> -shift : delta << shift;
		ns = pv->system_time +
		     (uint64_t)(((unsigned __int128)delta * pv->tsc_to_system_mul) >> 32);
		__asm__ volatile("" ::: "memory");
	} while ((version & 1) || version != pv->version);
	return ns;
}

uint64_t clock_ns(void)
{
	return kvmclock_on ? kvmclock_read() : tsc_to_ns(rdtsc());
}

uint64_t clock_uptime_ns(void)
{
	return clock_ns() - clock_at_boot;
}

const char *clock_source(void)
{
	return kvmclock_on ? "kvm-clock" : "tsc";
}
