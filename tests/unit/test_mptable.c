/* Unit tests for the MP table, read back by the MP spec 1.4 offsets: checksums, entry
 * counts and kinds, the IRQ routing, and the bounds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "common/util.h"
#include "vmm/memory.h"

/* Entries of one fixed size each: processors 20 bytes, the rest 8 (section 4.3). */
#define CPU_ENTRY 20
#define OTHER_ENTRY 8
/* What fits in the EBDA's KiB besides the CPUs: pointer, header, bus, IOAPIC,
 * 15 I/O interrupt and 2 local interrupt entries. */
#define MAX_FITTING_CPUS ((0x400 - 16 - 44 - 8 - 8 - 17 * 8) / CPU_ENTRY)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

struct mp_counts {
	int cpus, buses, ioapics, intsrcs, lintsrcs;
	int pin_of_irq[16]; /* -1: no INT entry for that ISA IRQ */
	int extint_pin;
};

static void count_entry(struct mp_counts *c, const uint8_t *e, int ncpus)
{
	switch (e[0]) {
	case 0: /* processor: APIC id = index, enabled, BSP flag on the first only */
		assert_int_equal(e[1], c->cpus);
		assert_int_equal(e[2], 0x14);
		assert_int_equal(e[3], c->cpus == 0 ? 0x03 : 0x01);
		c->cpus++;
		break;
	case 1:
		assert_memory_equal(e + 2, "ISA   ", 6);
		c->buses++;
		break;
	case 2:
		assert_int_equal(e[1], ncpus); /* IOAPIC id */
		assert_int_equal(e[2], 0x11);
		assert_int_equal(e[3], 1);
		assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
		c->ioapics++;
		break;
	case 3:
		assert_int_equal(e[4], 0); /* ISA bus */
		assert_int_equal(e[6], ncpus);
		if (e[1] == 3)
			c->extint_pin = e[7];
		else if (e[1] == 0)
			c->pin_of_irq[e[5] & 15] = e[7];
		c->intsrcs++;
		break;
	case 4:
		/* LINT0 of the BSP: ExtINT; LINT1 of all: NMI. */
		if (e[1] == 3) {
			assert_int_equal(e[6], 0);
			assert_int_equal(e[7], 0);
		} else {
			assert_int_equal(e[1], 1);
			assert_int_equal(e[6], 0xFF);
			assert_int_equal(e[7], 1);
		}
		c->lintsrcs++;
		break;
	default:
		fail_msg("unknown MP entry type %u", e[0]);
	}
}

/* Checks the floating pointer and header, then walks the entries. */
static struct mp_counts read_table(const struct guest_mem *mem, int ncpus)
{
	const uint8_t *mpf = guest_mem_ptr(mem, LAYOUT_EBDA_START, 16);
	assert_non_null(mpf);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(mpf[8], 1); /* length in paragraphs */
	assert_int_equal(mpf[9], 4); /* spec 1.4 */
	assert_int_equal(byte_sum(mpf, 16), 0);
	uint32_t table_gpa = rd32(mpf + 4);
	assert_int_equal(table_gpa, LAYOUT_EBDA_START + 16);
	const uint8_t *t = guest_mem_ptr(mem, table_gpa, 44);
	assert_memory_equal(t, "PCMP", 4);
	uint16_t len = rd16(t + 4);
	assert_true(table_gpa + len <= LAYOUT_LOW_RAM_END);
	assert_int_equal(t[6], 4);
	assert_int_equal(byte_sum(t, len), 0);
	assert_int_equal(rd32(t + 36), LAYOUT_LAPIC);

	struct mp_counts c = { .extint_pin = -1 };
	memset(c.pin_of_irq, 0xFF, sizeof(c.pin_of_irq));
	int n = 0;
	for (uint32_t off = 44; off < len; n++) {
		count_entry(&c, t + off, ncpus);
		off += t[off] == 0 ? CPU_ENTRY : OTHER_ENTRY;
		assert_true(off <= len);
	}
	assert_int_equal(n, rd16(t + 34)); /* entry count */
	return c;
}

static void check_ncpus(int ncpus)
{
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(64)), 0);
	assert_int_equal(mptable_build(&mem, ncpus), 0);
	struct mp_counts c = read_table(&mem, ncpus);
	guest_mem_destroy(&mem);
	assert_int_equal(c.cpus, ncpus);
	assert_int_equal(c.buses, 1);
	assert_int_equal(c.ioapics, 1);
	assert_int_equal(c.intsrcs, 15);
	assert_int_equal(c.lintsrcs, 2);
	assert_int_equal(c.extint_pin, -1);	/* the 8259 reaches CPUs through LINT0 */
	assert_int_equal(c.pin_of_irq[2], -1); /* the cascade reaches no pin */
	for (int irq = 0; irq < 16; irq++) /* KVM's default routing: GSI n on pin n */
		if (irq != 2)
			assert_int_equal(c.pin_of_irq[irq], irq);
}

static void test_cpu_counts(void **state)
{
	(void)state;
	static const int counts[] = { 1, 2, 3, 8, 32, MAX_FITTING_CPUS };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		check_ncpus(counts[i]);
}

static void test_bad_counts(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, MIB(64)), 0);
	assert_int_equal(mptable_build(&mem, 0), -EINVAL);
	assert_int_equal(mptable_build(&mem, -1), -EINVAL);
	assert_int_equal(mptable_build(&mem, 256), -EINVAL);
	/* Valid for the MP spec, but more than the EBDA's KiB holds. */
	assert_int_equal(mptable_build(&mem, MAX_FITTING_CPUS + 1), -ENOSPC);
	assert_int_equal(mptable_build(&mem, 255), -ENOSPC);
	guest_mem_destroy(&mem);
}

/* Guest RAM that ends before the EBDA: nowhere to put the table. */
static void test_no_ram_for_table(void **state)
{
	(void)state;
	struct guest_mem mem;
	assert_int_equal(guest_mem_create_anon(&mem, KIB(512)), 0);
	assert_int_equal(mptable_build(&mem, 1), -ENOSPC);
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_counts),
		cmocka_unit_test(test_bad_counts),
		cmocka_unit_test(test_no_ram_for_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
