#include "vmm/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/timings.h"

#define EVENT_LOOP_MAX_HANDLERS 64
#define POLL_START_NS 4000 /* the first window after a short sleep; it doubles from here */
#define POLL_IDLE_NS 1000000 /* a sleep this long: the guest is quiet, stop polling */

struct handler {
	int fd;
	event_fn fn;
	void *opaque;
	bool owns_fd; /* timers: the loop created the fd and closes it */
};

struct poller {
	const struct event_poller_ops *ops;
	void *opaque;
};

struct event_loop {
	int epfd;
	int stop_fd; /* eventfd: written by event_loop_stop() */
	bool stopping;
	struct handler handlers[EVENT_LOOP_MAX_HANDLERS];
	struct poller pollers[EVENT_LOOP_MAX_POLLERS];
	unsigned npollers;
	uint64_t poll_max_ns, poll_ns; /* the largest window, and the current one */
	bool worked; /* event_loop_note_work since the loop last looked */
	struct event_loop_poll_stats poll_stats; /* atomics: read by other threads */
	int schedstat_fd; /* the loop thread's /proc schedstat while it runs, or -1 */
};

int event_loop_create(struct event_loop **out)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	for (int i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		loop->handlers[i].fd = -1;
	loop->schedstat_fd = -1;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->stop_fd < 0) {
		int err = -errno;
		event_loop_destroy(loop);
		return err;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stop_fd, &ev) < 0) {
		int err = -errno;
		event_loop_destroy(loop);
		return err;
	}
	*out = loop;
	return 0;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (!loop)
		return;
	for (int i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		if (loop->handlers[i].fd >= 0 && loop->handlers[i].owns_fd)
			close(loop->handlers[i].fd);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->stop_fd >= 0)
		close(loop->stop_fd);
	free(loop);
}

/* A handler's fd is written only by the loop's thread (or before it runs) and read by
 * any thread (event_loop_modify from a vCPU): atomic, so the reader sees a slot's fd
 * either before or after an add or remove, never torn. */
static struct handler *handler_for(struct event_loop *loop, int fd)
{
	for (int i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		if (__atomic_load_n(&loop->handlers[i].fd, __ATOMIC_ACQUIRE) == fd)
			return &loop->handlers[i];
	return NULL;
}

static int add_handler(struct event_loop *loop, int fd, uint32_t events, event_fn fn,
		       void *opaque, bool owns_fd)
{
	struct handler *h = handler_for(loop, -1);
	if (!h)
		return -ENOSPC;
	struct epoll_event ev = { .events = events, .data.ptr = h };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	*h = (struct handler){ .fd = -1, .fn = fn, .opaque = opaque, .owns_fd = owns_fd };
	__atomic_store_n(&h->fd, fd, __ATOMIC_RELEASE); /* published last */
	return 0;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque)
{
	return add_handler(loop, fd, events, fn, opaque, false);
}

int event_loop_modify(struct event_loop *loop, int fd, uint32_t events)
{
	struct handler *h = handler_for(loop, fd);
	if (!h)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.ptr = h };
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int event_loop_remove(struct event_loop *loop, int fd)
{
	struct handler *h = handler_for(loop, fd);
	if (!h)
		return -ENOENT;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	__atomic_store_n(&h->fd, -1, __ATOMIC_RELEASE);
	if (h->owns_fd)
		close(fd);
	return 0;
}

int event_loop_add_timer(struct event_loop *loop, uint64_t period_ns, event_fn fn, void *opaque)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct timespec period = { .tv_sec = (time_t)(period_ns / 1000000000ULL),
				   .tv_nsec = (long)(period_ns % 1000000000ULL) };
	struct itimerspec its = { .it_interval = period, .it_value = period };
	int err = timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
	if (!err)
		err = add_handler(loop, fd, EPOLLIN, fn, opaque, true);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event events[16];
	int n = epoll_wait(loop->epfd, events, 16, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct handler *h = events[i].data.ptr;
		if (!h || h->fd < 0)
			continue; /* the stop eventfd, or a handler removed meanwhile */
		uint64_t expirations;
		if (h->owns_fd && read(h->fd, &expirations, sizeof(expirations)) < 0)
			continue; /* a timer that has not expired after all */
		h->fn(h->opaque, events[i].events);
	}
	return n;
}

int event_loop_add_poller(struct event_loop *loop, const struct event_poller_ops *ops,
			  void *opaque)
{
	if (loop->npollers == EVENT_LOOP_MAX_POLLERS)
		return -ENOSPC;
	loop->pollers[loop->npollers++] = (struct poller){ .ops = ops, .opaque = opaque };
	return 0;
}

void event_loop_set_poll_max(struct event_loop *loop, uint64_t ns)
{
	loop->poll_max_ns = ns;
	if (loop->poll_ns > ns)
		__atomic_store_n(&loop->poll_ns, ns, __ATOMIC_RELAXED);
}

/* Devices may ask from other threads (an API update); the answer is advice there. */
bool event_loop_polling(const struct event_loop *loop)
{
	return loop->npollers && __atomic_load_n(&loop->poll_ns, __ATOMIC_RELAXED);
}

void event_loop_note_work(struct event_loop *loop)
{
	__atomic_store_n(&loop->worked, true, __ATOMIC_RELAXED);
}

static bool take_worked(struct event_loop *loop)
{
	return __atomic_exchange_n(&loop->worked, false, __ATOMIC_RELAXED);
}

static bool stopping(struct event_loop *loop)
{
	return __atomic_load_n(&loop->stopping, __ATOMIC_ACQUIRE);
}

/* The most pressing of the pollers' answers: work, then short host I/O (a reason
 * to keep polling), then long host I/O (a reason to sleep), then nothing. */
static enum poll_found run_pollers(struct event_loop *loop)
{
	static const int rank[] = { [POLL_NOTHING] = 0, [POLL_HOST_BUSY] = 1,
				    [POLL_HOST_IO] = 2, [POLL_WORK] = 3 };
	enum poll_found found = POLL_NOTHING;
	for (unsigned i = 0; i < loop->npollers; i++) {
		const struct poller *p = &loop->pollers[i];
		enum poll_found f = p->ops->poll(p->opaque);
		if (rank[f] > rank[found])
			found = f;
	}
	return found;
}

static bool arm_pollers(struct event_loop *loop)
{
	bool work = false;
	for (unsigned i = 0; i < loop->npollers; i++)
		work |= loop->pollers[i].ops->arm(loop->pollers[i].opaque);
	return work;
}

/* After work for a polled device: pollers and ready fds, without sleeping, until a
 * whole window passes with no such work, or only host I/O is left to wait for.
 * Returns 0 or -errno. */
static int poll_window(struct event_loop *loop)
{
	if (!take_worked(loop))
		return 0;
	uint64_t start = timings_now(), last = start, now = start;
	int n = 0;
	while (!stopping(loop)) {
		enum poll_found found = run_pollers(loop);
		n = event_loop_run_once(loop, 0);
		if (n < 0)
			break;
		now = timings_now();
		if (take_worked(loop) || found == POLL_WORK)
			last = now;
		else if (found == POLL_HOST_BUSY || now - last >= loop->poll_ns)
			break;
		else if (found == POLL_HOST_IO)
			sched_yield(); /* the I/O worker may be waiting for this CPU */
	}
	__atomic_add_fetch(&loop->poll_stats.windows, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&loop->poll_stats.ns, now - start, __ATOMIC_RELAXED);
	return n < 0 ? n : 0;
}

void event_loop_poll_stats(const struct event_loop *loop, struct event_loop_poll_stats *out)
{
	out->windows = __atomic_load_n(&loop->poll_stats.windows, __ATOMIC_RELAXED);
	out->ns = __atomic_load_n(&loop->poll_stats.ns, __ATOMIC_RELAXED);
}

/* Nanoseconds this thread has spent runnable but waiting for a CPU (schedstat's
 * run_delay), or 0 where the kernel does not say. */
static uint64_t run_delay_ns(struct event_loop *loop)
{
	char buf[96];
	unsigned long long cpu, delay;
	ssize_t n = loop->schedstat_fd >= 0 ? pread(loop->schedstat_fd, buf, sizeof(buf) - 1, 0) : -1;
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return sscanf(buf, "%llu %llu", &cpu, &delay) == 2 ? delay : 0;
}

/* After a sleep of slept_ns: a wakeup soon after sleeping means the guest is busy,
 * so the window doubles (up to the largest); a long sleep means it went quiet,
 * and the window closes until wakeups come close together again. The sleep
 * includes the wakeup's own latency (tens of microseconds on a nested host), so
 * "soon" is measured against POLL_IDLE_NS, not against the window; and the time
 * the woken thread then waited for a CPU other work held is not counted, or a
 * busy host would read as a quiet guest. */
static void adapt_window(struct event_loop *loop, uint64_t slept_ns)
{
	uint64_t ns = 0;
	if (slept_ns <= POLL_IDLE_NS)
		ns = loop->poll_ns ? loop->poll_ns * 2 : POLL_START_NS;
	if (ns > loop->poll_max_ns)
		ns = loop->poll_max_ns;
	__atomic_store_n(&loop->poll_ns, ns, __ATOMIC_RELAXED);
}

static int event_loop_serve(struct event_loop *loop)
{
	while (!stopping(loop)) {
		int n = event_loop_polling(loop) ? poll_window(loop) : 0;
		if (n < 0)
			return n;
		if (arm_pollers(loop)) {
			run_pollers(loop); /* work came in as notifications were armed */
			continue;
		}
		uint64_t t0 = loop->npollers ? timings_now() : 0;
		uint64_t waited0 = loop->npollers ? run_delay_ns(loop) : 0;
		n = event_loop_run_once(loop, -1);
		if (n < 0)
			return n;
		if (loop->npollers) {
			uint64_t slept = timings_now() - t0, waited = run_delay_ns(loop) - waited0;
			adapt_window(loop, slept > waited ? slept - waited : 0);
		}
	}
	return 0;
}

int event_loop_run(struct event_loop *loop)
{
	/* Opened here: the path names the thread that opens it. */
	if (loop->npollers)
		loop->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	int err = event_loop_serve(loop);
	if (loop->schedstat_fd >= 0)
		close(loop->schedstat_fd);
	loop->schedstat_fd = -1;
	return err;
}

void event_loop_stop(struct event_loop *loop)
{
	__atomic_store_n(&loop->stopping, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(loop->stop_fd, &one, sizeof(one)) < 0)
		log_debug("stop eventfd: already signalled");
}
