/* Rate limits for the lines a guest can trigger (see log.h): a window per limiter
 * and one for the whole process, both LOG_LIMIT_WINDOW_MS long. One mutex guards
 * them all: limited lines come from vCPU threads and the event loop at once, and a
 * flood costs one uncontended lock per refused line. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "common/log.h"

#define WINDOW_NS ((uint64_t)LOG_LIMIT_WINDOW_MS * 1000000u)

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_limit process_limit;
static uint64_t suppressed; /* atomic */

static void roll_window(struct log_limit *l, uint64_t now_ns)
{
	if (!l->window_ns || now_ns - l->window_ns >= WINDOW_NS) {
		l->window_ns = now_ns ? now_ns : 1;
		l->lines = 0;
	}
}

bool log_limit_allow(struct log_limit *limit, uint64_t now_ns, uint64_t *held)
{
	pthread_mutex_lock(&limit_lock);
	roll_window(limit, now_ns);
	roll_window(&process_limit, now_ns);
	bool allow = limit->lines < LOG_LIMIT_BURST && process_limit.lines < LOG_LIMIT_PROCESS;
	if (allow) {
		limit->lines++;
		process_limit.lines++;
		*held = limit->held;
		limit->held = 0;
	} else {
		limit->held++;
		__atomic_add_fetch(&suppressed, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&limit_lock);
	return allow;
}

uint64_t log_lines_suppressed(void)
{
	return __atomic_load_n(&suppressed, __ATOMIC_RELAXED);
}

void log_limited(struct log_limit *limit, enum log_level level, const char *func,
		 const char *fmt, ...)
{
	if (level > log_get_level())
		return; /* not logged anyway: nothing to count */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t held;
	if (!log_limit_allow(limit, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
			     &held))
		return;
	char msg[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (held)
		log_msg(level, func, "%s (%llu more like it held back)", msg,
			(unsigned long long)held);
	else
		log_msg(level, func, "%s", msg);
}
