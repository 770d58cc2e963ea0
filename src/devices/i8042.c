/* Just enough of the i8042 keyboard controller for the PC reset line: command 0xFE
 * ("pulse output line 0") resets the machine, which for argon ends the VM. */
#include "devices/legacy.h"

#include "arch/x86/layout.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "vmm/vm.h"

#define I8042_CMD_RESET 0xfe
#define I8042_STATUS_SYSTEM_FLAG 0x04 /* self-test passed */

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	/* Status (0x64): nothing to read, input buffer empty. Data (0x60): no key. */
	data[0] = offset == LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA
			  ? I8042_STATUS_SYSTEM_FLAG
			  : 0;
	for (uint32_t i = 1; i < len; i++)
		data[i] = 0;
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	if (offset == LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA &&
	    data[0] == I8042_CMD_RESET) {
		log_info("guest reset through the i8042 controller");
		vm_request_stop(vm, EXIT_GUEST_OK);
	}
}

static const struct bus_device_ops i8042_ops = {
	.name = "i8042",
	.read = i8042_read,
	.write = i8042_write,
};

int i8042_create(struct vm *vm)
{
	return bus_register(&vm->pio_bus, LAYOUT_PORT_I8042_DATA,
			    LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA + 1, &i8042_ops, vm);
}
