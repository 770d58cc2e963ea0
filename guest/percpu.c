/* Per-vCPU structs and stacks (percpu.h). The stacks live in .noinit: 4 MiB
 * that need no clearing at boot. */
#include "percpu.h"

struct cpu cpus[MAX_CPUS];
uint8_t cpu_stacks[MAX_CPUS][STACK_SIZE] __attribute__((section(".noinit"), aligned(STACK_SIZE)));
