/* The argon exit port: a guest writes a status byte to end the VM with that status
 * (argon-guest reports a command's result this way, so `argon run -- CMD` can pass
 * it through). */
#include "devices/legacy.h"

#include "arch/x86/layout.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "vmm/vm.h"

static void argon_exit_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	int status = data[0];
	if (status > EXIT_GUEST_MAX) {
		log_warn("guest exit status %d is above %d, reported as %d", status,
			 EXIT_GUEST_MAX, EXIT_GUEST_MAX);
		status = EXIT_GUEST_MAX;
	}
	log_info("guest asked to exit with status %d", status);
	vm_request_stop(vm, status);
}

static const struct bus_device_ops argon_exit_ops = {
	.name = "argon-exit",
	.write = argon_exit_write,
};

int argon_exit_create(struct vm *vm)
{
	return bus_register(&vm->pio_bus, LAYOUT_PORT_ARGON_EXIT, 1, &argon_exit_ops, vm);
}
