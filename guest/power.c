/* Ending the VM. argon-vmm ends it on a write to its exit port, passing the
 * status on; other VMMs ignore that port, so ACPI power off follows. */
#include "acpi.h"
#include "cpu.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"
#include "timer.h"

#define PORT_ARGON_EXIT 0x610 /* src/arch/x86/layout.h: LAYOUT_PORT_ARGON_EXIT */
#define SLP_EN_REDUCED (1u << 5)
#define SLP_EN_PM1 (1u << 13)

static void __attribute__((noreturn)) halt_forever(void)
{
	irq_disable();
	for (;;)
		__asm__ volatile("hlt");
}

/* ACPI 6.5, 4.8.3.7 (hardware-reduced sleep control) and 4.8.3.2.1 (PM1). */
static void acpi_poweroff(void)
{
	uint8_t typ = acpi.s5_slp_typ;

	if (!acpi.have_fadt)
		return;
	if (acpi.hw_reduced && acpi.sleep_control.address) {
		acpi_gas_write(&acpi.sleep_control, (typ & 7) << 2 | SLP_EN_REDUCED);
	} else if (acpi.pm1a_cnt) {
		outw(acpi.pm1a_cnt, (typ & 7) << 10 | SLP_EN_PM1);
		if (acpi.pm1b_cnt)
			outw(acpi.pm1b_cnt, (typ & 7) << 10 | SLP_EN_PM1);
	}
}

void guest_exit(int status)
{
	outb(PORT_ARGON_EXIT, status);
	acpi_poweroff();
	udelay(100000);
	printf("argon-guest: could not power off (status %d); halting\n", status);
	halt_forever();
}

void guest_reboot(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) no_idt = { 0, 0 };

	if (acpi.reset_supported) {
		acpi_gas_write(&acpi.reset_reg, acpi.reset_value);
		udelay(100000);
	}
	outb(0x64, 0xfe); /* i8042: pulse the reset line */
	udelay(100000);
	/* An exception with no IDT: triple fault. */
	__asm__ volatile("lidt %0; int3" : : "m"(no_idt));
	halt_forever();
}

void guest_panic(void)
{
	guest_exit(STATUS_PANIC);
}
