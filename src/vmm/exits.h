/* vCPU exit dispatch: one handler per KVM exit reason, in a table, and a counter per
 * reason (summed across vCPUs for metrics and the exit report). */
#ifndef ARGON_VMM_EXITS_H
#define ARGON_VMM_EXITS_H

#include <stdint.h>
#include <stdio.h>

#define EXIT_REASON_MAX 64

struct exit_counters {
	uint64_t by_reason[EXIT_REASON_MAX]; /* updated atomically */
};

struct vcpu;

/* Handles the exit now in vcpu->run. Returns 0 to re-enter the guest, or an
 * exit status (enum exit_status) > 0 when the VM must stop. */
int exits_handle(struct vcpu *vcpu);

/* "IO", "MMIO", "SHUTDOWN", ... or "UNKNOWN". */
const char *exit_reason_name(uint32_t reason);

/* Writes "exits: IO=12 MMIO=3 ..." (non-zero reasons only). */
void exits_print(const struct exit_counters *c, FILE *out);

#endif
