/* virtio-vsock device (virtio 1.2, 5.10) entirely in user space, in Firecracker's
 * hybrid model: guest streams end on unix sockets (see devices/vsock.h for the
 * protocol and the limits). This file is the device: its ops table, configuration,
 * construction, and the dispatch of its own epoll set, which the VM's event loop
 * watches as one fd. Packets: vsock_tx.c (guest -> host), vsock_rx.c (host -> guest);
 * streams: vsock_conn.c; host sockets: vsock_uds.c; wire format: vsock_packet.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_vsock.h"
#include "devices/vsock.h"
#include "snapshot/virtio_section.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vm.h"

#define VSOCK_PORT_SUFFIX_MAX 11 /* "_4294967295" */
#define VSOCK_SUN_PATH_MAX 107	 /* sizeof(sockaddr_un.sun_path) - 1 */

void vsock_schedule(struct vsock *vs)
{
	uint64_t one = 1;
	if (write(vs->kick_fd, &one, sizeof(one)) < 0)
		log_debug("vsock: kick: %m"); /* already pending */
}

void vsock_pass_begin(struct vsock *vs)
{
	vs->pass_depth++;
}

void vsock_used(struct vsock *vs, uint32_t q)
{
	vs->used_pending |= 1u << q;
}

/* Completions are pushed as they happen but signalled once per pass: one
 * used-buffer interrupt for all queues, raised only when one of them asked for it
 * (EVENT_IDX, 2.7.10). */
void vsock_pass_end(struct vsock *vs)
{
	if (--vs->pass_depth)
		return;
	vsock_conn_reap(vs); /* nothing walks a connection any more */
	uint32_t pending = vs->used_pending;
	vs->used_pending = 0;
	if (pending && vs->dev)
		virtio_notify_used_queues(vs->dev, pending);
}

void vsock_timer_update(struct vsock *vs)
{
	bool want = vs->ndeadlines || vs->listen_paused;
	if (want == vs->timer_armed || vs->timer_fd < 0)
		return;
	struct itimerspec its = { 0 };
	if (want)
		its.it_interval = its.it_value =
			(struct timespec){ .tv_nsec = VSOCK_TIMER_PERIOD_MS * 1000000L };
	if (timerfd_settime(vs->timer_fd, 0, &its, NULL) == 0)
		vs->timer_armed = want;
}

static void on_timer(struct vsock *vs)
{
	uint64_t expirations;
	if (read(vs->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	if (vs->listen_paused) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = VSOCK_TAG_LISTEN };
		epoll_ctl(vs->epfd, EPOLL_CTL_MOD, vs->listen_fd, &e);
		vs->listen_paused = false;
	}
	vsock_expire(vs, timings_now());
	vsock_timer_update(vs);
}

#define VSOCK_EVENT_TRANSPORT_RESET 0 /* 5.10.6.6: le32 id */

/* 5.10.6.6: after a restore the guest's streams have no host side any more (they are
 * not saved, as in Firecracker): one TRANSPORT_RESET on the event queue makes the
 * driver drop them all, so nothing waits on a stream that is gone; new connections
 * work at once. Sent as soon as the driver has an event buffer posted. */
static void send_reset_event(struct vsock *vs)
{
	if (!vs->reset_event_owed || !vsock_queues_usable(vs))
		return;
	struct virtq *vq = &vs->dev->queues[VSOCK_QUEUE_EVENT];
	int r = virtio_pop(vs->dev, vq, &vs->rx_extra, true, "vsock event ring broken");
	if (r == 0 || r == -EIO)
		return;
	uint8_t ev[4] = { VSOCK_EVENT_TRANSPORT_RESET, 0, 0, 0 };
	uint32_t n = r > 0 && vs->rx_extra.write_len >= sizeof(ev)
			     ? virtq_chain_write(&vs->rx_extra, 0, ev, sizeof(ev)) : 0;
	virtq_push(vq, vs->rx_extra.head, n);
	vsock_used(vs, VSOCK_QUEUE_EVENT);
	vs->reset_event_owed = n != sizeof(ev); /* a bad buffer: the next one */
	if (!vs->reset_event_owed)
		log_info("vsock: restored; the guest was told its streams are reset");
}

static void on_kick(struct vsock *vs)
{
	uint64_t count;
	if (read(vs->kick_fd, &count, sizeof(count)) < 0)
		return;
	send_reset_event(vs);
	vsock_tx_process(vs); /* also fills rx */
}

static void dispatch(struct vsock *vs, const struct epoll_event *ev)
{
	switch ((uint32_t)ev->data.u64) {
	case VSOCK_TAG_LISTEN:
		vsock_accept_all(vs);
		break;
	case VSOCK_TAG_TIMER:
		on_timer(vs);
		break;
	case VSOCK_TAG_KICK:
		on_kick(vs);
		break;
	default: {
		/* The tag's generation tells a live stream from one freed earlier in this
		 * batch whose slot was reused. */
		struct vsock_conn *c = vsock_conn_by_tag(vs, ev->data.u64);
		if (c)
			vsock_conn_on_events(vs, c, ev->events);
		break;
	}
	}
}

void vsock_poll(struct vsock *vs)
{
	pthread_mutex_t *lock = vs->dev ? &vs->dev->lock : NULL;
	if (lock)
		pthread_mutex_lock(lock);
	vsock_pass_begin(vs);
	struct epoll_event ev[64];
	int n = epoll_wait(vs->epfd, ev, 64, 0);
	for (int i = 0; i < n; i++)
		dispatch(vs, &ev[i]);
	vsock_rx_process(vs);
	vsock_pass_end(vs);
	if (lock)
		pthread_mutex_unlock(lock);
}

void virtio_vsock_get_stats(struct virtio_device *dev, struct vsock_stats *out,
			    uint32_t *open_streams)
{
	struct vsock *vs = dev->backend;
	pthread_mutex_lock(&dev->lock);
	*out = vs->stats;
	*open_streams = vs->nconns;
	pthread_mutex_unlock(&dev->lock);
}

static void on_epoll(void *opaque, uint32_t events)
{
	vsock_poll(opaque);
}

/* virtio 1.2, 5.10.3: stream sockets only. */
static uint64_t vsock_features(struct virtio_device *dev)
{
	return 1ULL << VSOCK_F_STREAM;
}

/* 5.10.4: struct virtio_vsock_config { le64 guest_cid; }. */
static void vsock_read_config(struct virtio_device *dev, uint32_t offset, uint8_t *data,
			      uint32_t len)
{
	const struct vsock *vs = dev->backend;
	uint8_t cfg[VSOCK_CONFIG_SIZE];
	for (int i = 0; i < VSOCK_CONFIG_SIZE; i++)
		cfg[i] = (uint8_t)(vs->guest_cid >> (8 * i));
	if (offset < VSOCK_CONFIG_SIZE && len <= VSOCK_CONFIG_SIZE - offset)
		memcpy(data, cfg + offset, len);
}

static int vsock_activate(struct virtio_device *dev)
{
	struct vsock *vs = dev->backend;
	vs->dev = dev;
	vs->active = true;
	vsock_schedule(vs); /* host connections may be waiting to send their REQUEST */
	return 0;
}

/* The driver reset the device: every stream is gone (the host sides see EOF); the
 * listener stays, so host processes can connect again once the driver is back. */
static void vsock_reset(struct virtio_device *dev)
{
	struct vsock *vs = dev->backend;
	vsock_conn_free_all(vs);
	vs->active = false;
	vs->rx_held = false;
	vs->tx_stalled = false;
	vs->used_pending = 0;
	vs->txb = (struct vsock_tx_batch){ 0 }; /* its chains went with the queues */
	vs->rxb.n = 0;
}

static void vsock_queue_notify(struct virtio_device *dev, uint32_t q)
{
	struct vsock *vs = dev->backend;
	vsock_pass_begin(vs);
	if (q == VSOCK_QUEUE_TX)
		vsock_tx_process(vs);
	else if (q == VSOCK_QUEUE_RX)
		vsock_rx_process(vs); /* new buffers: what waited can go */
	else
		send_reset_event(vs); /* event buffers: the only event argon sends */
	vsock_pass_end(vs);
}

/* ---- snapshots ---- */

/* The VM is paused between two passes: gathered tx went out at the end of its pass;
 * an rx chain held for the next packet goes back to the ring (it was the last one
 * taken), so the rings say everything. */
void virtio_vsock_quiesce(struct virtio_device *dev)
{
	struct vsock *vs = dev->backend;
	pthread_mutex_lock(&dev->lock);
	if (vs && vs->txb.c)
		vsock_tx_flush(vs);
	if (vs && vs->rx_held) {
		virtq_unpop(&dev->queues[VSOCK_QUEUE_RX], 1);
		vs->rx_held = false;
		vsock_schedule(vs); /* the source VM, if resumed, takes it again */
	}
	pthread_mutex_unlock(&dev->lock);
}

/* Nothing of the streams is kept: the restored device owes the guest a reset. */
int virtio_vsock_restore(struct virtio_device *dev, struct section_in *in)
{
	struct vsock *vs = dev->backend;
	vs->reset_event_owed = true;
	return 0;
}

/* The VM is going away: close every connection and the listening socket. */
static void vsock_destroy(struct virtio_device *dev)
{
	vsock_backend_destroy(dev->backend);
	dev->backend = NULL;
}

static const struct virtio_device_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = VSOCK_NUM_QUEUES,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.config_size = VSOCK_CONFIG_SIZE,
	.features = vsock_features,
	.read_config = vsock_read_config,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.queue_notify = vsock_queue_notify,
	.destroy = vsock_destroy,
};

const struct virtio_device_ops *vsock_device_ops(void)
{
	return &vsock_ops;
}

static int check_config(const struct vsock_config *cfg)
{
	/* 5.10.4: 0, 1, 2 (the host) and 0xffffffff are reserved. */
	if (cfg->guest_cid < 3 || cfg->guest_cid == UINT32_MAX) {
		log_error("vsock: guest_cid %u is reserved; use 3 .. 4294967294", cfg->guest_cid);
		return -EINVAL;
	}
	if (!cfg->uds_path || !cfg->uds_path[0]) {
		log_error("vsock: uds_path is required");
		return -EINVAL;
	}
	if (strlen(cfg->uds_path) > VSOCK_SUN_PATH_MAX - VSOCK_PORT_SUFFIX_MAX) {
		log_error("vsock: uds_path %s is too long: at most %d bytes, so that "
			  "<uds_path>_<port> fits a unix socket path", cfg->uds_path,
			  VSOCK_SUN_PATH_MAX - VSOCK_PORT_SUFFIX_MAX);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int watch(struct vsock *vs, int fd, uint64_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = tag };
	return epoll_ctl(vs->epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static int open_fds(struct vsock *vs)
{
	vs->epfd = epoll_create1(EPOLL_CLOEXEC);
	vs->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	vs->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int err = vs->epfd < 0 || vs->timer_fd < 0 || vs->kick_fd < 0 ? -errno : 0;
	if (!err)
		err = watch(vs, vs->timer_fd, VSOCK_TAG_TIMER);
	if (!err)
		err = watch(vs, vs->kick_fd, VSOCK_TAG_KICK);
	if (err) {
		log_error("vsock: epoll, timer or eventfd: %s", strerror(-err));
		return err;
	}
	err = vsock_uds_listen(vs->uds_path, &vs->listen_fd); /* logs its errors */
	if (!err && (err = watch(vs, vs->listen_fd, VSOCK_TAG_LISTEN)))
		log_error("vsock: epoll for %s: %s", vs->uds_path, strerror(-err));
	return err;
}

int vsock_backend_create(const struct vsock_config *cfg, struct vsock **out)
{
	int err = check_config(cfg);
	if (err)
		return err;
	struct vsock *vs = calloc(1, sizeof(*vs));
	if (!vs || !(vs->uds_path = strdup(cfg->uds_path))) {
		free(vs);
		log_error("vsock: out of memory");
		return -ENOMEM;
	}
	vs->guest_cid = cfg->guest_cid;
	vs->listen_fd = vs->epfd = vs->timer_fd = vs->kick_fd = -1;
	vs->rx_head = vs->rx_tail = -1;
	vs->next_port = VSOCK_EPHEMERAL_BASE;
	for (int i = 0; i < VSOCK_HASH_SIZE; i++)
		vs->buckets[i] = -1;
	err = open_fds(vs);
	if (err) {
		vsock_backend_destroy(vs);
		return err;
	}
	*out = vs;
	return 0;
}

void vsock_backend_destroy(struct vsock *vs)
{
	if (!vs)
		return;
	vsock_conn_free_all(vs);
	if (vs->listen_fd >= 0) {
		close(vs->listen_fd);
		unlink(vs->uds_path); /* ours: we bound it */
	}
	int fds[] = { vs->epfd, vs->timer_fd, vs->kick_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(vs->uds_path);
	free(vs);
}

int vsock_attach(struct vsock *vs, struct virtio_device *dev)
{
	vs->dev = dev;
	vs->loop = dev->vm->loop;
	int err = event_loop_add(vs->loop, vs->epfd, EPOLLIN, on_epoll, vs);
	if (err)
		log_error("vsock: cannot watch its sockets on the event loop: %s", strerror(-err));
	return err;
}

int virtio_vsock_create(struct vm *vm, const struct vsock_config *cfg)
{
	struct vsock *vs;
	int err = vsock_backend_create(cfg, &vs);
	if (err)
		return err;
	struct virtio_device *dev;
	err = virtio_mmio_create(vm, &vsock_ops, vs, &dev);
	if (err) {
		if (err == -ENOSPC || err == -ENOMEM) /* other failures are logged there */
			log_error("vsock: no virtio-mmio device: %s", strerror(-err));
		vsock_backend_destroy(vs);
		return err;
	}
	/* From here the transport holds vs: on failure it stays, and the VM is ending. */
	err = vsock_attach(vs, dev);
	if (err)
		return err;
	log_info("vsock: guest cid %u; host side %s", cfg->guest_cid, cfg->uds_path);
	return 0;
}
