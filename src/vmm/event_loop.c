#include "vmm/event_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"

#define EVENT_LOOP_MAX_HANDLERS 64

struct handler {
	int fd;
	event_fn fn;
	void *opaque;
	bool owns_fd; /* timers: the loop created the fd and closes it */
};

struct event_loop {
	int epfd;
	int stop_fd; /* eventfd: written by event_loop_stop() */
	bool stopping;
	struct handler handlers[EVENT_LOOP_MAX_HANDLERS];
};

int event_loop_create(struct event_loop **out)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	for (int i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		loop->handlers[i].fd = -1;
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

static struct handler *handler_for(struct event_loop *loop, int fd)
{
	for (int i = 0; i < EVENT_LOOP_MAX_HANDLERS; i++)
		if (loop->handlers[i].fd == fd)
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
	*h = (struct handler){ .fd = fd, .fn = fn, .opaque = opaque, .owns_fd = owns_fd };
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
	if (h->owns_fd)
		close(fd);
	h->fd = -1;
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

int event_loop_run(struct event_loop *loop)
{
	while (!__atomic_load_n(&loop->stopping, __ATOMIC_ACQUIRE)) {
		int n = event_loop_run_once(loop, -1);
		if (n < 0)
			return n;
	}
	return 0;
}

void event_loop_stop(struct event_loop *loop)
{
	__atomic_store_n(&loop->stopping, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(loop->stop_fd, &one, sizeof(one)) < 0)
		log_debug("stop eventfd: already signalled");
}
