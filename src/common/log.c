#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *log_tag = "argon";
static enum log_level log_threshold = LOG_WARN;
static bool log_off, show_level = true, show_origin = true, plain;
static uint64_t dropped; /* atomic */

/* The destination; swapped under fd_lock, which the write of a line also holds. */
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;

/* Lines waiting for the writer thread: a byte ring of whole lines. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char buf[LOG_BUFFER_SIZE];
	size_t head, len;
	bool running, stopping;
	pthread_t thread;
} ring = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static __thread char *capture_buf;
static __thread size_t capture_len;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warn",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_init(const char *tag, enum log_level level)
{
	log_tag = tag;
	log_threshold = level;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

void log_set_off(bool off)
{
	log_off = off;
}

void log_set_format(bool level, bool origin)
{
	show_level = level;
	show_origin = origin;
}

void log_set_plain(bool on)
{
	plain = on;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

uint64_t log_lines_dropped(void)
{
	return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

int log_set_destination(const char *path, char *err, size_t errlen)
{
	int fd = STDERR_FILENO;
	struct stat st;
	if (path && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	else if (path)
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	pthread_mutex_lock(&fd_lock);
	int old = log_fd;
	log_fd = fd;
	pthread_mutex_unlock(&fd_lock);
	if (old != STDERR_FILENO)
		close(old);
	return 0;
}

/* Writes one line (at most LOG_LINE_MAX + 1 bytes, so a FIFO takes it whole or not
 * at all); a line the destination refuses is dropped and counted. */
static void write_line(const char *line, size_t len)
{
	pthread_mutex_lock(&fd_lock);
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(log_fd, line + done, len - done);
		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	pthread_mutex_unlock(&fd_lock);
}

/* Takes the oldest line out of the ring into out; ring.lock held. */
static size_t ring_take_line(char *out, size_t max)
{
	size_t n = 0;
	while (n < ring.len && n < max) {
		char c = ring.buf[(ring.head + n) % LOG_BUFFER_SIZE];
		out[n++] = c;
		if (c == '\n')
			break;
	}
	ring.head = (ring.head + n) % LOG_BUFFER_SIZE;
	ring.len -= n;
	return n;
}

static void *writer_main(void *arg)
{
	char line[LOG_LINE_MAX + 2];
	pthread_setname_np(pthread_self(), "logger");
	pthread_mutex_lock(&ring.lock);
	for (;;) {
		while (!ring.len && !ring.stopping)
			pthread_cond_wait(&ring.cond, &ring.lock);
		if (!ring.len)
			break;
		size_t n = ring_take_line(line, sizeof(line));
		pthread_mutex_unlock(&ring.lock);
		write_line(line, n);
		pthread_mutex_lock(&ring.lock);
	}
	pthread_mutex_unlock(&ring.lock);
	return NULL;
}

/* Queues a line for the writer; false when it is not running. Never waits for I/O. */
static bool ring_put(const char *line, size_t len)
{
	pthread_mutex_lock(&ring.lock);
	bool running = ring.running;
	if (running && ring.len + len <= LOG_BUFFER_SIZE) {
		size_t tail = (ring.head + ring.len) % LOG_BUFFER_SIZE;
		size_t first = len < LOG_BUFFER_SIZE - tail ? len : LOG_BUFFER_SIZE - tail;
		memcpy(ring.buf + tail, line, first);
		memcpy(ring.buf, line + first, len - first);
		ring.len += len;
		pthread_cond_signal(&ring.cond);
	} else if (running) {
		__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&ring.lock);
	return running;
}

int log_start_writer(void)
{
	pthread_mutex_lock(&ring.lock);
	int err = 0;
	if (!ring.running) {
		ring.stopping = false;
		err = -pthread_create(&ring.thread, NULL, writer_main, NULL);
		ring.running = err == 0;
	}
	pthread_mutex_unlock(&ring.lock);
	return err;
}

void log_stop_writer(void)
{
	pthread_mutex_lock(&ring.lock);
	bool running = ring.running;
	ring.stopping = true;
	ring.running = false; /* new lines are written directly from now on */
	pthread_cond_signal(&ring.cond);
	pthread_mutex_unlock(&ring.lock);
	if (!running)
		return;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += LOG_FLUSH_TIMEOUT_MS / 1000;
	if (pthread_timedjoin_np(ring.thread, NULL, &deadline) != 0)
		pthread_detach(ring.thread); /* a stuck destination: give up on it */
}

void log_capture_begin(char *buf, size_t len)
{
	capture_buf = len ? buf : NULL;
	capture_len = len;
	if (capture_buf)
		capture_buf[0] = '\0';
}

void log_capture_end(void)
{
	capture_buf = NULL;
	capture_len = 0;
}

/* "[   12.345678] tag level: func: ": the parts show_level and show_origin ask for. */
static int format_prefix(char *line, size_t size, enum log_level level, const char *func)
{
	if (plain) {
		int n = snprintf(line, size, "%s: %s", log_tag,
				 level == LOG_ERROR ? "error: " : level == LOG_WARN ? "warning: " : "");
		return n < 0 || (size_t)n >= size ? 0 : n;
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(line, size, "[%5ld.%06ld] %s%s%s:%s%s%s ", (long)ts.tv_sec,
			 ts.tv_nsec / 1000, log_tag, show_level ? " " : "",
			 show_level ? level_names[level] : "", show_origin ? " " : "",
			 show_origin ? func : "", show_origin ? ":" : "");
	return n < 0 || (size_t)n >= size ? 0 : n;
}

void log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}

void log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	bool capture = level == LOG_ERROR && capture_buf && !capture_buf[0];
	if ((level > log_threshold || log_off) && !capture)
		return;
	char line[LOG_LINE_MAX + 2];
	int n = format_prefix(line, LOG_LINE_MAX, level, func);
	vsnprintf(line + n, LOG_LINE_MAX - (size_t)n, fmt, ap);
	if (capture)
		snprintf(capture_buf, capture_len, "%s", line + n);
	if (level > log_threshold || log_off)
		return;
	size_t len = strlen(line);
	line[len++] = '\n';
	line[len] = '\0';
	if (!ring_put(line, len))
		write_line(line, len);
}
