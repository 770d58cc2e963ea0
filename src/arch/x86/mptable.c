/* The Intel MultiProcessor Specification 1.4 table, for kernels that boot without ACPI
 * (acpi=off, or too old to read the MADT). Section numbers are the MP spec's. */
#include "arch/x86/mptable.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "common/util.h"

/* Section 4.1: MP Floating Pointer Structure. */
struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;  /* the configuration table */
	uint8_t length;	   /* in 16-byte paragraphs: 1 */
	uint8_t spec_rev;  /* 4: MP spec 1.4 */
	uint8_t checksum;
	uint8_t feature1; /* 0: a configuration table is present */
	uint8_t feature2; /* bit 7 IMCRP clear: virtual wire mode, no IMCR */
	uint8_t feature3_5[3];
} __attribute__((packed));
static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer");

/* Section 4.2: MP Configuration Table Header. */
struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;   /* base table: header and entries */
	uint8_t spec_rev;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_address;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));
static_assert(sizeof(struct mpc_table) == 44, "MP configuration table header");

/* Section 4.3.1: Processor Entry. */
struct mpc_cpu {
	uint8_t type, apic_id, apic_version, flags;
	uint32_t signature; /* CPUID leaf 1 EAX: stepping, model, family */
	uint32_t features;  /* CPUID leaf 1 EDX */
	uint32_t reserved[2];
} __attribute__((packed));

/* Section 4.3.2: Bus Entry. */
struct mpc_bus {
	uint8_t type, bus_id;
	char bus_type[6];
} __attribute__((packed));

/* Section 4.3.3: I/O APIC Entry. */
struct mpc_ioapic {
	uint8_t type, id, version, flags;
	uint32_t address;
} __attribute__((packed));

/* Sections 4.3.4 and 4.3.5: I/O and Local Interrupt Assignment Entries share a shape;
 * for a local one, dst_apic is a local APIC id (0xFF: all) and dst_pin its LINTIN#. */
struct mpc_intsrc {
	uint8_t type, irq_type;
	uint16_t flags; /* 0: polarity and trigger conform to the bus (ISA: high, edge) */
	uint8_t src_bus, src_irq, dst_apic, dst_pin;
} __attribute__((packed));
static_assert(sizeof(struct mpc_cpu) == 20 && sizeof(struct mpc_bus) == 8 &&
		      sizeof(struct mpc_ioapic) == 8 && sizeof(struct mpc_intsrc) == 8,
	      "MP table entries");

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_IRQ_INT, MP_IRQ_NMI, MP_IRQ_SMI, MP_IRQ_EXTINT };

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_APIC_VERSION 0x14   /* integrated xAPIC, what KVM's LAPIC reports */
#define MP_IOAPIC_VERSION 0x11 /* what KVM's IOAPIC reports */
#define MP_IOAPIC_USABLE 0x01
#define MP_CPU_SIGNATURE 0x600 /* family 6: plausible; kernels take the truth from CPUID */
#define MP_CPU_FEATURES ((1u << 0) | (1u << 9)) /* FPU, APIC */
#define MP_ISA_BUS 0
#define MP_ISA_IRQS 16

/* ISA IRQ n on IOAPIC pin n, as KVM's default GSI routing (which argon-vmm keeps)
 * delivers them: the in-kernel PIT raises GSI 0, so IRQ 0 is on pin 0, not on pin 2 as
 * in section 5.3's default configuration (which would also put the 8259's ExtINT on
 * pin 0). IRQ 2, the 8259 cascade, is never raised and gets no entry. Same as the
 * MADT, which has no override; Firecracker's table is also one to one. */
#define MP_IRQ_ENTRIES (MP_ISA_IRQS - 1)

static size_t mptable_size(int ncpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	       (size_t)ncpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (MP_IRQ_ENTRIES + 2) * sizeof(struct mpc_intsrc);
}

struct mp_writer {
	uint8_t *p;
	uint16_t count;
};

static void emit(struct mp_writer *w, const void *entry, size_t len)
{
	memcpy(w->p, entry, len);
	w->p += len;
	w->count++;
}

static void emit_cpus(struct mp_writer *w, int ncpus)
{
	for (int i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR,
			.apic_id = (uint8_t)i,
			.apic_version = MP_APIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = MP_CPU_SIGNATURE,
			.features = MP_CPU_FEATURES,
		};
		emit(w, &cpu, sizeof(cpu));
	}
}

static void emit_intsrc(struct mp_writer *w, uint8_t type, uint8_t irq_type, uint8_t src_irq,
			uint8_t dst_apic, uint8_t dst_pin)
{
	struct mpc_intsrc e = { type, irq_type, 0, MP_ISA_BUS, src_irq, dst_apic, dst_pin };
	emit(w, &e, sizeof(e));
}

/* The ISA bus, the IOAPIC (id after the CPUs' APIC ids), the ISA IRQ routing, and the
 * local pins: LINT0 of the BSP takes the 8259 (ExtINT), LINT1 of every CPU is NMI. */
static void emit_io(struct mp_writer *w, uint8_t ioapic_id)
{
	struct mpc_bus bus = { MP_BUS, MP_ISA_BUS, { 'I', 'S', 'A', ' ', ' ', ' ' } };
	emit(w, &bus, sizeof(bus));
	struct mpc_ioapic io = { MP_IOAPIC, ioapic_id, MP_IOAPIC_VERSION, MP_IOAPIC_USABLE,
				 (uint32_t)LAYOUT_IOAPIC };
	emit(w, &io, sizeof(io));
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++)
		if (irq != 2)
			emit_intsrc(w, MP_INTSRC, MP_IRQ_INT, irq, ioapic_id, irq);
	emit_intsrc(w, MP_LINTSRC, MP_IRQ_EXTINT, 0, 0, 0);
	emit_intsrc(w, MP_LINTSRC, MP_IRQ_NMI, 0, 0xFF, 1);
}

static void fill_header(struct mpc_table *t, uint16_t length, uint16_t count)
{
	memcpy(t->signature, "PCMP", sizeof(t->signature));
	t->length = length;
	t->spec_rev = 4;
	memcpy(t->oem_id, "ARGON   ", sizeof(t->oem_id));
	memcpy(t->product_id, "ARGON-VMM   ", sizeof(t->product_id));
	t->entry_count = count;
	t->lapic_address = (uint32_t)LAYOUT_LAPIC;
	t->checksum = 0;
	t->checksum = (uint8_t)(0 - byte_sum(t, length)); /* section 4.2: header + entries */
}

/* Section 4: the floating pointer at the start of the last KiB of base memory (one of
 * the places section 4 says to search; Linux scans 0x9FC00-0x9FFFF), 16-byte aligned,
 * with the configuration table right behind it. */
int mptable_build(struct guest_mem *mem, int ncpus)
{
	if (ncpus < 1 || ncpus > 255)
		return -EINVAL;
	size_t size = mptable_size(ncpus);
	if (size > LAYOUT_LOW_RAM_END - LAYOUT_EBDA_START)
		return -ENOSPC;
	uint8_t *base = guest_mem_ptr(mem, LAYOUT_EBDA_START, size);
	if (!base)
		return -ENOSPC;
	memset(base, 0, size);
	struct mpf_intel *mpf = (struct mpf_intel *)base;
	struct mpc_table *table = (struct mpc_table *)(mpf + 1);
	struct mp_writer w = { .p = (uint8_t *)(table + 1) };
	emit_cpus(&w, ncpus);
	emit_io(&w, (uint8_t)ncpus);
	fill_header(table, (uint16_t)(w.p - (uint8_t *)table), w.count);

	memcpy(mpf->signature, "_MP_", sizeof(mpf->signature));
	mpf->physptr = (uint32_t)(LAYOUT_EBDA_START + sizeof(*mpf));
	mpf->length = 1;
	mpf->spec_rev = 4;
	mpf->checksum = (uint8_t)(0 - byte_sum(mpf, sizeof(*mpf)));
	return 0;
}
