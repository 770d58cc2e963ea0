/* argon-guest's boot sequence, in order, on the boot vCPU (BSP). entry.S
 * got here with our page tables, in PVM mode when the host has it, .bss
 * cleared and the BSP's stack set. */
#include "acpi.h"
#include "apic.h"
#include "arch.h"
#include "boot_info.h"
#include "cmdline.h"
#include "idt.h"
#include "ioapic.h"
#include "keyboard.h"
#include "main.h"
#include "memmap.h"
#include "paging.h"
#include "printf.h"
#include "pvm.h"
#include "serial.h"
#include "shell.h"
#include "smp.h"
#include "timer.h"

#define SCRIPT_MAX 4096

extern uint8_t bsp_vif_page[];
uint64_t tsc_at_ready;

static char script[SCRIPT_MAX];

void kmain(int boot_kind, uint64_t boot_ptr);

static void on_serial_irq(struct irq_frame *f)
{
	(void)f;
	serial_rx_drain();
}

/* Local APIC, timer, console and keyboard interrupts of the BSP; false without an
 * APIC. */
static bool interrupts_init(uint32_t *bsp_apic_id)
{
	if (!apic_probe()) {
		printf("argon-guest: no local APIC: one vCPU, no timer, polled console\n");
		return false;
	}
	*bsp_apic_id = apic_init_cpu();
	timer_start();
	idt_set_handler(VEC_SERIAL, on_serial_irq);
	if (ioapic_route_isa(4, VEC_SERIAL, *bsp_apic_id)) /* COM1: ISA IRQ 4 */
		serial_enable_rx_irq();
	keyboard_init(*bsp_apic_id); /* Ctrl+Alt+Del: ISA IRQ 1 */
	return true;
}

void kmain(int boot_kind, uint64_t boot_ptr)
{
	uint32_t bsp_apic_id = 0;
	bool have_apic;

	cpus[0].vif = pvm_mode ? bsp_vif_page : 0;
	cpus[0].state = CPU_ONLINE;
	serial_init();
	printf("argon-guest: booting (%s entry, %s mode)\n",
	       boot_kind == BOOT_PVH ? "pvh" : "linux64", pvm_mode ? "pvm" : "hardware");
	idt_init();
	idt_load();
	boot_info_init(boot_kind, boot_ptr);
	phys_init();
	paging_map_high_ram();
	acpi_init(boot_info.rsdp);
	tsc_init();
	have_apic = interrupts_init(&bsp_apic_id);
	cpus[0].apic_id = bsp_apic_id;
	irq_enable();
	if (have_apic)
		smp_boot(bsp_apic_id);
	tsc_at_ready = rdtsc();
	printf("argon-guest: ready\n");
	if (cmdline_get(boot_info.cmdline, "argon.cmd", script, sizeof(script)))
		shell_run_script(script);
	shell_interactive();
}
