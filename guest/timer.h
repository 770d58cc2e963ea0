/* Time: the TSC frequency and a periodic LAPIC timer on the boot vCPU. */
#ifndef GUEST_TIMER_H
#define GUEST_TIMER_H

#include <stdint.h>

#define TIMER_HZ 100 /* each tick is an exit or two; 100 Hz keeps benchmarks quiet */

extern uint64_t tsc_khz;		 /* 0 when no source worked */
extern const char *tsc_source;		 /* "kvm-clock", "cpuid-0x40000010", ... */
extern volatile uint64_t timer_ticks;	 /* periodic ticks on the boot vCPU */

/* Finds the TSC frequency (kvm-clock, CPUID 0x40000010, 0x15, 0x16, else the
 * PIT). */
void tsc_init(void);

/* Calibrates the LAPIC timer against the TSC and starts it periodic at
 * TIMER_HZ on this vCPU. */
void timer_start(void);

uint64_t tsc_to_ns(uint64_t cycles);

/* The guest's clock, in ns: kvm-clock when the host offers it (it stands still while
 * the VM is paused and goes on from there, as a Linux guest's clock does), else the
 * TSC scaled by tsc_khz. clock_uptime_ns counts from tsc_init; clock_source names
 * which ("kvm-clock" or "tsc"). */
uint64_t clock_ns(void);
uint64_t clock_uptime_ns(void);
const char *clock_source(void);

/* tsc_khz, or 4 GHz when unknown: timeouts stay finite, if long. */
uint64_t tsc_khz_upper(void);
void udelay(uint64_t us);

#endif
