/* The ACPI tables argon-guest reads: MADT (vCPUs, IOAPIC, ISA overrides),
 * FADT (power off, reset) and the DSDT's \_S5 package. */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"

/* Generic Address Structure (ACPI 6.5, 5.2.3.2). */
struct acpi_gas {
	uint8_t space; /* 0 system memory, 1 system I/O */
	uint8_t bit_width, bit_offset, access_size;
	uint64_t address;
} __attribute__((packed));

struct acpi_info {
	bool have_madt, have_fadt;
	/* MADT */
	int ncpus; /* enabled LAPIC / x2APIC entries */
	uint32_t apic_ids[MAX_CPUS];
	bool have_ioapic;
	uint64_t ioapic_addr;
	uint32_t ioapic_gsi_base;
	uint32_t isa_gsi[16];	  /* ISA IRQ -> GSI after overrides */
	uint16_t isa_flags[16];	  /* MPS INTI flags of the override, 0 = bus default */
	bool pcat_compat;	  /* dual 8259 present */
	/* FADT */
	bool hw_reduced;
	bool have_i8042; /* IAPC_BOOT_ARCH bit 1: keyboard controller at 0x60/0x64 */
	struct acpi_gas sleep_control;
	uint32_t pm1a_cnt, pm1b_cnt; /* I/O ports, 0 = none */
	bool reset_supported;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint8_t s5_slp_typ; /* from \_S5, or the fallback */
	bool s5_found;
};

extern struct acpi_info acpi;

struct sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} __attribute__((packed));

/* Finds and parses the tables; rsdp = 0 means "scan the BIOS area". Prints
 * one line for anything missing or malformed; never fails. */
void acpi_init(uint64_t rsdp);

/* Between acpi.c and acpi_tables.c: the table at addr if it is readable
 * (memory map, identity map) and its checksum holds, else NULL. */
const struct sdt_header *acpi_table_at(uint64_t addr);
void acpi_madt_parse(const struct sdt_header *madt);
void acpi_fadt_parse(const struct sdt_header *fadt);

/* Writes val to a GAS register (system memory or I/O space). */
void acpi_gas_write(const struct acpi_gas *g, uint64_t val);

#endif
