/* The e820 memory map (ACPI 6.5 section 15, "System Address Map Interfaces", and the
 * Linux boot protocol's e820_table): what the guest may use as RAM, and what it must
 * leave alone. */
#include "arch/x86/e820.h"

#include <errno.h>

#include "arch/x86/layout.h"

struct e820_out {
	struct e820_entry *entries;
	int n;
	int max;
};

static int add(struct e820_out *o, uint64_t start, uint64_t end, uint32_t type)
{
	if (end <= start)
		return 0;
	if (o->n == o->max)
		return -ENOSPC;
	o->entries[o->n++] = (struct e820_entry){ .addr = start, .size = end - start, .type = type };
	return 0;
}

/* Below 1 MiB: conventional RAM up to the EBDA, which holds the MP table and is reserved
 * together with the VGA hole and the BIOS area where the ACPI tables live
 * (LAYOUT_ACPI_START). The ACPI tables could be typed E820_ACPI (reclaimable), but
 * they share the region with the RSDP, which ACPI 6.5 section 5.2.5.1 places in the
 * BIOS read-only area: reserved keeps both, and Linux reserves that range anyway. */
static int add_low(struct e820_out *o, uint64_t low_end)
{
	int err = add(o, 0, low_end < LAYOUT_EBDA_START ? low_end : LAYOUT_EBDA_START, E820_RAM);
	if (!err)
		err = add(o, LAYOUT_EBDA_START, LAYOUT_HIMEM_START, E820_RESERVED);
	if (!err)
		err = add(o, LAYOUT_HIMEM_START, low_end, E820_RAM);
	return err;
}

int e820_build(const struct guest_mem *mem, struct e820_entry *out, int max)
{
	struct e820_out o = { .entries = out, .n = 0, .max = max < 0 ? 0 : max };
	int err = add_low(&o, guest_mem_low_end(mem));
	/* Every region above the 32-bit MMIO hole is plain RAM; guest_mem keeps them in
	 * ascending order, so the map stays sorted. */
	for (int i = 0; !err && i < mem->nregions; i++) {
		const struct guest_mem_region *r = &mem->regions[i];
		if (r->gpa >= LAYOUT_MMIO_HOLE_END)
			err = add(&o, r->gpa, r->gpa + r->size, E820_RAM);
	}
	return err ? err : o.n;
}
