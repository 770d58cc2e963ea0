/* Ending the VM: the argon exit port first, then ACPI. */
#ifndef GUEST_POWER_H
#define GUEST_POWER_H

/* Exit statuses (README.md). */
#define STATUS_OK 0
#define STATUS_FAILED 1
#define STATUS_USAGE 2
#define STATUS_PANIC 3

/* Writes status to the argon exit port; if the VM is still running (another
 * VMM), powers off through ACPI; if that fails too, halts forever. */
void __attribute__((noreturn)) guest_exit(int status);
/* FADT reset register, else i8042, else a triple fault. */
void __attribute__((noreturn)) guest_reboot(void);
/* Exit with STATUS_PANIC. */
void __attribute__((noreturn)) guest_panic(void);

#endif
