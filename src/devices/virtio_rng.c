/* virtio-rng, the entropy device (virtio 1.2, 5.4): one request queue whose
 * device-writable buffers are filled from the host's getrandom(). Each request gets
 * at most VIRTIO_RNG_MAX_CHAIN_BYTES, work per wakeup is bounded, and an optional
 * rate limiter (bytes and requests) parks a request until its timer fires. */
#include "devices/virtio_rng.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "snapshot/virtio_section.h"
#include "common/util.h"
#include "devices/rate_limiter.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vm.h"

#define RNG_QUEUE_SIZE 64
#define RNG_BUDGET 64 /* requests per wakeup */

struct virtio_rng {
	struct virtio_device *dev; /* set when attached */
	struct rate_limiter rl;
	bool limited;  /* false: never ask the limiter */
	bool blocked;  /* waiting for the timer */
	bool active;   /* DRIVER_OK seen and not reset since */
	bool pending;  /* chain is popped and checked, waiting for the limiter */
	int timer_fd;  /* the limiter's wake-up, and "come back" after a full budget */
	struct virtq_chain chain;
	struct virtio_rng_stats stats;
};

/* One-shot, at least 1 µs away (a zero value would disarm the timer). */
static void rng_arm_timer(struct virtio_rng *rng, uint64_t ns)
{
	ns = MAX(ns, 1000);
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ULL),
						.tv_nsec = (long)(ns % 1000000000ULL) } };
	if (timerfd_settime(rng->timer_fd, 0, &its, NULL) < 0)
		log_warn("virtio-rng: cannot arm the timer: %m");
}

static bool rng_take(struct virtio_rng *rng, uint64_t bytes)
{
	if (!rng->limited)
		return true;
	if (rng->blocked)
		return false;
	uint64_t now = timings_now();
	if (rate_limiter_consume(&rng->rl, bytes, now))
		return true;
	rng->blocked = true;
	rng->stats.throttled++;
	rng_arm_timer(rng, rate_limiter_wait_ns(&rng->rl, bytes, now));
	return false;
}

/* Fills up to want bytes of the chain's writable buffers; returns the bytes filled
 * (fewer only if getrandom fails, which is counted). */
static uint32_t fill_random(struct virtio_rng *rng, uint32_t want)
{
	const struct virtq_chain *c = &rng->chain;
	uint32_t done = 0;
	for (uint32_t i = c->nread; i < (uint32_t)c->nread + c->nwrite && done < want; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		uint32_t n = MIN(b->len, want - done), got = 0;
		while (got < n) {
			/* GRND_NONBLOCK: the event loop never waits for the host's pool. */
			ssize_t r = getrandom(b->hva + got, n - got, GRND_NONBLOCK);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				rng->stats.errors++;
				return done + got;
			}
			got += (uint32_t)r;
		}
		done += n;
	}
	return done;
}

/* Takes the next request into rng->chain: 1 when it is ready, 2 when it was malformed
 * (returned empty at once), 0 when the queue is empty (notifications re-enabled), -1
 * when the ring is broken. 5.4.6: requests are device-writable buffers only. */
static int rng_next(struct virtio_rng *rng)
{
	struct virtq *vq = &rng->dev->queues[0];
	for (;;) {
		int r = virtio_pop(rng->dev, vq, &rng->chain, true, "request queue broken");
		if (r == 0)
			return 0;
		if (r == -EIO)
			return -1;
		if (r == 1 && rng->chain.nread == 0 && rng->chain.write_len > 0)
			return 1;
		rng->stats.errors++;
		virtq_push(vq, rng->chain.head, 0);
		return 2;
	}
}

static void rng_process(struct virtio_rng *rng)
{
	struct virtq *vq = &rng->dev->queues[0];
	bool pushed = false;
	unsigned done = 0;
	while (done < RNG_BUDGET) {
		if (!rng->pending) {
			int r = rng_next(rng);
			if (r <= 0)
				break;
			done++;
			pushed |= r == 2;
			if (r == 2)
				continue;
			rng->pending = true;
		}
		uint32_t want = MIN(rng->chain.write_len, VIRTIO_RNG_MAX_CHAIN_BYTES);
		if (!rng_take(rng, want))
			break;
		uint32_t n = fill_random(rng, want);
		virtq_push(vq, rng->chain.head, n);
		rng->pending = false;
		pushed = true;
		rng->stats.requests++;
		rng->stats.bytes += n;
	}
	if (pushed)
		virtio_notify_used(rng->dev, 0);
	if (done >= RNG_BUDGET && !rng->blocked)
		rng_arm_timer(rng, 0); /* more may wait: come back after the loop's other work */
}

static bool rng_running(const struct virtio_rng *rng)
{
	return rng->active && virtio_device_running(rng->dev);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct virtio_rng *rng = opaque;
	uint64_t expirations;
	if (read(rng->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	pthread_mutex_lock(&rng->dev->lock);
	rng->blocked = false;
	if (rng_running(rng))
		rng_process(rng);
	pthread_mutex_unlock(&rng->dev->lock);
}

static int rng_attach(struct virtio_rng *rng, struct virtio_device *dev)
{
	rng->dev = dev;
	int err = event_loop_add(dev->vm->loop, rng->timer_fd, EPOLLIN, on_timer, rng);
	if (err)
		log_error("virtio-rng: cannot watch its timer: %s", strerror(-err));
	return err;
}

static int rng_activate(struct virtio_device *dev)
{
	struct virtio_rng *rng = dev->backend;
	if (!rng->dev) {
		int err = rng_attach(rng, dev);
		if (err)
			return err;
	}
	rng->active = true;
	return 0;
}

static void rng_reset(struct virtio_device *dev)
{
	struct virtio_rng *rng = dev->backend;
	rng->active = false;
	rng->pending = false; /* the rings are gone with the reset */
}

static void rng_queue_notify(struct virtio_device *dev, uint32_t q)
{
	struct virtio_rng *rng = dev->backend;
	if (rng->active && q == 0)
		rng_process(rng);
}

/* The VM is going away: release the backend with the device. */
static void rng_destroy(struct virtio_device *dev)
{
	virtio_rng_backend_free(dev->backend);
	dev->backend = NULL;
}

const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.config_size = 0, /* 5.4.4: no configuration */
	.activate = rng_activate,
	.reset = rng_reset,
	.queue_notify = rng_queue_notify,
	.destroy = rng_destroy,
};

int virtio_rng_backend_new(const struct entropy_config *cfg, struct virtio_rng **out)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	if (!rng)
		return -ENOMEM;
	rate_limiter_init(&rng->rl, &cfg->rate_limiter, timings_now());
	rng->limited = !rate_limiter_is_unlimited(&rng->rl);
	rng->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (rng->timer_fd < 0) {
		int err = -errno;
		free(rng);
		return err;
	}
	*out = rng;
	return 0;
}

void virtio_rng_backend_free(struct virtio_rng *rng)
{
	if (!rng)
		return;
	close(rng->timer_fd);
	free(rng);
}

void virtio_rng_get_stats(struct virtio_device *dev, struct virtio_rng_stats *out)
{
	struct virtio_rng *rng = dev->backend;
	pthread_mutex_lock(&dev->lock);
	*out = rng->stats;
	pthread_mutex_unlock(&dev->lock);
}

int virtio_rng_create(struct vm *vm, const struct entropy_config *cfg)
{
	struct virtio_rng *rng;
	int err = virtio_rng_backend_new(cfg, &rng);
	if (err) {
		log_error("virtio-rng: %s", strerror(-err));
		return err;
	}
	struct virtio_device *dev;
	err = virtio_mmio_create(vm, &virtio_rng_ops, rng, &dev);
	if (err) {
		virtio_rng_backend_free(rng);
		return err;
	}
	return rng_attach(rng, dev); /* on failure the device lives on with the VM */
}

/* ---- Snapshots ---- */

/* A request waiting for the limiter goes back to the ring (the last one taken,
 * 2.7.13); the limiter's timer, still armed, takes it again. */
void virtio_rng_quiesce(struct virtio_device *dev)
{
	struct virtio_rng *rng = dev->backend;
	pthread_mutex_lock(&dev->lock);
	if (rng && rng->pending) {
		virtq_unpop(&dev->queues[0], 1);
		rng->pending = false;
	}
	pthread_mutex_unlock(&dev->lock);
}

/* After the transport: the limiter's buckets. */
void virtio_rng_save(struct virtio_device *dev, struct snap_writer *w)
{
	struct virtio_rng *rng = dev->backend;
	snap_put_rate_limiter(w, &rng->rl);
}

int virtio_rng_restore(struct virtio_device *dev, struct section_in *in)
{
	struct virtio_rng *rng = dev->backend;
	section_in_rate_limiter(in, "rate_limiter", &rng->rl);
	return in->bad || in->c.failed ? -1 : 0;
}
