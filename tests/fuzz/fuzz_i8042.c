/* libFuzzer target for the i8042: a hostile guest's accesses to ports 0x60 and 0x64
 * (any command, any data byte, any width, in any order) interleaved with the VMM
 * typing Ctrl+Alt+Del. Checked on every step: IRQ 1 is never up without a byte in the
 * output buffer, and Ctrl+Alt+Del is refused only when the buffer cannot hold it.
 *
 * Input: records of 2 bytes: [0] bits 0-2 the operation (0 read data, 1 read status,
 * 2 write data, 3 write command, 4 Ctrl+Alt+Del, others read status), bits 3-4 the
 * width 1/2/4/8; [1] the byte written. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/i8042.h"
#include "vmm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void irq_hook(void *ctx, int level)
{
	*(int *)ctx = level;
}

static uint8_t status(struct vm *vm)
{
	uint8_t b[8] = { 0 };
	bus_access(&vm->pio_bus, 0x64, b, 1, false);
	return b[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm vm;
	struct i8042 *k;
	int level = 0;
	log_init("fuzz", LOG_ERROR);
	memset(&vm, 0, sizeof(vm));
	vm.vm_fd = -1;
	vm.stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&vm.stop_lock, NULL);
	bus_init(&vm.pio_bus, "pio");
	if (vm.stop_fd < 0 || i8042_create(&vm, &k))
		__builtin_trap();
	i8042_set_irq_hook(k, irq_hook, &level);
	for (size_t i = 0; i + 2 <= size && i < 2 * 4096; i += 2) {
		uint8_t op = data[i] & 7, b[8] = { data[i + 1] };
		uint32_t len = 1u << ((data[i] >> 3) & 3);
		if (op == 4) {
			int err = i8042_send_ctrl_alt_del(k);
			if (err && err != -ENOSPC)
				__builtin_trap();
		} else if (op <= 3) {
			bus_access(&vm.pio_bus, op & 1 ? 0x64 : 0x60, b, len, op >= 2);
		}
		if (level && !(status(&vm) & 1))
			__builtin_trap(); /* IRQ 1 up with nothing to read */
	}
	i8042_destroy(k);
	close(vm.stop_fd);
	pthread_mutex_destroy(&vm.stop_lock);
	return 0;
}
