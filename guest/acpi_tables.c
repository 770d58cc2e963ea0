/* Parsing the MADT, the FADT and the DSDT's \_S5 object (ACPI 6.5: 5.2.12,
 * 5.2.9, 7.4.2). */
#include "acpi.h"
#include "memmap.h"
#include "printf.h"
#include "string.h"

#define MADT_ENTRIES 44
#define MADT_FLAGS 40
#define MADT_PCAT_COMPAT 1
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_X2APIC 9
#define LAPIC_ENABLED 1

#define FADT_DSDT 40
#define FADT_PM1A_CNT 64
#define FADT_PM1B_CNT 68
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL 244
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_FLAG_HW_REDUCED (1u << 20)
#define FADT_BOOT_8042 (1u << 1)

static uint32_t rd32(const uint8_t *p)
{
	return *(const uint32_t *)p;
}

static void add_cpu(uint32_t apic_id, uint32_t flags)
{
	if (!(flags & LAPIC_ENABLED))
		return;
	for (int i = 0; i < acpi.ncpus; i++)
		if (acpi.apic_ids[i] == apic_id)
			return;
	if (acpi.ncpus == MAX_CPUS) {
		printf("argon-guest: MADT: more than %d vCPUs, rest ignored\n", MAX_CPUS);
		return;
	}
	acpi.apic_ids[acpi.ncpus++] = apic_id;
}

static void madt_entry(const uint8_t *e)
{
	switch (e[0]) {
	case MADT_LAPIC:
		if (e[1] >= 8)
			add_cpu(e[3], rd32(e + 4));
		break;
	case MADT_X2APIC:
		if (e[1] >= 16)
			add_cpu(rd32(e + 4), rd32(e + 8));
		break;
	case MADT_IOAPIC:
		if (e[1] >= 12 && !acpi.have_ioapic) {
			acpi.have_ioapic = true;
			acpi.ioapic_addr = rd32(e + 4);
			acpi.ioapic_gsi_base = rd32(e + 8);
		}
		break;
	case MADT_ISO:
		if (e[1] >= 10 && e[2] == 0 && e[3] < 16) {
			acpi.isa_gsi[e[3]] = rd32(e + 4);
			acpi.isa_flags[e[3]] = *(const uint16_t *)(e + 8);
		}
		break;
	}
}

void acpi_madt_parse(const struct sdt_header *madt)
{
	const uint8_t *base = (const uint8_t *)madt, *end = base + madt->length;

	if (madt->length < MADT_ENTRIES) {
		printf("argon-guest: MADT too short\n");
		return;
	}
	acpi.have_madt = true;
	acpi.pcat_compat = rd32(base + MADT_FLAGS) & MADT_PCAT_COMPAT;
	for (const uint8_t *e = base + MADT_ENTRIES; e + 2 <= end && e[1] >= 2; e += e[1]) {
		if (e + e[1] > end)
			break;
		madt_entry(e);
	}
	if (!acpi.ncpus)
		printf("argon-guest: MADT lists no enabled vCPU\n");
	/* The IOAPIC is MMIO: an address in RAM or above 4 GiB is a broken table. */
	if (acpi.have_ioapic && (acpi.ioapic_addr >= 0x100000000ull - 0x20 ||
				 memmap_is_ram(acpi.ioapic_addr, 0x20))) {
		printf("argon-guest: MADT: IOAPIC address 0x%lx is not MMIO, ignored\n",
		       acpi.ioapic_addr);
		acpi.have_ioapic = false;
	}
}

/* Reads the first element of the \_S5 package: the SLP_TYPa value. AML:
 * NameOp "_S5_" PackageOp PkgLength NumElements (BytePrefix n | Zero | One). */
static bool find_s5(const uint8_t *aml, uint32_t len, uint8_t *slp_typ)
{
	for (uint32_t i = 1; i + 12 <= len; i++) {
		const uint8_t *p = aml + i;

		if (memcmp(p, "_S5_", 4) || (p[-1] != 0x08 && p[-1] != '\\') || p[4] != 0x12)
			continue;
		p += 5 + 1 + (p[5] >> 6); /* PkgLength: lead byte + 0..3 more */
		p++;		       /* NumElements */
		if (*p == 0x0a)
			*slp_typ = p[1];
		else if (*p == 0x00 || *p == 0x01)
			*slp_typ = *p;
		else
			return false;
		return true;
	}
	return false;
}

static void dsdt_parse(uint64_t addr)
{
	const struct sdt_header *h = acpi_table_at(addr);

	if (!h) {
		printf("argon-guest: FADT: no readable DSDT; \\_S5 assumed %u\n", acpi.s5_slp_typ);
		return;
	}
	acpi.s5_found = find_s5((const uint8_t *)(h + 1), h->length - sizeof(*h), &acpi.s5_slp_typ);
}

void acpi_fadt_parse(const struct sdt_header *fadt)
{
	const uint8_t *f = (const uint8_t *)fadt;
	uint32_t len = fadt->length, flags = 0;
	uint64_t dsdt = 0;

	acpi.have_fadt = true;
	if (len >= FADT_FLAGS + 4)
		flags = rd32(f + FADT_FLAGS);
	acpi.hw_reduced = flags & FADT_FLAG_HW_REDUCED;
	if (len >= FADT_IAPC_BOOT_ARCH + 2)
		acpi.have_i8042 = (f[FADT_IAPC_BOOT_ARCH] | f[FADT_IAPC_BOOT_ARCH + 1] << 8) &
				  FADT_BOOT_8042;
	if (len >= FADT_PM1B_CNT + 4) {
		acpi.pm1a_cnt = rd32(f + FADT_PM1A_CNT);
		acpi.pm1b_cnt = rd32(f + FADT_PM1B_CNT);
	}
	if (len >= FADT_RESET_VALUE + 1) {
		memcpy(&acpi.reset_reg, f + FADT_RESET_REG, sizeof(acpi.reset_reg));
		acpi.reset_value = f[FADT_RESET_VALUE];
		acpi.reset_supported = (flags & FADT_FLAG_RESET_REG_SUP) && acpi.reset_reg.address;
	}
	if (len >= FADT_SLEEP_CONTROL + sizeof(struct acpi_gas))
		memcpy(&acpi.sleep_control, f + FADT_SLEEP_CONTROL, sizeof(acpi.sleep_control));
	if (len >= FADT_X_DSDT + 8)
		dsdt = *(const uint64_t *)(f + FADT_X_DSDT);
	if (!dsdt && len >= FADT_DSDT + 4)
		dsdt = rd32(f + FADT_DSDT);
	dsdt_parse(dsdt);
}
