/* ACPI hardware-reduced power management (ACPI 6.4, 4.8.3.7 sleep control and
 * status registers; 4.8.3.6 reset register). The FADT points at these ports. */
#include "devices/legacy.h"

#include "arch/x86/layout.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "vmm/vm.h"

#define SLEEP_CONTROL_SLP_EN 0x20
#define SLEEP_CONTROL_SLP_TYP(v) (((v) >> 2) & 0x7)

static void acpi_pm_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		data[i] = 0; /* never asleep, no wake status */
}

/* A guest can write the sleep register in a loop: one VM per process, so one
 * limiter for the process is one for the device. */
static struct log_limit sleep_type_log;

static void acpi_pm_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	uint64_t port = LAYOUT_PORT_ACPI_SLEEP_CONTROL + offset;
	if (port == LAYOUT_PORT_ACPI_SLEEP_CONTROL && (data[0] & SLEEP_CONTROL_SLP_EN)) {
		if (SLEEP_CONTROL_SLP_TYP(data[0]) == LAYOUT_ACPI_S5_SLP_TYP) {
			log_info("guest powered off (ACPI S5)");
			vm_request_stop(vm, EXIT_GUEST_OK);
		} else {
			log_warn_limited(&sleep_type_log,
					 "guest asked for sleep type %u, which argon does not offer; "
					 "ignored", SLEEP_CONTROL_SLP_TYP(data[0]));
		}
	} else if (port == LAYOUT_PORT_ACPI_RESET && data[0] == LAYOUT_ACPI_RESET_VALUE) {
		log_info("guest reset through the ACPI reset register");
		vm_request_stop(vm, EXIT_GUEST_OK);
	}
}

static const struct bus_device_ops acpi_pm_ops = {
	.name = "acpi-pm",
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

int acpi_pm_create(struct vm *vm)
{
	return bus_register(&vm->pio_bus, LAYOUT_PORT_ACPI_SLEEP_CONTROL,
			    LAYOUT_PORT_ACPI_RESET - LAYOUT_PORT_ACPI_SLEEP_CONTROL + 1, &acpi_pm_ops,
			    vm);
}
