/* The event loop's adaptive polling: an idle loop sleeps without polling, a polled
 * device's activity opens a polling window that closes again when the activity
 * stops, other devices' traffic and long host I/O keep the loop asleep, work that
 * arrives while the pollers re-arm is taken before the loop sleeps, and a loop told
 * not to poll never does. The loop runs on its own thread, as in argon-vmm; every
 * wait has a deadline. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/event_loop.h"

#define DEADLINE_MS 5000

struct probe {
	int polls, arms, events;
	int work_at_arm; /* arm() reports this much new work, once each */
	int work;	 /* work poll() finds and takes */
	int host_busy;	 /* nonzero: poll() reports long host I/O in flight */
};

struct fixture {
	struct event_loop *loop;
	struct probe p;
	int fd;
	bool fd_is_polled_device; /* its events note work, as virtio-blk's do */
	pthread_t thread;
};

static int load(const int *v)
{
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

static void add(int *v, int n)
{
	__atomic_add_fetch(v, n, __ATOMIC_SEQ_CST);
}

static enum poll_found probe_poll(void *opaque)
{
	struct probe *p = opaque;
	add(&p->polls, 1);
	if (load(&p->work) == 0)
		return load(&p->host_busy) ? POLL_HOST_BUSY : POLL_NOTHING;
	add(&p->work, -1);
	return POLL_WORK;
}

static bool probe_arm(void *opaque)
{
	struct probe *p = opaque;
	add(&p->arms, 1);
	if (load(&p->work_at_arm) == 0)
		return false;
	add(&p->work_at_arm, -1);
	add(&p->work, 1);
	return true;
}

static const struct event_poller_ops probe_ops = { .poll = probe_poll, .arm = probe_arm };

static void on_event(void *opaque, uint32_t events)
{
	struct fixture *f = opaque;
	uint64_t n;
	if (read(f->fd, &n, sizeof(n)) != sizeof(n))
		return;
	add(&f->p.events, 1);
	if (f->fd_is_polled_device)
		event_loop_note_work(f->loop);
}

static void *run(void *opaque)
{
	struct fixture *f = opaque;
	return (void *)(intptr_t)event_loop_run(f->loop);
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };
	nanosleep(&ts, NULL);
}

static struct fixture *start_with(uint64_t poll_max_ns, int work_at_arm, bool polled_device)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->fd_is_polled_device = polled_device;
	assert_int_equal(event_loop_create(&f->loop), 0);
	event_loop_set_poll_max(f->loop, poll_max_ns);
	f->p.work_at_arm = work_at_arm;
	f->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(f->fd >= 0);
	assert_int_equal(event_loop_add(f->loop, f->fd, EPOLLIN, on_event, f), 0);
	assert_int_equal(event_loop_add_poller(f->loop, &probe_ops, &f->p), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, run, f), 0);
	return f;
}

static struct fixture *start(uint64_t poll_max_ns, int work_at_arm)
{
	return start_with(poll_max_ns, work_at_arm, true);
}

static void stop(struct fixture *f)
{
	void *rc;
	event_loop_stop(f->loop);
	assert_int_equal(pthread_join(f->thread, &rc), 0);
	assert_int_equal((intptr_t)rc, 0);
	event_loop_destroy(f->loop);
	close(f->fd);
	free(f);
}

static void signal_fd(struct fixture *f)
{
	uint64_t one = 1;
	assert_int_equal(write(f->fd, &one, sizeof(one)), sizeof(one));
}

/* Waits until *v reaches at least want; false after DEADLINE_MS. */
static bool wait_for(const int *v, int want)
{
	for (int ms = 0; ms < DEADLINE_MS; ms++) {
		if (load(v) >= want)
			return true;
		sleep_us(1000);
	}
	return false;
}

/* Events 100 us apart for about 20 ms: a busy guest. */
static void be_busy(struct fixture *f)
{
	for (int i = 0; i < 200; i++) {
		signal_fd(f);
		sleep_us(100);
	}
	assert_true(wait_for(&f->p.events, 1));
}

static void an_idle_loop_sleeps_without_polling(void **state)
{
	struct fixture *f = start(50000, 0);
	assert_true(wait_for(&f->p.arms, 1)); /* armed once, then asleep */
	sleep_us(50000);
	assert_int_equal(load(&f->p.polls), 0);
	assert_int_equal(load(&f->p.arms), 1);
	stop(f);
}

static void activity_opens_a_window_that_closes_when_it_stops(void **state)
{
	struct fixture *f = start(50000, 0);
	be_busy(f);
	assert_true(load(&f->p.polls) > 0); /* wakeups 100 us apart: it polled */
	sleep_us(20000); /* far longer than the 50 us window */
	int polls = load(&f->p.polls), arms = load(&f->p.arms);
	sleep_us(50000);
	assert_int_equal(load(&f->p.polls), polls); /* asleep: no CPU for an idle guest */
	assert_int_equal(load(&f->p.arms), arms);
	stop(f);
}

static void work_found_while_arming_is_taken_before_sleeping(void **state)
{
	struct fixture *f = start(0, 2); /* no polling: only the re-arm path */
	assert_true(wait_for(&f->p.arms, 3)); /* work, work, then nothing: sleep */
	assert_true(wait_for(&f->p.polls, 2));
	sleep_us(20000);
	assert_int_equal(load(&f->p.work), 0); /* both taken */
	assert_int_equal(load(&f->p.arms), 3);
	assert_int_equal(load(&f->p.polls), 2);
	stop(f);
}

/* Wakeups for a device that is not polled (a network frame, a timer) open no
 * window: their traffic costs no spinning. */
static void other_devices_traffic_opens_no_window(void **state)
{
	struct fixture *f = start_with(50000, 0, false);
	be_busy(f);
	assert_int_equal(load(&f->p.polls), 0);
	stop(f);
}

/* While only long host I/O is pending the loop sleeps at once rather than spinning
 * through its window: one poll per wakeup, not hundreds. */
static void a_loop_waiting_on_the_host_sleeps(void **state)
{
	struct fixture *f = start(50000, 0);
	be_busy(f); /* the window is open */
	__atomic_store_n(&f->p.host_busy, 1, __ATOMIC_SEQ_CST);
	sleep_us(5000);
	int polls = load(&f->p.polls), events = load(&f->p.events);
	be_busy(f);
	int wakeups = load(&f->p.events) - events;
	assert_true(load(&f->p.polls) - polls <= 2 * (wakeups + 1));
	stop(f);
}

static void a_loop_told_not_to_poll_never_polls(void **state)
{
	struct fixture *f = start(0, 0);
	be_busy(f);
	assert_int_equal(load(&f->p.polls), 0);
	assert_true(load(&f->p.arms) >= load(&f->p.events)); /* re-armed before each sleep */
	stop(f);
}

static void pollers_are_bounded(void **state)
{
	struct event_loop *loop;
	struct probe p[EVENT_LOOP_MAX_POLLERS + 1];
	assert_int_equal(event_loop_create(&loop), 0);
	for (int i = 0; i < EVENT_LOOP_MAX_POLLERS; i++)
		assert_int_equal(event_loop_add_poller(loop, &probe_ops, &p[i]), 0);
	assert_int_equal(event_loop_add_poller(loop, &probe_ops, &p[EVENT_LOOP_MAX_POLLERS]),
			 -ENOSPC);
	assert_false(event_loop_polling(loop)); /* nothing ran yet: the window is shut */
	event_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_idle_loop_sleeps_without_polling),
		cmocka_unit_test(activity_opens_a_window_that_closes_when_it_stops),
		cmocka_unit_test(work_found_while_arming_is_taken_before_sleeping),
		cmocka_unit_test(other_devices_traffic_opens_no_window),
		cmocka_unit_test(a_loop_waiting_on_the_host_sleeps),
		cmocka_unit_test(a_loop_told_not_to_poll_never_polls),
		cmocka_unit_test(pollers_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
