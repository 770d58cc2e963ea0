/* Guest memory layout and the one translation helper every guest address goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* A snapshot's memory file: only the pages with data are written (holes elsewhere),
 * and mapped back private it reads the same while the guest's writes stay private. */
static void memory_goes_to_a_sparse_file_and_back(void **state)
{
	struct guest_mem mem, back;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/argon-mem-%d", getpid());
	assert_int_equal(guest_mem_create(&mem, MIB(16)), 0);
	uint8_t *a = guest_mem_ptr(&mem, 0x3000, 4096), *b = guest_mem_ptr(&mem, MIB(9), 8192);
	memset(a, 0xab, 4096);
	b[8191] = 7;
	memset(guest_mem_ptr(&mem, MIB(12), 4096), 0, 4096); /* touched, but zeros */
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	struct guest_mem_dump_stats st;
	assert_int_equal(guest_mem_write_file(&mem, fd, &st), 0);
	assert_int_equal(st.written, 4096 + 4096); /* a's page and b's second page */
	assert_int_equal(st.written + st.skipped, MIB(16));
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, MIB(16));
	assert_true((uint64_t)sb.st_blocks * 512 <= MIB(1)); /* sparse */
	assert_int_equal(guest_mem_create_private(&back, MIB(16), fd), 0);
	assert_memory_equal(guest_mem_ptr(&back, 0, MIB(16)), mem.mapping, MIB(16));
	uint8_t *p = guest_mem_ptr(&back, 0x3000, 1);
	*p = 1;
	uint8_t onfile = 0;
	int ro = open(path, O_RDONLY);
	assert_int_equal(pread(ro, &onfile, 1, 0x3000), 1);
	assert_int_equal(onfile, 0xab); /* the guest's write stayed private */
	/* A snapshot of the restored memory: the file's data, plus what the guest wrote. */
	*(uint8_t *)guest_mem_ptr(&back, MIB(5), 1) = 9;
	char again[80];
	snprintf(again, sizeof(again), "%s.again", path);
	int fd2 = open(again, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(guest_mem_write_file(&back, fd2, &st), 0);
	assert_int_equal(st.written, 3 * 4096);
	struct guest_mem third;
	assert_int_equal(guest_mem_create_private(&third, MIB(16), fd2), 0);
	assert_memory_equal(third.mapping, back.mapping, MIB(16));
	guest_mem_destroy(&third);
	unlink(again);
	guest_mem_destroy(&back); /* closes fd */
	assert_int_equal(guest_mem_create_private(&back, MIB(32), ro), -22); /* another size */
	close(ro);
	guest_mem_destroy(&mem);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_guest_has_one_region),
		cmocka_unit_test(large_guest_skips_the_mmio_hole),
		cmocka_unit_test(wrapping_ranges_are_refused),
		cmocka_unit_test(bad_sizes_are_refused),
		cmocka_unit_test(memory_goes_to_a_sparse_file_and_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
