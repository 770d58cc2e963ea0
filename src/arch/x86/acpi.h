/* ACPI tables for x86 guests: RSDP, XSDT, FADT (hardware-reduced), MADT, DSDT. */
#ifndef ARGON_ARCH_X86_ACPI_H
#define ARGON_ARCH_X86_ACPI_H

#include <stdint.h>

#include "vmm/memory.h"

/* A virtio-mmio device the DSDT declares (as LNRO0005, like QEMU's microvm). */
struct acpi_mmio_device {
	uint64_t base;
	uint32_t size;
	uint32_t irq; /* GSI, an IOAPIC pin */
};

struct acpi_config {
	int ncpus;	 /* vCPUs; APIC ids are 0..ncpus-1 */
	const struct acpi_mmio_device *mmio_devices;
	int nmmio_devices;
};

/* Writes every table into guest memory between LAYOUT_ACPI_START and
 * LAYOUT_ACPI_END, RSDP first. On success stores the RSDP's address in *rsdp_gpa and
 * returns 0; -ENOSPC when the tables do not fit, -EINVAL for a bad config. */
int acpi_build(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

#endif
