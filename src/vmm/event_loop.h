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

#endif
