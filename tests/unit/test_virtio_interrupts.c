/* virtio-mmio's InterruptStatus and InterruptACK (virtio 1.2, 4.2.2). KVM coalesces
 * the driver's ACK writes, so one can reach the device after the device raised the
 * same bit again: such a bit must survive the late ACK, or the handler of that
 * interrupt reads 0 and misses used buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "virtio_test_driver.h"

#define REG_INTERRUPT_STATUS 0x060
#define REG_INTERRUPT_ACK 0x064
#define REG_STATUS 0x070
#define USED_BUFFER 1u
#define CONFIG_CHANGE 2u

static const struct virtio_device_ops plain_ops = {
	.name = "plain", .device_id = 4, .num_queues = 1, .queue_max_size = 16,
};

static uint32_t read_reg(struct vtd *t, uint64_t reg)
{
	uint32_t v;
	virtio_mmio_access(&t->dev, reg, (uint8_t *)&v, 4, false);
	return v;
}

static void write_reg(struct vtd *t, uint64_t reg, uint32_t v)
{
	virtio_mmio_access(&t->dev, reg, (uint8_t *)&v, 4, true);
}

static struct vtd *setup(void)
{
	static struct vtd t;
	assert_int_equal(vtd_init(&t, &plain_ops, NULL, 2, 1ULL << VIRTIO_F_VERSION_1, 0), 0);
	return &t;
}

static void the_driver_reads_and_acknowledges(void **state)
{
	struct vtd *t = setup();
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), 0);
	virtio_notify_config(&t->dev);
	uint32_t isr = read_reg(t, REG_INTERRUPT_STATUS);
	assert_int_equal(isr, CONFIG_CHANGE);
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), CONFIG_CHANGE); /* reads clear nothing */
	write_reg(t, REG_INTERRUPT_ACK, isr);
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), 0);
	assert_int_equal(vtd_interrupts(t), 1);
	vtd_destroy(t);
}

/* Read, the device raises again, then the (coalesced, late) ACK of what was read. */
static void a_bit_raised_after_the_read_survives_a_late_ack(void **state)
{
	struct vtd *t = setup();
	virtio_notify_config(&t->dev);
	uint32_t isr = read_reg(t, REG_INTERRUPT_STATUS);
	virtio_notify_config(&t->dev);
	write_reg(t, REG_INTERRUPT_ACK, isr);
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), CONFIG_CHANGE);
	write_reg(t, REG_INTERRUPT_ACK, CONFIG_CHANGE); /* that read saw it: now it goes */
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), 0);
	vtd_destroy(t);
}

/* Only the raised-again bit is kept; an ACK still clears bits read before. */
static void bits_are_kept_one_by_one(void **state)
{
	struct vtd *t = setup();
	__atomic_or_fetch(&t->dev.interrupt_status, USED_BUFFER, __ATOMIC_RELEASE);
	virtio_notify_config(&t->dev);
	uint32_t isr = read_reg(t, REG_INTERRUPT_STATUS);
	assert_int_equal(isr, USED_BUFFER | CONFIG_CHANGE);
	virtio_notify_config(&t->dev);
	write_reg(t, REG_INTERRUPT_ACK, isr);
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), CONFIG_CHANGE);
	vtd_destroy(t);
}

static void a_reset_clears_the_status(void **state)
{
	struct vtd *t = setup();
	virtio_notify_config(&t->dev);
	write_reg(t, REG_STATUS, 0);
	assert_int_equal(read_reg(t, REG_INTERRUPT_STATUS), 0);
	vtd_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_driver_reads_and_acknowledges),
		cmocka_unit_test(a_bit_raised_after_the_read_survives_a_late_ack),
		cmocka_unit_test(bits_are_kept_one_by_one),
		cmocka_unit_test(a_reset_clears_the_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
