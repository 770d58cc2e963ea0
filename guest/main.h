/* Boot-time facts other parts report. */
#ifndef GUEST_MAIN_H
#define GUEST_MAIN_H

#include <stdint.h>

extern uint64_t tsc_at_boot;  /* entry.S: first native instruction */
extern uint64_t tsc_at_ready; /* when "argon-guest: ready" was printed */

#endif
