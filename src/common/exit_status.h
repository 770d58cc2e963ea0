/* Exit statuses of argon-vmm and argon, in one place; the README lists them too. */
#ifndef ARGON_COMMON_EXIT_STATUS_H
#define ARGON_COMMON_EXIT_STATUS_H

enum exit_status {
	/* Guest powered off or rebooted, or the guest asked for status 0. */
	EXIT_GUEST_OK = 0,
	/* 1..63: a status the guest reported through the argon exit port (argon-guest
	 * commands use these: 1 command failed, 2 unknown command or bad arguments). */
	EXIT_GUEST_MAX = 63,
	EXIT_USAGE = 64,	  /* bad command line or configuration value */
	EXIT_IMAGE = 65,	  /* kernel or initrd image invalid, or does not fit */
	EXIT_NO_FILE = 66,	  /* a named file cannot be opened */
	/* a snapshot (state or memory file) is invalid, damaged, or does not fit this host
	 * (another TSC frequency, a PVM snapshot on a host without PVM, ...) */
	EXIT_SNAPSHOT = 67,
	EXIT_NO_KVM = 69,	  /* /dev/kvm missing, no permission, or a needed capability missing */
	EXIT_INTERNAL = 70,	  /* argon-vmm bug or unexpected host failure */
	EXIT_HOST_RESOURCE = 71,  /* the host cannot provide memory, threads or files */
	EXIT_TRIPLE_FAULT = 80,	  /* the guest triple-faulted (KVM_EXIT_SHUTDOWN) */
	EXIT_KVM_INTERNAL = 81,	  /* KVM_EXIT_INTERNAL_ERROR, e.g. an emulation failure */
	EXIT_UNHANDLED = 82,	  /* an exit reason argon-vmm does not handle */
	EXIT_KVM_FAIL_ENTRY = 83, /* KVM_EXIT_FAIL_ENTRY: the hardware refused the vCPU state */
	EXIT_SIGNAL = 84,	  /* stopped by SIGINT/SIGTERM from the host */
};

#endif
