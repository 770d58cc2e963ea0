#include "virtio_test_driver.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "vmm/event_loop.h"

#define VTD_RINGS_BASE 0x100000ULL /* rings from 1 MiB, buffers after them */

static void *gpa_ptr(struct vtd *t, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&t->vm.mem, gpa, len);
}

static void layout_queue(struct vtd *t, uint32_t qi, uint16_t size)
{
	struct vtd_queue *q = &t->q[qi];
	q->size = size;
	q->desc_gpa = ALIGN_UP(t->next_free, 4096);
	q->avail_gpa = q->desc_gpa + 16ULL * size;
	q->used_gpa = ALIGN_UP(q->avail_gpa + 6 + 2ULL * size, 4096);
	t->next_free = q->used_gpa + 6 + 8ULL * size;
	struct virtq *vq = &t->dev.queues[qi];
	vq->size = size;
	vq->desc_gpa = q->desc_gpa;
	vq->avail_gpa = q->avail_gpa;
	vq->used_gpa = q->used_gpa;
}

static int init_device(struct vtd *t, const struct virtio_device_ops *ops, void *backend,
		       uint64_t features, uint16_t queue_size)
{
	struct virtio_device *dev = &t->dev;
	dev->vm = &t->vm;
	dev->ops = ops;
	dev->backend = backend;
	pthread_mutex_init(&dev->lock, NULL);
	dev->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	dev->driver_features = features;
	dev->device_features = features;
	if (dev->irq_fd < 0)
		return -errno;
	for (uint32_t q = 0; q < ops->num_queues; q++) {
		dev->notify_fds[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		layout_queue(t, q, queue_size ? queue_size : ops->queue_max_size);
		bool event_idx = (features >> VIRTIO_F_EVENT_IDX) & 1;
		bool indirect = (features >> VIRTIO_F_INDIRECT_DESC) & 1;
		int err = virtq_activate(&dev->queues[q], &t->vm.mem, event_idx, indirect);
		if (err)
			return err;
	}
	dev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	return ops->activate ? ops->activate(dev) : 0;
}

int vtd_init(struct vtd *t, const struct virtio_device_ops *ops, void *backend,
	     uint64_t mem_mib, uint64_t features, uint16_t queue_size)
{
	memset(t, 0, sizeof(*t));
	t->dev.irq_fd = -1;
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		t->dev.notify_fds[q] = -1;
	t->vm.vm_fd = t->vm.kvm_fd = t->vm.stop_fd = -1;
	int err = guest_mem_create_anon(&t->vm.mem, mem_mib << 20);
	if (!err)
		err = event_loop_create(&t->vm.loop);
	t->next_free = VTD_RINGS_BASE;
	return err ? err : init_device(t, ops, backend, features, queue_size);
}

void vtd_destroy(struct vtd *t)
{
	if (t->dev.ops && t->dev.ops->reset) {
		pthread_mutex_lock(&t->dev.lock);
		t->dev.ops->reset(&t->dev);
		pthread_mutex_unlock(&t->dev.lock);
	}
	for (int q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (t->dev.notify_fds[q] >= 0)
			close(t->dev.notify_fds[q]);
	if (t->dev.irq_fd >= 0)
		close(t->dev.irq_fd);
	event_loop_destroy(t->vm.loop);
	guest_mem_destroy(&t->vm.mem);
}

uint64_t vtd_alloc(struct vtd *t, uint32_t len, void **hva)
{
	uint64_t gpa = ALIGN_UP(t->next_free, 16);
	t->next_free = gpa + len;
	if (hva)
		*hva = gpa_ptr(t, gpa, len ? len : 1);
	return gpa;
}

struct vtd_desc *vtd_desc_table(struct vtd *t, uint32_t q)
{
	return gpa_ptr(t, t->q[q].desc_gpa, 16ULL * t->q[q].size);
}

void vtd_add_head(struct vtd *t, uint32_t qi, uint16_t head)
{
	struct vtd_queue *q = &t->q[qi];
	uint16_t *avail = gpa_ptr(t, q->avail_gpa, 6 + 2ULL * q->size);
	avail[2 + q->avail_idx % q->size] = head;
	q->avail_idx++;
	__atomic_store_n(&avail[1], q->avail_idx, __ATOMIC_RELEASE);
}

void vtd_set_avail_idx(struct vtd *t, uint32_t qi, uint16_t idx)
{
	uint16_t *avail = gpa_ptr(t, t->q[qi].avail_gpa, 4);
	t->q[qi].avail_idx = idx;
	__atomic_store_n(&avail[1], idx, __ATOMIC_RELEASE);
}

uint16_t vtd_add_chain(struct vtd *t, uint32_t qi, const struct vtd_buf *bufs, int n)
{
	struct vtd_queue *q = &t->q[qi];
	struct vtd_desc *table = vtd_desc_table(t, qi);
	uint16_t head = q->next_desc;
	for (int i = 0; i < n; i++) {
		uint16_t d = q->next_desc;
		q->next_desc = (uint16_t)((q->next_desc + 1) % q->size);
		table[d] = (struct vtd_desc){
			.addr = bufs[i].gpa, .len = bufs[i].len,
			.flags = (uint16_t)((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			.next = q->next_desc,
		};
	}
	vtd_add_head(t, qi, head);
	return head;
}

void vtd_kick(struct vtd *t, uint32_t q)
{
	pthread_mutex_lock(&t->dev.lock);
	t->dev.ops->queue_notify(&t->dev, q);
	pthread_mutex_unlock(&t->dev.lock);
}

int vtd_get_used(struct vtd *t, uint32_t qi, uint32_t *id, uint32_t *len)
{
	struct vtd_queue *q = &t->q[qi];
	uint16_t *used = gpa_ptr(t, q->used_gpa, 6 + 8ULL * q->size);
	if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) == q->last_used)
		return 0;
	uint32_t *elem = (uint32_t *)(used + 2) + 2 * (q->last_used % q->size);
	*id = elem[0];
	*len = elem[1];
	q->last_used++;
	return 1;
}

int vtd_wait_used(struct vtd *t, uint32_t qi, int timeout_ms)
{
	struct vtd_queue *q = &t->q[qi];
	uint16_t *used = gpa_ptr(t, q->used_gpa, 4);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (__atomic_load_n(&used[1], __ATOMIC_ACQUIRE) != q->last_used)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return 0;
		event_loop_run_once(t->vm.loop, (int)(timeout_ms - elapsed));
	}
}

uint64_t vtd_interrupts(struct vtd *t)
{
	uint64_t n = 0;
	if (read(t->dev.irq_fd, &n, sizeof(n)) < 0)
		return 0;
	return n;
}
