/* The i8042 through the PIO bus, as a guest driver sees it: status, command byte,
 * self-tests, output port and reset, keyboard commands and their replies (translated
 * or not), IRQ 1 edges, and Ctrl+Alt+Del with its bounded buffer. No KVM: IRQ 1 goes
 * to a hook that records the line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/exit_status.h"
#include "devices/i8042.h"
#include "vmm/vm.h"

#define DATA 0x60
#define CMD 0x64
#define OBF 0x01
#define SYS 0x04

struct fixture {
	struct vm vm;
	struct i8042 *k;
	int level;
	int edges; /* rising edges of IRQ 1 */
};

static void irq_hook(void *ctx, int level)
{
	struct fixture *f = ctx;
	if (level && !f->level)
		f->edges++;
	f->level = level;
}

static int setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	f.vm.vm_fd = -1;
	f.vm.stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&f.vm.stop_lock, NULL);
	bus_init(&f.vm.pio_bus, "pio");
	if (i8042_create(&f.vm, &f.k))
		return -1;
	i8042_set_irq_hook(f.k, irq_hook, &f);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	i8042_destroy(f->k);
	close(f->vm.stop_fd);
	pthread_mutex_destroy(&f->vm.stop_lock);
	return 0;
}

static uint8_t in(struct fixture *f, uint16_t port)
{
	uint8_t b = 0x5a;
	assert_true(bus_access(&f->vm.pio_bus, port, &b, 1, false));
	return b;
}

static void out(struct fixture *f, uint16_t port, uint8_t b)
{
	assert_true(bus_access(&f->vm.pio_bus, port, &b, 1, true));
}

/* Reads n bytes from port 0x60, each announced by OBF, and checks the buffer is then
 * empty. */
static void expect_bytes(struct fixture *f, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(in(f, CMD) & OBF);
		assert_int_equal(in(f, DATA), want[i]);
	}
	assert_false(in(f, CMD) & OBF);
}

#define EXPECT(f, ...)                                                                     \
	do {                                                                               \
		const uint8_t want_[] = { __VA_ARGS__ };                                   \
		expect_bytes(f, want_, sizeof(want_));                                     \
	} while (0)

static void power_on_state_and_command_byte(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(in(f, CMD) & (OBF | SYS), SYS);
	out(f, CMD, 0x20);
	EXPECT(f, 0x05); /* keyboard interrupt on, system flag, no translation */
	out(f, CMD, 0x60);
	out(f, DATA, 0x00);
	assert_int_equal(in(f, CMD) & SYS, 0); /* the status mirrors the system flag */
	out(f, CMD, 0x20);
	EXPECT(f, 0x00);
	out(f, CMD, 0xa7); /* aux disable / enable flip command byte bit 5 */
	out(f, CMD, 0x20);
	EXPECT(f, 0x20);
	out(f, CMD, 0xa8);
	out(f, CMD, 0x20);
	EXPECT(f, 0x00);
}

static void self_tests_answer(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0xaa);
	EXPECT(f, 0x55);
	out(f, CMD, 0xab);
	EXPECT(f, 0x00);
	/* No aux port: its commands go unanswered. */
	out(f, CMD, 0xa9);
	assert_false(in(f, CMD) & OBF);
	/* An empty buffer reads its last byte again. */
	assert_int_equal(in(f, DATA), 0x00);
}

static void output_port_and_reset(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0xd0);
	EXPECT(f, 0x03);
	out(f, CMD, 0xd1);
	out(f, DATA, 0xdf); /* what Linux writes: A20 on, reset line inactive */
	out(f, CMD, 0xd0);
	EXPECT(f, 0xdf);
	out(f, CMD, 0xff); /* pulse no line */
	assert_false(vm_stop_requested(&f->vm));
	out(f, CMD, 0xfe);
	assert_true(vm_stop_requested(&f->vm));
	assert_int_equal(f->vm.stop_status, EXIT_GUEST_OK);
}

static void output_port_reset_line(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0xd1);
	out(f, DATA, 0xfe); /* bit 0 low: the CPU reset line */
	assert_true(vm_stop_requested(&f->vm));
}

static void keyboard_commands_as_atkbd_probes_them(void **state)
{
	struct fixture *f = *state;
	out(f, DATA, 0xff); /* reset: ACK, then the self-test passed */
	EXPECT(f, 0xfa, 0xaa);
	out(f, DATA, 0xf2); /* get ID: an MF2 keyboard */
	EXPECT(f, 0xfa, 0xab, 0x83);
	out(f, DATA, 0xf5);
	EXPECT(f, 0xfa);
	out(f, DATA, 0xed); /* LEDs, then their byte */
	EXPECT(f, 0xfa);
	out(f, DATA, 0x00);
	EXPECT(f, 0xfa);
	out(f, DATA, 0xf3); /* typematic rate, then its byte */
	EXPECT(f, 0xfa);
	out(f, DATA, 0x00);
	EXPECT(f, 0xfa);
	out(f, DATA, 0xf4);
	EXPECT(f, 0xfa);
	out(f, DATA, 0xee); /* echo */
	EXPECT(f, 0xee);
	out(f, DATA, 0x05); /* not a command */
	EXPECT(f, 0xfe);
}

static void only_scan_code_set_2(void **state)
{
	struct fixture *f = *state;
	out(f, DATA, 0xf0);
	EXPECT(f, 0xfa);
	out(f, DATA, 0x00); /* which set? */
	EXPECT(f, 0xfa, 0x02);
	out(f, DATA, 0xf0);
	EXPECT(f, 0xfa);
	out(f, DATA, 0x03); /* refused, so a driver falls back to set 2 */
	EXPECT(f, 0xfe);
	out(f, DATA, 0xf0);
	out(f, DATA, 0x02);
	EXPECT(f, 0xfa);
}

static void translated_replies_are_set_1(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0x60);
	out(f, DATA, 0x45); /* XLATE on */
	out(f, DATA, 0xf2);
	EXPECT(f, 0xfa, 0xab, 0x41);
	out(f, CMD, 0xaa); /* the controller's own replies are never translated */
	EXPECT(f, 0x55);
}

static void a_new_command_drops_unread_replies(void **state)
{
	struct fixture *f = *state;
	out(f, DATA, 0xf2);
	assert_int_equal(in(f, DATA), 0xfa);
	out(f, CMD, 0x20);
	EXPECT(f, 0x05);
}

static void replies_raise_irq1_with_an_edge_per_byte(void **state)
{
	struct fixture *f = *state;
	out(f, DATA, 0xf2);
	assert_int_equal(f->edges, 1);
	assert_int_equal(f->level, 1);
	in(f, DATA);
	in(f, DATA);
	assert_int_equal(f->edges, 3);
	in(f, DATA);
	assert_int_equal(f->edges, 3);
	assert_int_equal(f->level, 0);
}

static void no_irq_while_the_command_byte_masks_it(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0x60);
	out(f, DATA, 0x04);
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	assert_int_equal(f->edges, 0);
	assert_true(in(f, CMD) & OBF); /* a polling driver still sees it */
	/* Enabling the interrupt with a byte waiting gives an edge. */
	out(f, CMD, 0x60);
	out(f, DATA, 0x05);
	assert_int_equal(f->edges, 1);
}

static void ctrl_alt_del_in_set_2(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	assert_int_equal(f->edges, 1);
	/* Ctrl, Alt, Del (extended) pressed, then released in reverse order. */
	EXPECT(f, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14);
	assert_int_equal(f->edges, 11);
	assert_int_equal(f->level, 0);
}

static void ctrl_alt_del_translated_to_set_1(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0x60);
	out(f, DATA, 0x45);
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
}

static void the_buffer_is_bounded_and_takes_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), -ENOSPC);
	uint8_t first[11];
	for (int i = 0; i < 11; i++)
		first[i] = in(f, DATA);
	assert_false(in(f, CMD) & OBF); /* nothing of the refused one */
	assert_int_equal(first[0], 0x14);
	assert_int_equal(first[10], 0x14);
	/* Read: room again. */
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	assert_int_equal(in(f, DATA), 0x14);
}

static void keys_wait_while_the_keyboard_is_disabled(void **state)
{
	struct fixture *f = *state;
	out(f, CMD, 0xad);
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	assert_false(in(f, CMD) & OBF);
	assert_int_equal(f->edges, 0);
	out(f, CMD, 0x20); /* the controller still answers, ahead of the keys */
	EXPECT(f, 0x15);
	out(f, CMD, 0xae);
	assert_int_equal(f->edges, 2); /* the reply's, then the first key's */
	assert_int_equal(in(f, DATA), 0x14);
}

static void replies_go_ahead_of_waiting_keys(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(i8042_send_ctrl_alt_del(f->k), 0);
	out(f, DATA, 0xf2);
	assert_int_equal(in(f, DATA), 0xfa);
	assert_int_equal(in(f, DATA), 0xab);
	assert_int_equal(in(f, DATA), 0x83);
	assert_int_equal(in(f, DATA), 0x14);
	/* A keyboard reset forgets the rest. */
	out(f, DATA, 0xff);
	EXPECT(f, 0xfa, 0xaa);
}

static void wide_accesses_use_the_low_byte(void **state)
{
	struct fixture *f = *state;
	uint8_t w[4] = { 0xaa, 0x11, 0x22, 0x33 };
	assert_true(bus_access(&f->vm.pio_bus, CMD, w, 4, true));
	uint8_t r[4] = { 0xff, 0xff, 0xff, 0xff };
	assert_true(bus_access(&f->vm.pio_bus, DATA, r, 4, false));
	assert_int_equal(r[0], 0x55);
	assert_int_equal(r[1] | r[2] | r[3], 0);
	/* Ports 0x61-0x63 are not the controller's: nothing answers there. */
	uint8_t before = in(f, CMD);
	out(f, 0x62, 0xfe);
	assert_false(vm_stop_requested(&f->vm));
	assert_int_equal(in(f, 0x61), 0xff);
	assert_int_equal(in(f, CMD), before);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(power_on_state_and_command_byte),
		T(self_tests_answer),
		T(output_port_and_reset),
		T(output_port_reset_line),
		T(keyboard_commands_as_atkbd_probes_them),
		T(only_scan_code_set_2),
		T(translated_replies_are_set_1),
		T(a_new_command_drops_unread_replies),
		T(replies_raise_irq1_with_an_edge_per_byte),
		T(no_irq_while_the_command_byte_masks_it),
		T(ctrl_alt_del_in_set_2),
		T(ctrl_alt_del_translated_to_set_1),
		T(the_buffer_is_bounded_and_takes_all_or_nothing),
		T(keys_wait_while_the_keyboard_is_disabled),
		T(replies_go_ahead_of_waiting_keys),
		T(wide_accesses_use_the_low_byte),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
