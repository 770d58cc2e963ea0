/* Bringing up the other vCPUs and giving them work. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include "percpu.h"

extern int cpus_online;

/* Starts every enabled vCPU of the MADT other than the caller (the BSP), one
 * after the other; reports and skips any that does not come up in time. */
void smp_boot(uint32_t bsp_apic_id);

/* Runs fn(arg) on vCPU index cpu (not the caller) and returns at once. */
void smp_call(int cpu, void (*fn)(void *), void *arg);
/* Waits until vCPU cpu has finished its work. */
void smp_wait(int cpu);

#endif
