/* The VMM's event loop (Redis ae's size): one epoll, file-descriptor callbacks and
 * periodic timers (timerfd). Runs on its own thread; device backends live here so a
 * vCPU never waits for I/O. */
#ifndef ARGON_VMM_EVENT_LOOP_H
#define ARGON_VMM_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct event_loop;

/* Called with the ready epoll events (EPOLLIN, ...). */
typedef void (*event_fn)(void *opaque, uint32_t events);

int event_loop_create(struct event_loop **out);
void event_loop_destroy(struct event_loop *loop);
/* Watches fd for events; returns 0 or -errno. */
int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque);
/* Changes the events watched on fd: only the kernel's interest changes, so unlike
 * add and remove (the loop's own thread, or before it runs) any thread may call it
 * (a vCPU resetting a device). Returns 0, or -ENOENT when fd is not watched. */
int event_loop_modify(struct event_loop *loop, int fd, uint32_t events);
int event_loop_remove(struct event_loop *loop, int fd);
/* A periodic timer; fn gets EPOLLIN each period. Returns the timer's fd or -errno. */
int event_loop_add_timer(struct event_loop *loop, uint64_t period_ns, event_fn fn, void *opaque);
/* Runs until event_loop_stop(); returns 0 or -errno on an epoll failure. */
int event_loop_run(struct event_loop *loop);
/* Handles the events ready within timeout_ms (-1: wait for one), once; for tests
 * and for callers that drive the loop themselves. Returns events handled or -errno. */
int event_loop_run_once(struct event_loop *loop, int timeout_ms);
/* Safe from any thread. */
void event_loop_stop(struct event_loop *loop);

/* Adaptive busy polling, for devices whose guest can be told not to notify
 * (virtio 1.2, 2.7.10): after work, event_loop_run keeps looking for more (pollers,
 * then fds without sleeping) for a window before it sleeps in epoll. The window
 * grows while wakeups come soon after sleeping and drops to nothing when the guest
 * goes quiet, so an idle VM costs no CPU. On hosts where a wakeup crosses CPUs
 * through an exit (a nested VM: tens of microseconds), it saves that wakeup and
 * the guest's notification on every request of a busy queue. */
enum poll_found {
	POLL_NOTHING, /* nothing to do and nothing in flight: the guest is next */
	POLL_WORK,    /* did some work */
	/* Nothing to do while host I/O workers have short work of ours: the loop polls
	 * on but yields its CPU to them between looks. */
	POLL_HOST_IO,
	/* Nothing but host I/O that takes longer than a window (a big write on an I/O
	 * worker): the loop sleeps until it completes instead of taking the CPU the
	 * worker could run on (on a two-CPU host the guest's vCPU holds the other). */
	POLL_HOST_BUSY,
};

struct event_poller_ops {
	/* Does the work it finds without waiting. */
	enum poll_found (*poll)(void *opaque);
	/* The loop is about to sleep: ask the guest to notify again. True when work
	 * arrived meanwhile (the loop polls once more instead of sleeping). */
	bool (*arm)(void *opaque);
};

#define EVENT_LOOP_MAX_POLLERS 16

/* Before the loop runs; a poller stays until the loop is destroyed (devices go with
 * their VM's loop). Returns 0 or -ENOSPC. */
int event_loop_add_poller(struct event_loop *loop, const struct event_poller_ops *ops,
			  void *opaque);
/* The largest window; 0 turns polling off (pollers are still armed before sleeping). */
void event_loop_set_poll_max(struct event_loop *loop, uint64_t ns);
/* True while the loop will poll after the current callback: a poller may then leave
 * the guest's notifications off, since arm() runs before the loop sleeps. */
bool event_loop_polling(const struct event_loop *loop);
/* A polled device did work in a callback (a notification, a completion): the loop
 * polls after it. Wakeups that did no such work (a network frame, a timer) do not
 * open a window, so other devices' traffic costs no spinning. */
void event_loop_note_work(struct event_loop *loop);

/* What polling cost, for metrics: windows opened and time spent in them (the device
 * thread's CPU that sleeping would have left to others). Safe from any thread. */
struct event_loop_poll_stats {
	uint64_t windows, ns;
};
void event_loop_poll_stats(const struct event_loop *loop, struct event_loop_poll_stats *out);

#endif
