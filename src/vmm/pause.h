/* Pausing a running VM: every vCPU is kicked out of KVM_RUN (immediate_exit and the
 * kick signal) and parks at the top of its run loop, after it has finished the exit
 * it was handling; then the event loop parks between two callbacks, so no device
 * takes new queue work; then kvm-clock is saved. Resuming sets kvm-clock back to the
 * saved value, so the guest's clock does not jump by the time spent paused (QEMU's
 * stop/cont behaviour), and releases everything. The devices' rate limiters count no
 * paused time either (rate_limiter_clock_stop/start): their buckets do not fill while
 * the VM is paused, so a pause cannot be used to save up a burst.
 *
 * What a guest sees of a pause: kvm-clock (Linux's clocksource "kvm-clock", argon-guest's
 * clock) stands still while paused and goes on from where it stopped; with
 * KVM_KVMCLOCK_CTRL a Linux guest is told it was stopped, so its soft-lockup watchdog
 * stays quiet. The TSC is not held: it keeps counting while paused, so a Linux guest
 * whose clocksource is "tsc" (Linux prefers it to kvm-clock when CPUID says the TSC is
 * invariant) sees its monotonic clock jump by the pause, as under QEMU's stop/cont.
 * Either way CLOCK_REALTIME falls behind the host by the paused time until NTP (or
 * anything that sets the time) corrects it. */
#ifndef ARGON_VMM_PAUSE_H
#define ARGON_VMM_PAUSE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;

#define PAUSE_TIMEOUT_MS 2000 /* a vCPU or the event loop must park within this */

struct vm_pause {
	bool ready; /* pause_init succeeded */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool requested;	   /* park while set; read without the lock on the hot path */
	bool shutdown;	   /* teardown: nothing parks any more */
	bool paused;	   /* everything parked and the clock saved */
	int parked;	   /* vCPUs parked now */
	int exited;	   /* vCPU threads that left their run loop */
	bool loop_parked;
	int loop_fd;	   /* eventfd watched by the VM's event loop: park there */
	bool clock_saved;
	uint64_t clock_ns; /* kvm-clock when paused */
	uint64_t paused_at_ns, paused_total_ns, pauses;
};

/* Sets up pausing for vm (after vm_create, before the vCPUs and the event loop
 * start). Returns 0 or -errno. */
int pause_init(struct vm *vm);
void pause_destroy(struct vm *vm);

/* Called by each vCPU thread at the top of its run loop: parks while a pause is
 * requested. Cheap when none is. */
void pause_point(struct vcpu *vcpu);
/* Called by a vCPU thread when it leaves its run loop for good. */
void pause_vcpu_exited(struct vm *vm);

/* Parks the vCPUs and the event loop and saves kvm-clock; pausing a paused VM does
 * nothing. Returns 0, or -ETIMEDOUT (with everything released again) and a message in
 * err. */
int pause_vm(struct vm *vm, char *err, size_t errlen);
/* Makes threads that start after this park before their first KVM_RUN (a VM loaded
 * from a snapshot to stay paused); pause_vm then completes the pause. */
void pause_request_early(struct vm *vm);
/* Restores kvm-clock and releases the vCPUs and the event loop; resuming a running
 * VM does nothing. */
void pause_resume(struct vm *vm);
/* Teardown: releases everything and lets nothing park again. */
void pause_shutdown(struct vm *vm);
bool pause_is_paused(struct vm *vm);

#endif
