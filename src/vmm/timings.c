#include "vmm/timings.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

uint64_t timings_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t timings_process_start(void)
{
	/* /proc's start time counts in 10 ms ticks, too coarse for a boot measured in
	 * milliseconds; a launcher (the argon CLI, a benchmark) passes its own clock
	 * reading from just before exec instead. Otherwise main()'s entry is the start. */
	const char *env = getenv("ARGON_START_NS");
	if (env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 10);
		if (*end == '\0' && v > 0 && v <= timings_now())
			return v;
	}
	return timings_now();
}

void timings_mark(uint64_t *slot)
{
	uint64_t zero = 0;
	uint64_t now = timings_now();
	__atomic_compare_exchange_n(slot, &zero, now, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static double ms_since(uint64_t start, uint64_t t)
{
	return t && t >= start ? (double)(t - start) / 1e6 : -1.0;
}

void timings_print(const struct timings *t, int fd)
{
	dprintf(fd,
		"timings: kvm_ready %.3f ms, first_instruction %.3f ms, first_byte %.3f ms, "
		"exit %.3f ms (from process start; -1 = did not happen)\n",
		ms_since(t->process_start, t->kvm_ready), ms_since(t->process_start, t->first_run),
		ms_since(t->process_start, t->first_byte), ms_since(t->process_start, t->exit));
}
