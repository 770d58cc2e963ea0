/* The small platform devices: each claims its ports on the VM's PIO bus. */
#ifndef ARGON_DEVICES_LEGACY_H
#define ARGON_DEVICES_LEGACY_H

struct vm;

int i8042_create(struct vm *vm);
int acpi_pm_create(struct vm *vm);
int argon_exit_create(struct vm *vm);

#endif
