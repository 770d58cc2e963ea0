/* ACPI table discovery and parsing. Every table address is checked against
 * the memory map and the identity map before it is read, and every length
 * and checksum before it is trusted. */
#include "acpi.h"
#include "cpu.h"
#include "memmap.h"
#include "printf.h"
#include "string.h"

struct acpi_info acpi;

struct rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length; /* revision >= 2 from here */
	uint64_t xsdt;
	uint8_t ext_checksum, reserved[3];
} __attribute__((packed));

#define BIOS_START 0xe0000
#define BIOS_END 0x100000
#define S5_FALLBACK 5 /* argon's \_S5 value */

static uint8_t checksum(const void *p, uint64_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum;
}

/* Readable here: inside the memory map and below 4 GiB (identity mapped). */
static bool readable(uint64_t addr, uint64_t len)
{
	return addr && addr + len <= 0x100000000ull && memmap_covers(addr, len);
}

static bool rsdp_valid(uint64_t addr)
{
	const struct rsdp *r = (const void *)addr;

	if (!readable(addr, 20) || memcmp(r->signature, "RSD PTR ", 8) || checksum(r, 20))
		return false;
	return r->revision < 2 || (readable(addr, sizeof(*r)) && !checksum(r, sizeof(*r)));
}

static uint64_t find_rsdp(uint64_t hint)
{
	if (hint) {
		if (rsdp_valid(hint))
			return hint;
		printf("argon-guest: ACPI: no valid RSDP at 0x%lx, scanning the BIOS area\n", hint);
	}
	for (uint64_t a = BIOS_START; a < BIOS_END; a += 16)
		if (memmap_covers(a, 16) && rsdp_valid(a))
			return a;
	return 0;
}

const struct sdt_header *acpi_table_at(uint64_t addr)
{
	const struct sdt_header *h = (const void *)addr;

	if (!readable(addr, sizeof(*h)) || h->length < sizeof(*h) || !readable(addr, h->length))
		return 0;
	if (checksum(h, h->length)) {
		printf("argon-guest: ACPI: table %.4s at 0x%lx has a bad checksum\n", h->signature,
		       addr);
		return 0;
	}
	return h;
}

/* Looks sig up in the XSDT (8-byte entries) or RSDT (4-byte entries). */
static const struct sdt_header *find_table(const struct sdt_header *root, int entry_size,
					   const char *sig)
{
	const uint8_t *entries = (const uint8_t *)(root + 1);
	uint32_t n = (root->length - sizeof(*root)) / entry_size;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = entry_size == 8 ? *(const uint64_t *)(entries + 8 * i)
						: *(const uint32_t *)(entries + 4 * i);
		const struct sdt_header *h = acpi_table_at(addr);

		if (h && !memcmp(h->signature, sig, 4))
			return h;
	}
	return 0;
}

void acpi_init(uint64_t hint)
{
	uint64_t addr = find_rsdp(hint);
	const struct rsdp *r = (const void *)addr;
	const struct sdt_header *root = 0, *t;
	int entry_size = 8;

	for (int i = 0; i < 16; i++)
		acpi.isa_gsi[i] = i;
	acpi.s5_slp_typ = S5_FALLBACK;
	if (!addr) {
		printf("argon-guest: ACPI: no RSDP found; one vCPU, no IOAPIC, no ACPI power off\n");
		return;
	}
	if (r->revision >= 2 && r->xsdt)
		root = acpi_table_at(r->xsdt);
	if (!root) {
		root = acpi_table_at(r->rsdt);
		entry_size = 4;
	}
	if (!root) {
		printf("argon-guest: ACPI: RSDP at 0x%lx points to no valid XSDT or RSDT\n", addr);
		return;
	}
	if ((t = find_table(root, entry_size, "APIC")))
		acpi_madt_parse(t);
	else
		printf("argon-guest: ACPI: no MADT; one vCPU, no IOAPIC\n");
	if ((t = find_table(root, entry_size, "FACP")))
		acpi_fadt_parse(t);
	else
		printf("argon-guest: ACPI: no FADT; no ACPI power off or reset\n");
}

void acpi_gas_write(const struct acpi_gas *g, uint64_t val)
{
	if (g->space == 1) {
		if (g->bit_width == 16)
			outw(g->address, val);
		else if (g->bit_width == 32)
			outl(g->address, val);
		else
			outb(g->address, val);
	} else if (g->space == 0 && g->address && g->address < 0x100000000ull) {
		if (g->bit_width == 8)
			*(volatile uint8_t *)g->address = val;
		else if (g->bit_width == 16)
			*(volatile uint16_t *)g->address = val;
		else
			mmio_write32(g->address, val);
	}
}
