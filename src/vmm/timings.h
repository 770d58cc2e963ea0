/* Boot timings: process start -> KVM ready -> first guest instruction -> first byte
 * from the guest -> exit, in nanoseconds of CLOCK_MONOTONIC. */
#ifndef ARGON_VMM_TIMINGS_H
#define ARGON_VMM_TIMINGS_H

#include <stdint.h>

struct timings {
	uint64_t process_start;
	uint64_t kvm_ready;
	uint64_t first_run;
	uint64_t first_byte;
	uint64_t exit;
};

uint64_t timings_now(void);
/* Process start: $ARGON_START_NS (CLOCK_MONOTONIC ns, set by a launcher just before
 * exec) when present and sane, else now. */
uint64_t timings_process_start(void);
/* Records t into *slot once: later calls keep the first value. Thread-safe. */
void timings_mark(uint64_t *slot);
/* One line: "timings: kvm_ready 1.234 ms first_instruction ... first_byte ... exit ...". */
void timings_print(const struct timings *t, int fd);

#endif
