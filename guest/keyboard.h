/* The PS/2 keyboard behind the i8042, for one thing: Ctrl+Alt+Del reboots. */
#ifndef GUEST_KEYBOARD_H
#define GUEST_KEYBOARD_H

#include <stdint.h>

/* When the FADT says an 8042 is there: routes ISA IRQ 1 to the vCPU with the given
 * APIC ID and turns the keyboard interrupt on. Needs ACPI and the IOAPIC (acpi_init),
 * and interrupts not yet enabled. */
void keyboard_init(uint32_t apic_id);

#endif
