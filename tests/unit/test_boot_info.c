/* Boot information: the zero page, PVH start info and the boot page tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/boot_info.h"
#include "arch/x86/boot_regs.h"
#include "arch/x86/layout.h"
#include "common/util.h"

static uint32_t get32(const uint8_t *p, uint32_t off)
{
	uint32_t v;
	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p, uint32_t off)
{
	uint64_t v;
	memcpy(&v, p + off, sizeof(v));
	return v;
}

static void zero_page_carries_every_input(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, GIB(5)), 0);
	struct boot_image img = { .entry_kind = BOOT_ENTRY_LINUX64, .setup_header_len = 0x11 };
	memset(img.setup_header, 0x5a, sizeof(img.setup_header));
	struct boot_info_input in = {
		.image = &img, .cmdline_gpa = LAYOUT_CMDLINE, .cmdline_len = 10,
		.initrd_gpa = 0x7f000000, .initrd_size = 0x123000, .rsdp_gpa = LAYOUT_ACPI_START,
	};
	assert_int_equal(zero_page_build(&mem, &in), LAYOUT_ZERO_PAGE);
	const uint8_t *zp = guest_mem_ptr(&mem, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(zp[ZP_SETUP_HEADER], 0x5a);
	assert_int_equal(zp[ZP_SETUP_HEADER + 0x10], 0x5a);
	assert_int_equal(zp[ZP_TYPE_OF_LOADER], 0xff);
	assert_true(zp[ZP_LOADFLAGS] & 1);
	assert_int_equal(get32(zp, ZP_CMD_LINE_PTR), LAYOUT_CMDLINE);
	assert_int_equal(get32(zp, ZP_RAMDISK_IMAGE), 0x7f000000);
	assert_int_equal(get32(zp, ZP_RAMDISK_SIZE), 0x123000);
	assert_int_equal(get64(zp, ZP_ACPI_RSDP_ADDR), LAYOUT_ACPI_START);
	/* RAM below the EBDA, the reserved BIOS area, RAM to 3 GiB, RAM above 4 GiB. */
	assert_int_equal(zp[ZP_E820_ENTRIES], 4);
	const uint8_t *e = zp + ZP_E820_TABLE;
	assert_int_equal(get64(e, 3 * 20), LAYOUT_MMIO_HOLE_END);
	assert_int_equal(get64(e, 3 * 20 + 8), GIB(2));
	assert_int_equal(get32(e, 3 * 20 + 16), 1);
	guest_mem_destroy(&mem);
}

static void a_header_longer_than_the_room_is_cut(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(64)), 0);
	struct boot_image img = { .setup_header_len = 4096 };
	struct boot_info_input in = { .image = &img, .cmdline_gpa = LAYOUT_CMDLINE };
	assert_int_equal(zero_page_build(&mem, &in), LAYOUT_ZERO_PAGE);
	const uint8_t *zp = guest_mem_ptr(&mem, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(zp[ZP_E820_ENTRIES], 3);
	guest_mem_destroy(&mem);
}

struct hvm_start_info_view {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

static void pvh_start_info_has_modules_and_map(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(512)), 0);
	struct boot_image img = { .entry_kind = BOOT_ENTRY_PVH };
	struct boot_info_input in = { .image = &img, .cmdline_gpa = LAYOUT_CMDLINE,
				      .initrd_gpa = 0x1000000, .initrd_size = 4096,
				      .rsdp_gpa = LAYOUT_ACPI_START };
	uint64_t gpa = pvh_start_info_build(&mem, &in);
	assert_int_equal(gpa, LAYOUT_PVH_START_INFO);
	struct hvm_start_info_view info;
	memcpy(&info, guest_mem_ptr(&mem, gpa, sizeof(info)), sizeof(info));
	assert_int_equal(info.magic, PVH_START_INFO_MAGIC);
	assert_int_equal(info.version, 1);
	assert_int_equal(info.nr_modules, 1);
	assert_int_equal(info.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(info.rsdp_paddr, LAYOUT_ACPI_START);
	assert_int_equal(info.memmap_entries, 3);
	const uint8_t *mod = guest_mem_ptr(&mem, info.modlist_paddr, 32);
	assert_int_equal(get64(mod, 0), 0x1000000);
	assert_int_equal(get64(mod, 8), 4096);
	const uint8_t *map = guest_mem_ptr(&mem, info.memmap_paddr, 3 * 24);
	assert_int_equal(get64(map, 2 * 24), MIB(1));
	assert_int_equal(get64(map, 2 * 24 + 8), MIB(511));
	/* Everything stays below the zero page it must not overlap. */
	assert_true(info.memmap_paddr + 64 * 24 <= LAYOUT_ZERO_PAGE);
	guest_mem_destroy(&mem);
}

static void boot_page_tables_identity_map_4_gib(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(32)), 0);
	assert_int_equal(boot_page_tables_build(&mem), 0);
	const uint64_t *pml4 = guest_mem_ptr(&mem, LAYOUT_PML4, 4096);
	assert_int_equal(pml4[0] & ~0xfffULL, LAYOUT_PDPT);
	assert_int_equal(pml4[1], 0);
	const uint64_t *pdpt = guest_mem_ptr(&mem, LAYOUT_PDPT, 4096);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pdpt[i] & ~0xfffULL, LAYOUT_PD + (uint64_t)i * 4096);
	const uint64_t *pd = guest_mem_ptr(&mem, LAYOUT_PD, 4 * 4096);
	for (uint64_t i = 0; i < 2048; i++) {
		assert_int_equal(pd[i] & ~0xfffULL, i << 21);
		assert_int_equal(pd[i] & 0x87, 0x87); /* present, writable, user, 2 MiB */
	}
	/* The tables end before the command line and never overlap the zero page. */
	assert_true(LAYOUT_PD + 4 * 4096 <= LAYOUT_CMDLINE);
	assert_true(LAYOUT_ZERO_PAGE + 4096 <= LAYOUT_PML4);
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zero_page_carries_every_input),
		cmocka_unit_test(a_header_longer_than_the_room_is_cut),
		cmocka_unit_test(pvh_start_info_has_modules_and_map),
		cmocka_unit_test(boot_page_tables_identity_map_4_gib),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
