/* IOAPIC redirection entries (82093AA datasheet, 3.2.4). Two MMIO
 * registers: IOREGSEL selects, IOWIN reads or writes. */
#include "acpi.h"
#include "cpu.h"
#include "ioapic.h"
#include "printf.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define REG_VER 0x01
#define REG_REDTBL(pin) (0x10 + 2 * (pin))

#define RTE_ACTIVE_LOW (1u << 13)
#define RTE_LEVEL (1u << 15)

/* MPS INTI flags in MADT overrides: polarity bits 0-1, trigger bits 2-3
 * (3 = active low / level; 0 = the bus default, ISA: high / edge). */
#define INTI_POLARITY_LOW 3
#define INTI_TRIGGER_LEVEL (3 << 2)

static uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(acpi.ioapic_addr + IOREGSEL, reg);
	return mmio_read32(acpi.ioapic_addr + IOWIN);
}

static void ioapic_write(uint32_t reg, uint32_t val)
{
	mmio_write32(acpi.ioapic_addr + IOREGSEL, reg);
	mmio_write32(acpi.ioapic_addr + IOWIN, val);
}

/* Read once: a register read is two MMIO accesses, each a trap (~3.5 us on PVM). */
static uint32_t ioapic_pins(void)
{
	static uint32_t pins;

	if (!pins)
		pins = ((ioapic_read(REG_VER) >> 16) & 0xff) + 1;
	return pins;
}

bool ioapic_route_gsi(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool level, bool active_low)
{
	uint32_t low = vector | (level ? RTE_LEVEL : 0) | (active_low ? RTE_ACTIVE_LOW : 0);
	uint32_t pins, pin;

	if (!acpi.have_ioapic)
		return false;
	pins = ioapic_pins();
	pin = gsi - acpi.ioapic_gsi_base;
	if (gsi < acpi.ioapic_gsi_base || pin >= pins || apic_id > 0xff) {
		printf("argon-guest: IOAPIC: cannot route GSI %u to APIC %u\n", gsi, apic_id);
		return false;
	}
	/* High half first: the entry is unmasked by the low write. */
	ioapic_write(REG_REDTBL(pin) + 1, apic_id << 24);
	ioapic_write(REG_REDTBL(pin), low);
	return true;
}

bool ioapic_route_isa(int irq, uint8_t vector, uint32_t apic_id)
{
	uint32_t flags = acpi.isa_flags[irq];

	return ioapic_route_gsi(acpi.isa_gsi[irq], vector, apic_id,
				(flags & (3 << 2)) == INTI_TRIGGER_LEVEL,
				(flags & 3) == INTI_POLARITY_LOW);
}
