/* The small platform devices: each claims its ports on the VM's PIO bus (the i8042,
 * which has state the VMM reaches, is in i8042.h). */
#ifndef ARGON_DEVICES_LEGACY_H
#define ARGON_DEVICES_LEGACY_H

struct vm;

int acpi_pm_create(struct vm *vm);
int argon_exit_create(struct vm *vm);

#endif
