/* ACPI tables for argon's x86 guests (section numbers are ACPI 6.5's): RSDP -> XSDT ->
 * {FADT -> DSDT, MADT}. argon is a hardware-reduced ACPI platform (section 4.1): no
 * PM1/GPE register blocks, no SCI, no FACS. Poweroff and reset go through the FADT's
 * sleep control and reset registers, which argon-vmm emulates as I/O ports. */
#include "arch/x86/acpi.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "common/log.h"
#include "common/util.h"

/* KVM's KVM_MAX_VCPUS on x86; APIC ids from 255 up get x2APIC entries. */
#define ACPI_MAX_CPUS 1024
#define ACPI_XAPIC_ID_LIMIT 255 /* xAPIC ids are 0..254; 0xFF means "all" */
#define ACPI_MAX_MMIO_DEVICES 100 /* device names VR00..VR99 */

#define ACPI_OEM_ID "ARGON "	   /* 6 chars */
#define ACPI_OEM_TABLE_ID "ARGONVM " /* 8 chars */
#define ACPI_CREATOR_ID "ARGN"

/* Section 5.2.6: the header every description table starts with. */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
static_assert(sizeof(struct acpi_header) == 36, "ACPI table header");

/* Section 5.2.5.3: RSDP, revision 2 (ACPI 2.0+) with the XSDT address. */
struct acpi_rsdp {
	char signature[8];
	uint8_t checksum; /* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP");
#define ACPI_RSDP_V1_LEN 20

/* Section 5.2.8: XSDT, 64-bit pointers to every table but the DSDT (the FADT has it). */
struct acpi_xsdt {
	struct acpi_header h;
	uint64_t entries[2]; /* FADT, MADT */
} __attribute__((packed));
static_assert(sizeof(struct acpi_xsdt) == 52, "XSDT");

/* Section 5.2.3.2: Generic Address Structure. */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
static_assert(sizeof(struct acpi_gas) == 12, "GAS");
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* Section 5.2.9: FADT revision 6 (minor 5). Fields a hardware-reduced
 * platform leaves zero are kept only as padding. */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint8_t legacy_pm[63]; /* SCI_INT .. CENTURY: all unused when hardware-reduced */
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_legacy_blocks[8]; /* X_PM1a_EVT_BLK .. X_GPE1_BLK: unused */
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor[8];
} __attribute__((packed));
static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6");
static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH");
static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT");
static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "FADT SLEEP_CONTROL_REG");

/* Section 5.2.9.3: IA-PC boot architecture flags. */
#define FADT_BOOT_LEGACY_DEVICES (1u << 0) /* COM1 is an ISA-style device */
#define FADT_BOOT_8042 (1u << 1)	   /* argon emulates the i8042 at 0x60/0x64 */
#define FADT_BOOT_NO_VGA (1u << 2)
#define FADT_BOOT_NO_MSI (1u << 3)	/* no PCI: virtio-mmio interrupts are IOAPIC pins */
#define FADT_BOOT_NO_CMOS_RTC (1u << 5) /* no RTC at 0x70: wall clock comes from kvm-clock */

/* Section 5.2.9.1: fixed feature flags. */
#define FADT_WBINVD (1u << 0)	     /* required of every ACPI 2.0+ x86 system */
#define FADT_PWR_BUTTON (1u << 4)    /* no fixed-feature power button */
#define FADT_SLP_BUTTON (1u << 5)    /* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

/* Section 5.2.12: MADT and the interrupt controller structures argon uses. */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(struct acpi_madt) == 44, "MADT");
#define MADT_PCAT_COMPAT (1u << 0)
#define MADT_CPU_ENABLED (1u << 0)

struct madt_lapic { /* 5.2.12.2 */
	uint8_t type, length, uid, apic_id;
	uint32_t flags;
} __attribute__((packed));
struct madt_ioapic { /* 5.2.12.3 */
	uint8_t type, length, id, reserved;
	uint32_t address, gsi_base;
} __attribute__((packed));
struct madt_lapic_nmi { /* 5.2.12.7 */
	uint8_t type, length, uid;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
struct madt_x2apic { /* 5.2.12.12 */
	uint8_t type, length;
	uint16_t reserved;
	uint32_t x2apic_id, flags, uid;
} __attribute__((packed));
struct madt_x2apic_nmi { /* 5.2.12.13 */
	uint8_t type, length;
	uint16_t flags;
	uint32_t uid;
	uint8_t lint, reserved[3];
} __attribute__((packed));
static_assert(sizeof(struct madt_lapic) == 8 && sizeof(struct madt_ioapic) == 12 &&
		      sizeof(struct madt_lapic_nmi) == 6 &&
		      sizeof(struct madt_x2apic) == 16 && sizeof(struct madt_x2apic_nmi) == 12,
	      "MADT structures");

enum {
	MADT_TYPE_LAPIC = 0,
	MADT_TYPE_IOAPIC = 1,
	MADT_TYPE_LAPIC_NMI = 4,
	MADT_TYPE_X2APIC = 9,
	MADT_TYPE_X2APIC_NMI = 10,
};

struct acpi_builder {
	struct guest_mem *mem;
	const struct acpi_config *cfg;
	uint64_t next; /* first free guest-physical byte in the ACPI area */
};

/* Reserves len bytes at the next 16-byte boundary of the ACPI area (the RSDP must be
 * 16-byte aligned, section 5.2.5.1) and returns them zeroed, or NULL when they pass
 * LAYOUT_ACPI_END or are not guest RAM. */
static void *acpi_alloc(struct acpi_builder *b, uint64_t len, uint64_t *gpa)
{
	uint64_t at = ALIGN_UP(b->next, 16);
	if (at > LAYOUT_ACPI_END || len > LAYOUT_ACPI_END - at)
		return NULL;
	void *p = guest_mem_ptr(b->mem, at, len);
	if (!p)
		return NULL;
	memset(p, 0, len);
	b->next = at + len;
	*gpa = at;
	return p;
}

static void header_init(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, sizeof(h->signature));
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = 1;
}

/* Section 5.2.6: the whole table, checksum included, sums to zero. Call last. */
static void header_checksum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)(0 - byte_sum(h, h->length));
}

/* The IOAPIC's id sits after the CPUs' APIC ids (ids are 8 bits here); with 255 or more
 * CPUs there is no free id, and 0 is what QEMU uses anyway: IOAPIC and LAPIC ids are
 * separate name spaces since the P4's system-bus APIC delivery. */
static uint8_t ioapic_id(int ncpus)
{
	return ncpus < ACPI_XAPIC_ID_LIMIT ? (uint8_t)ncpus : 0;
}

static int xapic_cpus(int ncpus)
{
	return MIN(ncpus, ACPI_XAPIC_ID_LIMIT);
}

static uint32_t madt_size(int ncpus)
{
	int nx2 = ncpus - xapic_cpus(ncpus);
	return (uint32_t)(sizeof(struct acpi_madt) + xapic_cpus(ncpus) * sizeof(struct madt_lapic) +
			  nx2 * sizeof(struct madt_x2apic) + sizeof(struct madt_ioapic) +
			  sizeof(struct madt_lapic_nmi) +
			  (nx2 ? sizeof(struct madt_x2apic_nmi) : 0));
}

static uint8_t *emit(uint8_t *p, const void *entry, size_t len)
{
	memcpy(p, entry, len);
	return p + len;
}

/* One enabled entry per vCPU, APIC id = ACPI processor UID = index (5.2.12.2, and
 * 5.2.12.12: ids from 255 need the x2APIC form). */
static uint8_t *madt_cpus(uint8_t *p, int ncpus)
{
	for (int i = 0; i < xapic_cpus(ncpus); i++) {
		struct madt_lapic e = { MADT_TYPE_LAPIC, sizeof(e), (uint8_t)i, (uint8_t)i,
					MADT_CPU_ENABLED };
		p = emit(p, &e, sizeof(e));
	}
	for (int i = ACPI_XAPIC_ID_LIMIT; i < ncpus; i++) {
		struct madt_x2apic e = { .type = MADT_TYPE_X2APIC, .length = sizeof(e),
					 .x2apic_id = (uint32_t)i, .flags = MADT_CPU_ENABLED,
					 .uid = (uint32_t)i };
		p = emit(p, &e, sizeof(e));
	}
	return p;
}

/* The IOAPIC with GSIs 0-23 and no Interrupt Source Override (5.2.12.5): every ISA IRQ
 * is GSI n, IRQ 0 included. Real chipsets wire the 8254 to INTIN2 and say IRQ 0 -> GSI
 * 2 (so does QEMU, which reroutes KVM's GSI 0 to pin 2 to match), but argon-vmm keeps
 * KVM's default routing, where the in-kernel PIT's GSI 0 reaches IOAPIC pin 0; an
 * override would send the guest to a silent pin. Also, Linux takes an override whose
 * source equals the FADT's SCI_INT (0 when hardware-reduced) as the SCI's and makes
 * IRQ 0 active-low. Firecracker's MADT has no override either. */
static uint8_t *madt_ioapic(uint8_t *p, int ncpus)
{
	struct madt_ioapic io = { MADT_TYPE_IOAPIC, sizeof(io), ioapic_id(ncpus), 0,
				  (uint32_t)LAYOUT_IOAPIC, 0 };
	return emit(p, &io, sizeof(io));
}

/* LINT1 of every processor is the NMI input (5.2.12.7, 5.2.12.13), as firmware sets it
 * up and as argon-vmm programs the LAPICs. */
static uint8_t *madt_nmi(uint8_t *p, int ncpus)
{
	struct madt_lapic_nmi nmi = { MADT_TYPE_LAPIC_NMI, sizeof(nmi), 0xFF /* all */, 0, 1 };
	p = emit(p, &nmi, sizeof(nmi));
	if (ncpus > ACPI_XAPIC_ID_LIMIT) {
		struct madt_x2apic_nmi x = { .type = MADT_TYPE_X2APIC_NMI, .length = sizeof(x),
					     .uid = 0xFFFFFFFF, .lint = 1 };
		p = emit(p, &x, sizeof(x));
	}
	return p;
}

/* PCAT_COMPAT is set because KVM_CREATE_IRQCHIP does give the guest dual 8259s beside
 * the IOAPIC; an OS that switches to APIC mode masks them (Linux in hardware-reduced
 * mode ignores them altogether). */
static void madt_fill(struct acpi_madt *m, int ncpus)
{
	header_init(&m->h, "APIC", madt_size(ncpus), 5);
	m->lapic_address = (uint32_t)LAYOUT_LAPIC;
	m->flags = MADT_PCAT_COMPAT;
	uint8_t *p = (uint8_t *)(m + 1);
	p = madt_cpus(p, ncpus);
	p = madt_ioapic(p, ncpus);
	madt_nmi(p, ncpus);
	header_checksum(&m->h);
}

static struct acpi_gas io_port_gas(uint16_t port)
{
	return (struct acpi_gas){ .space_id = ACPI_GAS_SYSTEM_IO, .bit_width = 8,
				  .access_size = ACPI_GAS_ACCESS_BYTE, .address = port };
}

/* Section 5.2.9 and 4.8.3.7/4.8.3.6: the guest writes SLP_TYP << 2 | SLP_EN (bit 5) to
 * the sleep control register to enter \_S5; a write of RESET_VALUE to RESET_REG resets.
 * DSDT and X_DSDT hold the same address (both fit in 32 bits), so ACPICA sees no
 * conflict. No FACS: optional when hardware-reduced (5.2.10). */
static void fadt_fill(struct acpi_fadt *f, uint64_t dsdt)
{
	header_init(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 5;
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->iapc_boot_arch = FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042 | FADT_BOOT_NO_VGA |
			    FADT_BOOT_NO_MSI | FADT_BOOT_NO_CMOS_RTC;
	f->flags = FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP |
		   FADT_HW_REDUCED_ACPI;
	f->reset_reg = io_port_gas(LAYOUT_PORT_ACPI_RESET);
	f->reset_value = LAYOUT_ACPI_RESET_VALUE;
	f->sleep_control_reg = io_port_gas(LAYOUT_PORT_ACPI_SLEEP_CONTROL);
	f->sleep_status_reg = io_port_gas(LAYOUT_PORT_ACPI_SLEEP_STATUS);
	memcpy(f->hypervisor_vendor, "ARGON\0\0\0", sizeof(f->hypervisor_vendor));
	header_checksum(&f->h);
}

static void xsdt_fill(struct acpi_xsdt *x, uint64_t fadt, uint64_t madt)
{
	header_init(&x->h, "XSDT", sizeof(*x), 1);
	x->entries[0] = fadt;
	x->entries[1] = madt;
	header_checksum(&x->h);
}

/* Section 5.2.5.3. No RSDT: every OS that understands revision 2 uses the XSDT. */
static void rsdp_fill(struct acpi_rsdp *r, uint64_t xsdt)
{
	memcpy(r->signature, "RSD PTR ", sizeof(r->signature));
	memcpy(r->oem_id, ACPI_OEM_ID, sizeof(r->oem_id));
	r->revision = 2;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt;
	r->checksum = (uint8_t)(0 - byte_sum(r, ACPI_RSDP_V1_LEN));
	r->extended_checksum = (uint8_t)(0 - byte_sum(r, sizeof(*r)));
}

/* Device(COM1): the 16550 argon-vmm emulates, as PNP0501 with its port and ISA IRQ. */
static void dsdt_com1(struct aml *a)
{
	size_t dev = aml_device_begin(a, "COM1");
	aml_name_decl(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);
	uint8_t buf[32];
	struct aml r;
	aml_init(&r, buf, sizeof(buf));
	aml_res_io(&r, LAYOUT_PORT_COM1, 8);
	aml_res_irq_noflags(&r, LAYOUT_IRQ_COM1);
	aml_res_end(&r);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_end(a, dev);
}

/* Device(KBD_): the i8042 and its keyboard, as PNP0303 with both ports and ISA IRQ 1.
 * No PNP0F13 mouse is declared: Linux's i8042 driver then knows there is no aux port
 * ("PS/2 appears to have AUX port disabled") instead of probing for one, which costs
 * it two command timeouts (about a second) on a controller without it. */
static void dsdt_keyboard(struct aml *a)
{
	size_t dev = aml_device_begin(a, "KBD_");
	aml_name_decl(a, "_HID");
	aml_eisaid(a, "PNP0303");
	uint8_t buf[32];
	struct aml r;
	aml_init(&r, buf, sizeof(buf));
	aml_res_io(&r, LAYOUT_PORT_I8042_DATA, 1);
	aml_res_io(&r, LAYOUT_PORT_I8042_CMD, 1);
	aml_res_irq_noflags(&r, LAYOUT_IRQ_I8042);
	aml_res_end(&r);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_end(a, dev);
}

/* Device(VRnn): a virtio-mmio transport, LNRO0005 as Linux's virtio_mmio driver matches
 * it. The interrupt is edge-triggered, active high: argon signals it through an irqfd,
 * which pulses the pin, so a level-triggered pin could lose a pulse that arrives while
 * the previous one awaits EOI (Firecracker declares Edge for the same reason; QEMU's
 * microvm says Level because its line stays up until the guest acks). _CCA: DMA is
 * cache-coherent. */
static void dsdt_virtio(struct aml *a, int index, const struct acpi_mmio_device *d)
{
	char name[] = { 'V', 'R', (char)('0' + index / 10), (char)('0' + index % 10), '\0' };
	size_t dev = aml_device_begin(a, name);
	aml_name_decl(a, "_HID");
	aml_string(a, "LNRO0005");
	aml_name_decl(a, "_UID");
	aml_integer(a, (uint64_t)index);
	aml_name_decl(a, "_CCA");
	aml_integer(a, 1);
	uint8_t buf[32];
	struct aml r;
	aml_init(&r, buf, sizeof(buf));
	aml_res_memory32_fixed(&r, (uint32_t)d->base, d->size, true);
	aml_res_interrupt(&r, AML_IRQ_CONSUMER | AML_IRQ_EDGE, d->irq);
	aml_res_end(&r);
	aml_name_decl(a, "_CRS");
	aml_resource_template(a, &r);
	aml_end(a, dev);
}

/* \_S5: the SLP_TYP the guest writes to the sleep control register to power off
 * (section 7.4.2; hardware-reduced platforms use only the first value). */
static void dsdt_s5(struct aml *a)
{
	aml_name_decl(a, "_S5_");
	size_t pkg = aml_package_begin(a, 4);
	aml_integer(a, LAYOUT_ACPI_S5_SLP_TYP);
	for (int i = 0; i < 3; i++)
		aml_integer(a, 0);
	aml_end(a, pkg);
}

static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	size_t sb = aml_scope_begin(a, "\\_SB_");
	dsdt_com1(a);
	dsdt_keyboard(a);
	for (int i = 0; i < cfg->nmmio_devices; i++)
		dsdt_virtio(a, i, &cfg->mmio_devices[i]);
	aml_end(a, sb);
	dsdt_s5(a);
}

/* Section 5.2.11.1: the DSDT, revision 2 (64-bit integers), emitted straight into the
 * rest of the ACPI area so the emitter's bound is the area's end. */
static int dsdt_build(struct acpi_builder *b, uint64_t *gpa)
{
	uint64_t at = ALIGN_UP(b->next, 16);
	if (at >= LAYOUT_ACPI_END)
		return -ENOSPC;
	uint8_t *p = guest_mem_ptr(b->mem, at, LAYOUT_ACPI_END - at);
	if (!p)
		return -ENOSPC;
	struct aml a;
	aml_init(&a, p, LAYOUT_ACPI_END - at);
	struct acpi_header blank = { 0 };
	aml_bytes(&a, &blank, sizeof(blank));
	dsdt_body(&a, b->cfg);
	if (a.err)
		return a.err;
	struct acpi_header *h = (struct acpi_header *)p;
	header_init(h, "DSDT", (uint32_t)a.len, 2);
	header_checksum(h);
	b->next = at + a.len;
	*gpa = at;
	return 0;
}

static int check_mmio_device(int i, const struct acpi_mmio_device *d)
{
	if (d->size == 0 || d->base > UINT32_MAX || d->size > UINT32_MAX - d->base + 1) {
		log_error("virtio-mmio device %d: [0x%llx, +0x%x) is not a 32-bit range", i,
			  (unsigned long long)d->base, d->size);
		return -EINVAL;
	}
	if (d->irq >= LAYOUT_IOAPIC_PINS) {
		log_error("virtio-mmio device %d: GSI %u is not an IOAPIC pin (0..%d)", i, d->irq,
			  LAYOUT_IOAPIC_PINS - 1);
		return -EINVAL;
	}
	return 0;
}

static int check_config(const struct acpi_config *cfg)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS) {
		log_error("%d vCPUs: expected 1..%d", cfg->ncpus, ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (cfg->nmmio_devices < 0 || cfg->nmmio_devices > ACPI_MAX_MMIO_DEVICES) {
		log_error("%d virtio-mmio devices: expected 0..%d", cfg->nmmio_devices,
			  ACPI_MAX_MMIO_DEVICES);
		return -EINVAL;
	}
	if (cfg->nmmio_devices > 0 && !cfg->mmio_devices) {
		log_error("%d virtio-mmio devices but no array", cfg->nmmio_devices);
		return -EINVAL;
	}
	for (int i = 0; i < cfg->nmmio_devices; i++) {
		int err = check_mmio_device(i, &cfg->mmio_devices[i]);
		if (err)
			return err;
	}
	return 0;
}

/* Lays the tables out in order RSDP, XSDT, FADT, MADT, DSDT from LAYOUT_ACPI_START, then
 * fills them in reverse, each after the tables it points to have their addresses. */
int acpi_build(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	int err = check_config(cfg);
	if (err)
		return err;
	struct acpi_builder b = { .mem = mem, .cfg = cfg, .next = LAYOUT_ACPI_START };
	uint64_t rsdp, xsdt, fadt, madt, dsdt;
	struct acpi_rsdp *r = acpi_alloc(&b, sizeof(*r), &rsdp);
	struct acpi_xsdt *x = r ? acpi_alloc(&b, sizeof(*x), &xsdt) : NULL;
	struct acpi_fadt *f = x ? acpi_alloc(&b, sizeof(*f), &fadt) : NULL;
	struct acpi_madt *m = f ? acpi_alloc(&b, madt_size(cfg->ncpus), &madt) : NULL;
	if (!m)
		return -ENOSPC;
	err = dsdt_build(&b, &dsdt);
	if (err)
		return err;
	madt_fill(m, cfg->ncpus);
	fadt_fill(f, dsdt);
	xsdt_fill(x, fadt, madt);
	rsdp_fill(r, xsdt);
	*rsdp_gpa = rsdp;
	return 0;
}
