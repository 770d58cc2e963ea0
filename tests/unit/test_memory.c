/* Guest memory layout and the one translation helper every guest address goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "common/util.h"
#include "vmm/memory.h"

static void small_guest_has_one_region(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(128)), 0);
	assert_int_equal(mem.nregions, 1);
	assert_true(mem.zero_filled); /* loaders rely on it to skip clearing bss */
	assert_int_equal(guest_mem_low_end(&mem), MIB(128));
	assert_non_null(guest_mem_ptr(&mem, 0, MIB(128)));
	assert_null(guest_mem_ptr(&mem, 0, MIB(128) + 1));
	assert_null(guest_mem_ptr(&mem, MIB(128), 1));
	guest_mem_destroy(&mem);
}

static void large_guest_skips_the_mmio_hole(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create(&mem, GIB(5)), 0);
	assert_int_equal(mem.nregions, 2);
	assert_int_equal(guest_mem_low_end(&mem), LAYOUT_MMIO_HOLE_START);
	assert_int_equal(mem.regions[1].gpa, LAYOUT_MMIO_HOLE_END);
	assert_int_equal(mem.regions[1].size, GIB(2));
	assert_null(guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_START, 1));
	assert_null(guest_mem_ptr(&mem, LAYOUT_IOAPIC, 4));
	/* A range that straddles the end of the low region into the hole is refused. */
	assert_null(guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_START - 4, 8));
	uint8_t *hi = guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_END, 8);
	assert_non_null(hi);
	hi[0] = 0x5a;
	assert_int_equal(((uint8_t *)guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_END, 1))[0], 0x5a);
	assert_non_null(guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_END + GIB(2) - 8, 8));
	assert_null(guest_mem_ptr(&mem, LAYOUT_MMIO_HOLE_END + GIB(2) - 8, 9));
	guest_mem_destroy(&mem);
}

static void wrapping_ranges_are_refused(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(16)), 0);
	assert_null(guest_mem_ptr(&mem, 0x1000, UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX - 4095, 4096));
	/* Length 0 still has to name a byte of RAM. */
	assert_non_null(guest_mem_ptr(&mem, 0, 0));
	assert_null(guest_mem_ptr(&mem, MIB(16), 0));
	guest_mem_destroy(&mem);
}

static void bad_sizes_are_refused(void **state)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, 0), -22);
	assert_int_equal(guest_mem_create_anon(&mem, 4097), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_guest_has_one_region),
		cmocka_unit_test(large_guest_skips_the_mmio_hole),
		cmocka_unit_test(wrapping_ranges_are_refused),
		cmocka_unit_test(bad_sizes_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
