#include "vmm/pause.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/rate_limiter.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define KICK_INTERVAL_MS 20 /* re-kick vCPUs that have not parked yet this often */

static bool park_wanted(struct vm_pause *p)
{
	return p->requested && !p->shutdown;
}

/* The event loop's side: parks between two callbacks until resumed. */
static void on_loop_park(void *opaque, uint32_t events)
{
	struct vm_pause *p = opaque;
	uint64_t n;
	if (read(p->loop_fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&p->lock);
	if (park_wanted(p)) {
		p->loop_parked = true;
		pthread_cond_broadcast(&p->cond);
		while (park_wanted(p))
			pthread_cond_wait(&p->cond, &p->lock);
		p->loop_parked = false;
		pthread_cond_broadcast(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
}

int pause_init(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	p->loop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->loop_fd < 0)
		return -errno;
	int err = event_loop_add(vm->loop, p->loop_fd, EPOLLIN, on_loop_park, p);
	if (err)
		close(p->loop_fd);
	p->ready = err == 0;
	return err;
}

void pause_destroy(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	if (!p->ready)
		return;
	if (vm->loop)
		event_loop_remove(vm->loop, p->loop_fd);
	close(p->loop_fd);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	p->ready = false;
}

void pause_point(struct vcpu *vcpu)
{
	struct vm_pause *p = &vcpu->vm->pause;
	if (!__atomic_load_n(&p->requested, __ATOMIC_ACQUIRE))
		return;
	vcpu_complete_pending(vcpu); /* parked state is whole state (snapshots read it) */
	pthread_mutex_lock(&p->lock);
	if (park_wanted(p)) {
		p->parked++;
		pthread_cond_broadcast(&p->cond);
		while (park_wanted(p))
			pthread_cond_wait(&p->cond, &p->lock);
		p->parked--;
	}
	/* Re-armed by the next kick; the stop check in the run loop comes after this. */
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&p->lock);
}

void pause_vcpu_exited(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	pthread_mutex_lock(&p->lock);
	p->exited++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static struct timespec deadline_in(uint64_t ms)
{
	uint64_t t = timings_now() + ms * 1000000ULL;
	return (struct timespec){ .tv_sec = (time_t)(t / 1000000000ULL),
				  .tv_nsec = (long)(t % 1000000000ULL) };
}

/* Waits (p->lock held) until every vCPU has parked or left, kicking the stragglers
 * again every KICK_INTERVAL_MS. Returns 0 or -ETIMEDOUT. */
static int wait_vcpus_parked(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	uint64_t give_up = timings_now() + PAUSE_TIMEOUT_MS * 1000000ULL;
	while (p->parked + p->exited < vm->nvcpus) {
		if (timings_now() >= give_up)
			return -ETIMEDOUT;
		for (int i = 0; i < vm->nvcpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		struct timespec ts = deadline_in(KICK_INTERVAL_MS);
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	return 0;
}

static int wait_loop_parked(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	uint64_t one = 1;
	if (!vm->loop_running)
		return 0;
	if (write(p->loop_fd, &one, sizeof(one)) < 0)
		return -errno;
	struct timespec ts = deadline_in(PAUSE_TIMEOUT_MS);
	while (!p->loop_parked)
		if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
			return -ETIMEDOUT;
	return 0;
}

/* kvm-clock: tell each vCPU's guest it was stopped (no soft-lockup reports), and
 * remember the clock so resume can take it up where it stopped. */
static void save_clock(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	for (int i = 0; i < vm->nvcpus; i++)
		if (ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			log_debug("vCPU %d: KVM_KVMCLOCK_CTRL: %s", i, strerror(errno));
	struct kvm_clock_data clock = { 0 };
	p->clock_saved = ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) == 0;
	p->clock_ns = clock.clock;
	if (!p->clock_saved)
		log_debug("KVM_GET_CLOCK: %s; the guest clock will jump on resume",
			  strerror(errno));
}

static void restore_clock(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	if (!p->clock_saved)
		return;
	struct kvm_clock_data clock = { .clock = p->clock_ns };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		log_warn("KVM_SET_CLOCK: %s; the guest clock jumps by the paused time",
			 strerror(errno));
	else
		log_debug("kvm-clock set back to %llu ns after %llu ms paused",
			  (unsigned long long)p->clock_ns,
			  (unsigned long long)(timings_now() - p->paused_at_ns) / 1000000ULL);
	p->clock_saved = false;
}

/* Lets every parked thread go; p->lock held. */
static void release(struct vm_pause *p)
{
	__atomic_store_n(&p->requested, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->cond);
}

int pause_vm(struct vm *vm, char *err, size_t errlen)
{
	struct vm_pause *p = &vm->pause;
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (!p->paused && !p->shutdown) {
		__atomic_store_n(&p->requested, true, __ATOMIC_SEQ_CST);
		rc = wait_vcpus_parked(vm);
		if (rc)
			snprintf(err, errlen, "the vCPUs did not stop within %d ms", PAUSE_TIMEOUT_MS);
		else if ((rc = wait_loop_parked(vm)) != 0)
			snprintf(err, errlen, "the device event loop did not stop within %d ms",
				 PAUSE_TIMEOUT_MS);
		if (rc) {
			release(p);
		} else {
			save_clock(vm);
			p->paused = true;
			p->paused_at_ns = timings_now();
			p->pauses++;
			/* Devices parked: their rate limiters earn nothing until resume. */
			rate_limiter_clock_stop(p->paused_at_ns);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void pause_request_early(struct vm *vm)
{
	__atomic_store_n(&vm->pause.requested, true, __ATOMIC_SEQ_CST);
}

void pause_resume(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	pthread_mutex_lock(&p->lock);
	if (p->paused) {
		restore_clock(vm);
		uint64_t now = timings_now();
		rate_limiter_clock_start(now); /* before the device loop runs again */
		p->paused_total_ns += now - p->paused_at_ns;
		p->paused = false;
		release(p);
	}
	pthread_mutex_unlock(&p->lock);
}

void pause_shutdown(struct vm *vm)
{
	struct vm_pause *p = &vm->pause;
	pthread_mutex_lock(&p->lock);
	if (p->paused)
		rate_limiter_clock_start(timings_now());
	p->shutdown = true;
	p->paused = false;
	release(p);
	pthread_mutex_unlock(&p->lock);
}

bool pause_is_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause.lock);
	bool paused = vm->pause.paused;
	pthread_mutex_unlock(&vm->pause.lock);
	return paused;
}
