/* The IOAPIC the MADT names: routing ISA interrupts to a vCPU. */
#ifndef GUEST_IOAPIC_H
#define GUEST_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* Routes ISA IRQ irq (after MADT overrides) to vector on the vCPU with the
 * given APIC ID, unmasked. Returns false when there is no usable IOAPIC. */
bool ioapic_route_isa(int irq, uint8_t vector, uint32_t apic_id);

/* Routes GSI gsi to vector on the vCPU with the given APIC ID, unmasked,
 * with the given trigger mode and polarity (virtio-mmio: edge, active high).
 * Returns false when no IOAPIC covers the GSI. */
bool ioapic_route_gsi(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool level, bool active_low);

#endif
