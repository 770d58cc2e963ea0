/* The keyboard: IRQ 1 from the i8042, scan codes read from port 0x60, and on
 * Ctrl+Alt+Del a reboot, as a PC's BIOS or Linux does (the VMM's SendCtrlAltDel
 * types it). Every port access is an exit to the VMM (~30 us on PVM hosts), so the
 * setup is one command-byte write, without reading it first or self-testing the
 * controller, and the ports are read only when a key interrupt arrives. */
#include <stdbool.h>

#include "acpi.h"
#include "cpu.h"
#include "idt.h"
#include "ioapic.h"
#include "keyboard.h"
#include "lib/scancode.h"
#include "power.h"
#include "printf.h"

#define PORT_DATA 0x60
#define PORT_STATUS 0x64 /* read: status; write: command */
#define STS_OBF 0x01	 /* a byte waits at PORT_DATA */
#define STS_AUX 0x20	 /* ... and it is from the aux (mouse) port */
#define CMD_WRITE_CTR 0x60
/* Keyboard interrupt on, system flag kept; keyboard enabled, aux interrupt off and
 * translation off (bit 6), so the bytes are scan code set 2 as the keyboard sends them. */
#define CTR_VALUE 0x05
#define ISA_IRQ_KEYBOARD 1
#define BYTES_PER_IRQ 32 /* a controller that never empties cannot hold us here */

static struct scancode_state keys;

static void on_keyboard_irq(struct irq_frame *f)
{
	(void)f;
	for (int i = 0; i < BYTES_PER_IRQ; i++) {
		uint8_t status = inb(PORT_STATUS);
		uint8_t b;

		if (!(status & STS_OBF))
			return;
		b = inb(PORT_DATA);
		if (!(status & STS_AUX) && scancode_ctrl_alt_del(&keys, b)) {
			printf("argon-guest: ctrl-alt-del\n");
			guest_reboot();
		}
	}
}

void keyboard_init(uint32_t apic_id)
{
	if (!acpi.have_i8042)
		return;
	idt_set_handler(VEC_KEYBOARD, on_keyboard_irq);
	if (!ioapic_route_isa(ISA_IRQ_KEYBOARD, VEC_KEYBOARD, apic_id))
		return;
	/* After the pin is unmasked: keys already waiting then come with a fresh edge.
	 * No wait for the input buffer: a virtual controller takes bytes at once. */
	outb(PORT_STATUS, CMD_WRITE_CTR);
	outb(PORT_DATA, CTR_VALUE);
}
