/* One small logging API for every argon process: a per-process tag, a level,
 * timestamps, and the calling function as prefix.
 *
 * Lines go to stderr or to a file or FIFO (log_set_destination). Once a process
 * starts the writer thread (log_start_writer; argon-vmm does), log_msg never waits
 * for the destination: lines go into a bounded buffer of LOG_BUFFER_SIZE bytes that
 * the thread drains, and a line that does not fit is dropped and counted
 * (log_lines_dropped), so a slow or closed log destination never blocks a vCPU. */
#ifndef ARGON_COMMON_LOG_H
#define ARGON_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define LOG_LINE_MAX 1024		/* longer lines are cut */
#define LOG_BUFFER_SIZE (256 * 1024)	/* lines waiting for the writer thread */
#define LOG_FLUSH_TIMEOUT_MS 1000	/* log_stop_writer waits at most this long */

/* tag names the process in every line ("argon-vmm"); lines above level are dropped. */
void log_init(const char *tag, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Drops every line, errors too (Firecracker's "Off"); false restores the level. */
void log_set_off(bool off);
/* Parses "error", "warn", "info", "debug"; returns -1 on anything else. */
int log_level_parse(const char *name);
/* Which parts of the prefix appear: the level name and the function (both on by
 * default). The timestamp (CLOCK_MONOTONIC seconds) and the tag always do. */
void log_set_format(bool show_level, bool show_origin);
/* Lines for people instead: "tag: error: message", "tag: warning: message", "tag:
 * message" (no timestamp, no function); show_level and show_origin are ignored. */
void log_set_plain(bool plain);

/* Sends lines to path: a FIFO is opened read-write and non-blocking (no reader
 * needed; when it is full lines are dropped and counted); anything else is created
 * (0600) if missing and appended to. NULL goes back to stderr. Returns 0, or -errno
 * with a message naming the path in err. */
int log_set_destination(const char *path, char *err, size_t errlen);

/* Starts the writer thread (see above). Returns 0 or -errno. */
int log_start_writer(void);
/* Writes out what is buffered, waiting at most LOG_FLUSH_TIMEOUT_MS for the
 * destination, and stops the thread; later lines are written directly. */
void log_stop_writer(void);
/* Lines lost: the buffer was full, or the destination refused them. */
uint64_t log_lines_dropped(void);

/* Until log_capture_end, the first error this thread logs is also copied (message
 * only, no prefix) into buf, so a caller can report why an action failed. */
void log_capture_begin(char *buf, size_t len);
void log_capture_end(void);

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* What a guest can trigger at will (a refused register write, a broken ring) is
 * logged through a limiter, one per device and reason, kept for the VM's lifetime
 * (a device reset must not renew it): each lets LOG_LIMIT_BURST lines through per
 * LOG_LIMIT_WINDOW_MS, and all limiters of the process together LOG_LIMIT_PROCESS
 * lines per window, so no guest writes more than a few lines a second to the host's
 * log however many devices it floods. The next line a limiter lets through says how
 * many it held back; every held line is counted (log_lines_suppressed, a metric).
 * Zero-initialised is ready. */
#define LOG_LIMIT_WINDOW_MS 1000
#define LOG_LIMIT_BURST 3
#define LOG_LIMIT_PROCESS 5
struct log_limit {
	uint64_t window_ns; /* CLOCK_MONOTONIC start of the limiter's window */
	uint32_t lines;	    /* let through in that window */
	uint64_t held;	    /* held back since the last line let through */
};
void log_limited(struct log_limit *limit, enum log_level level, const char *func,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The decision alone, at time now_ns (tests): true to log, with *held set to the
 * lines held back before this one. */
bool log_limit_allow(struct log_limit *limit, uint64_t now_ns, uint64_t *held);
/* Lines held back by every limiter of the process so far. */
uint64_t log_lines_suppressed(void);

#define log_warn_limited(limit, ...) log_limited(limit, LOG_WARN, __func__, __VA_ARGS__)

#define log_error(...) log_msg(LOG_ERROR, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __func__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __func__, __VA_ARGS__)

#endif
