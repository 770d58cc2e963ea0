/* The PIO/MMIO bus: ranges, overlap refusal, routing and the all-ones default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct probe {
	uint64_t last_offset;
	uint8_t last_write;
	int reads, writes;
};

static void probe_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct probe *p = opaque;
	p->reads++;
	p->last_offset = offset;
	memset(data, 0x42, len);
}

static void probe_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct probe *p = opaque;
	p->writes++;
	p->last_offset = offset;
	p->last_write = data[0];
}

static const struct bus_device_ops probe_ops = { "probe", probe_read, probe_write };

static void accesses_reach_the_device_at_their_offset(void **state)
{
	struct bus bus;
	struct probe p = { 0 };
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &probe_ops, &p), 0);
	uint8_t data[4] = { 0x7 };
	assert_true(bus_access(&bus, 0x3fd, data, 1, false));
	assert_int_equal(p.last_offset, 5);
	assert_int_equal(data[0], 0x42);
	data[0] = 0x99;
	assert_true(bus_access(&bus, 0x3f8, data, 1, true));
	assert_int_equal(p.last_write, 0x99);
	assert_int_equal(bus.ranges[0].accesses, 2);
}

static void unclaimed_addresses_read_all_ones(void **state)
{
	struct bus bus;
	bus_init(&bus, "mmio");
	uint8_t data[8] = { 0 };
	assert_false(bus_access(&bus, 0xcffff000, data, 8, false));
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0xff);
	assert_false(bus_access(&bus, 0xcffff000, data, 4, true));
}

static void overlaps_and_bad_ranges_are_refused(void **state)
{
	struct bus bus;
	struct probe p = { 0 };
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x60, 5, &probe_ops, &p), 0);
	assert_int_equal(bus_register(&bus, 0x64, 1, &probe_ops, &p), -17);
	assert_int_equal(bus_register(&bus, 0x5f, 2, &probe_ops, &p), -17);
	assert_int_equal(bus_register(&bus, 0x65, 1, &probe_ops, &p), 0);
	assert_int_equal(bus_register(&bus, 0x100, 0, &probe_ops, &p), -22);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, &probe_ops, &p), -22);
	for (int i = bus.nranges; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, 0x1000 + (uint64_t)i * 16, 16, &probe_ops, &p), 0);
	assert_int_equal(bus_register(&bus, 0x9000, 1, &probe_ops, &p), -28);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accesses_reach_the_device_at_their_offset),
		cmocka_unit_test(unclaimed_addresses_read_all_ones),
		cmocka_unit_test(overlaps_and_bad_ranges_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
