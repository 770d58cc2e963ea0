/* Puts a kernel, its initrd, command line, firmware tables and boot information into
 * guest memory and points the boot vCPU at the entry. */
#ifndef ARGON_VMM_BOOT_H
#define ARGON_VMM_BOOT_H

#include "vmm/config.h"
#include "vmm/vm.h"

/* Returns 0, or an exit status (enum exit_status) after printing one message that
 * names the file or field at fault. */
int boot_prepare(struct vm *vm, const struct vm_config *cfg);

#endif
