/* Unit tests for the e820 map: the layout below 1 MiB, the 32-bit MMIO hole, RAM above
 * 4 GiB, ordering and the room check. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "common/util.h"
#include "vmm/memory.h"

#define MAX_ENTRIES 16

/* Sorted, non-overlapping, nothing in the MMIO hole, and RAM adds up to the guest's. */
static void check_invariants(const struct e820_entry *e, int n, uint64_t ram_size)
{
	uint64_t ram = 0;
	for (int i = 0; i < n; i++) {
		assert_true(e[i].size > 0);
		if (i > 0)
			assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
		uint64_t end = e[i].addr + e[i].size;
		assert_false(e[i].addr < LAYOUT_MMIO_HOLE_END && end > LAYOUT_MMIO_HOLE_START);
		if (e[i].type == E820_RAM)
			ram += e[i].size;
	}
	/* The reserved EBDA/BIOS area is carved out of the low RAM. */
	assert_int_equal(ram, ram_size - (LAYOUT_HIMEM_START - LAYOUT_EBDA_START));
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* Builds the map for ram_size bytes; returns the entry count after the common checks. */
static int build(uint64_t ram_size, struct e820_entry *e)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, ram_size), 0);
	int n = e820_build(&mem, e, MAX_ENTRIES);
	guest_mem_destroy(&mem);
	assert_true(n >= 2);
	check_entry(&e[0], 0, LAYOUT_EBDA_START, E820_RAM);
	check_entry(&e[1], LAYOUT_EBDA_START, LAYOUT_HIMEM_START - LAYOUT_EBDA_START,
		    E820_RESERVED);
	check_invariants(e, n, ram_size);
	return n;
}

static void test_128m(void **state)
{
	(void)state;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(build(MIB(128), e), 3);
	check_entry(&e[2], LAYOUT_HIMEM_START, MIB(128) - LAYOUT_HIMEM_START, E820_RAM);
}

static void test_3g_fills_low_region(void **state)
{
	(void)state;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(build(GIB(3), e), 3);
	check_entry(&e[2], LAYOUT_HIMEM_START, LAYOUT_MMIO_HOLE_START - LAYOUT_HIMEM_START,
		    E820_RAM);
}

static void test_4g_spills_above_hole(void **state)
{
	(void)state;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(build(GIB(4), e), 4);
	check_entry(&e[2], LAYOUT_HIMEM_START, LAYOUT_MMIO_HOLE_START - LAYOUT_HIMEM_START,
		    E820_RAM);
	check_entry(&e[3], LAYOUT_MMIO_HOLE_END, GIB(1), E820_RAM);
}

static void test_16g(void **state)
{
	(void)state;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(build(GIB(16), e), 4);
	check_entry(&e[3], LAYOUT_MMIO_HOLE_END, GIB(13), E820_RAM);
}

/* Exactly 1 MiB: nothing above the BIOS area, so no third entry. */
static void test_1m(void **state)
{
	(void)state;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(build(MIB(1), e), 2);
}

static void test_room_check(void **state)
{
	(void)state;
	struct guest_mem mem;
	struct e820_entry e[MAX_ENTRIES];
	assert_int_equal(guest_mem_create_anon(&mem, GIB(4)), 0);
	assert_int_equal(e820_build(&mem, e, 3), -ENOSPC);
	assert_int_equal(e820_build(&mem, e, 0), -ENOSPC);
	assert_int_equal(e820_build(&mem, e, 4), 4);
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_128m),
		cmocka_unit_test(test_3g_fills_low_region),
		cmocka_unit_test(test_4g_spills_above_hole),
		cmocka_unit_test(test_16g),
		cmocka_unit_test(test_1m),
		cmocka_unit_test(test_room_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
