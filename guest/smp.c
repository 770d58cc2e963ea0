/* AP bring-up (INIT-SIPI-SIPI through the x2APIC) and the AP idle loop. */
#include "acpi.h"
#include "apic.h"
#include "arch.h"
#include "idt.h"
#include "memmap.h"
#include "printf.h"
#include "pvm.h"
#include "smp.h"
#include "string.h"
#include "timer.h"

#define AP_FIRST_WAIT_US 10000	/* then a second SIPI */
#define AP_TIMEOUT_US 1000000

int cpus_online = 1;

extern const char trampoline_start[], trampoline_end[];
extern uint64_t ap_boot_stack, ap_boot_vif;

/* APs' VIF pages: .noinit, each cleared before its vCPU registers it. */
static uint8_t vif_pages[MAX_CPUS][4096] __attribute__((section(".noinit"), aligned(4096)));

void ap_main(void);

static void ap_idle(struct cpu *c)
{
	for (;;) {
		void (*fn)(void *);

		irq_disable();
		while (!(fn = c->work)) {
			cpu_wait();
			irq_disable();
		}
		irq_enable();
		fn(c->work_arg);
		__atomic_store_n(&c->work, 0, __ATOMIC_RELEASE);
	}
}

void ap_main(void)
{
	struct cpu *c = this_cpu(); /* prepare() put it on our stack */
	uint32_t apic_id;

	idt_load();
	apic_id = apic_init_cpu();
	if (apic_id != c->apic_id)
		printf("argon-guest: cpu %u: APIC ID %u, MADT said %u\n", c->index, apic_id,
		       c->apic_id);
	c->state = CPU_ONLINE;
	apic_send_ipi(cpus[0].apic_id, ICR_FIXED | VEC_WORK); /* wake the BSP */
	ap_idle(c);
}

static void on_work_ipi(struct irq_frame *f)
{
	(void)f; /* the wake-up is the point; ap_idle sees the work */
}

/* Sleeps rather than spins: on a host with fewer cores than vCPUs, the AP's
 * (emulated, slow) start needs the core this vCPU would burn. The AP wakes us
 * with an IPI; the BSP's timer bounds each sleep. */
static bool wait_online(struct cpu *c, uint64_t us)
{
	uint64_t t0 = rdtsc(), limit = us * tsc_khz_upper() / 1000;
	bool online;

	irq_disable();
	while (!(online = c->state == CPU_ONLINE) && rdtsc() - t0 <= limit) {
		cpu_wait();
		irq_disable();
	}
	irq_enable();
	return online;
}

static void prepare(struct cpu *c, int index, uint32_t apic_id)
{
	uint8_t *stack = cpu_stacks[index];

	c->index = index;
	c->apic_id = apic_id;
	c->vif = pvm_mode ? vif_pages[index] : 0;
	c->stack_top = (uint64_t)stack + STACK_SIZE;
	c->state = CPU_STARTING;
	*(struct cpu **)stack = c; /* percpu.h: this_cpu() */
	if (pvm_mode)
		memset(vif_pages[index], 0, 4096);
	ap_boot_stack = c->stack_top;
	ap_boot_vif = (uint64_t)vif_pages[index];
}

static bool start_ap(int index, uint32_t apic_id)
{
	struct cpu *c = &cpus[index];

	prepare(c, index, apic_id);
	apic_send_ipi(apic_id, ICR_INIT);
	apic_send_ipi(apic_id, ICR_SIPI | (TRAMPOLINE_BASE >> 12));
	if (wait_online(c, AP_FIRST_WAIT_US))
		return true;
	apic_send_ipi(apic_id, ICR_SIPI | (TRAMPOLINE_BASE >> 12));
	if (wait_online(c, AP_TIMEOUT_US))
		return true;
	/* Park it again: a late start would find another vCPU's stack. */
	apic_send_ipi(apic_id, ICR_INIT);
	c->state = CPU_OFFLINE;
	printf("argon-guest: vCPU with APIC ID %u did not come up, skipped\n", apic_id);
	return false;
}

void smp_boot(uint32_t bsp_apic_id)
{
	size_t len = trampoline_end - trampoline_start;

	if (acpi.ncpus <= 1)
		return;
	if (!memmap_is_ram(TRAMPOLINE_BASE, 4096)) {
		printf("argon-guest: 0x%x is not RAM, cannot start other vCPUs\n",
		       TRAMPOLINE_BASE);
		return;
	}
	memcpy((void *)TRAMPOLINE_BASE, trampoline_start, len);
	idt_set_handler(VEC_WORK, on_work_ipi);
	for (int i = 0; i < acpi.ncpus; i++)
		if (acpi.apic_ids[i] != bsp_apic_id && start_ap(cpus_online, acpi.apic_ids[i]))
			cpus_online++;
}

void smp_call(int cpu, void (*fn)(void *), void *arg)
{
	struct cpu *c = &cpus[cpu];

	c->work_arg = arg;
	__atomic_store_n(&c->work, fn, __ATOMIC_RELEASE);
	apic_send_ipi(c->apic_id, ICR_FIXED | VEC_WORK);
}

void smp_wait(int cpu)
{
	while (__atomic_load_n(&cpus[cpu].work, __ATOMIC_ACQUIRE))
		cpu_relax();
}
