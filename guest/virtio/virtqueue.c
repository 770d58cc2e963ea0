/* Split virtqueue, driver side (virtio 1.2, 2.7). x86 keeps stores in order
 * and loads in order, so releases and acquires are compiler barriers; the one
 * real fence is between publishing the avail index and reading avail_event
 * (a store then a load), and between arming used_event and re-reading the
 * used index. */
#include "cpu.h"
#include "page_alloc.h"
#include "printf.h"
#include "virtio/virtqueue.h"

#define AVAIL_F_NO_INTERRUPT 1
#define USED_F_NO_NOTIFY 1
#define DISARMED_DISTANCE 0x7fff /* used_event this far ahead is never reached */

static volatile uint16_t *used_idx_ptr(const struct virtq *vq)
{
	return (volatile uint16_t *)(vq->used + 2);
}

static volatile struct vq_used_elem *used_elem(const struct virtq *vq, uint16_t i)
{
	return (volatile struct vq_used_elem *)(vq->used + 4) + (i & (vq->size - 1));
}

static volatile uint16_t *used_event_ptr(const struct virtq *vq)
{
	return &vq->avail[2 + vq->size];
}

static volatile uint16_t *avail_event_ptr(const struct virtq *vq)
{
	return (volatile uint16_t *)(vq->used + 4 + 8 * vq->size);
}

static uint16_t pick_size(uint32_t num_max, uint16_t want)
{
	uint16_t size = 1;

	if (want > VQ_MAX_SIZE)
		want = VQ_MAX_SIZE;
	while (size * 2u <= want && size * 2u <= num_max)
		size *= 2;
	return size;
}

/* Rings in one zeroed block: descriptors (16-byte aligned), the available
 * ring right after, the used ring on its own page (2.7.10.1 alignments). */
static int alloc_rings(struct virtq *vq, bool indirect)
{
	uint64_t avail_off = 16ull * vq->size;
	uint64_t used_off = (avail_off + 6 + 2ull * vq->size + 4095) & ~4095ull;
	uint8_t *block = mem_alloc_zeroed(used_off + 6 + 8ull * vq->size, 4096);

	vq->cookies = mem_alloc_zeroed(sizeof(void *) * vq->size, 8);
	vq->indirect = indirect ? mem_alloc_zeroed(16ull * VQ_INDIRECT_MAX * vq->size, 16) : 0;
	if (!block || !vq->cookies || (indirect && !vq->indirect))
		return -1;
	vq->desc = (struct vq_desc *)block;
	vq->avail = (volatile uint16_t *)(block + avail_off);
	vq->used = block + used_off;
	for (uint16_t i = 0; i < vq->size; i++)
		vq->desc[i].next = i + 1;
	vq->free_head = 0;
	vq->num_free = vq->size;
	return 0;
}

static void write_addr(struct virtio_dev *d, uint32_t low_reg, const volatile void *p)
{
	uint64_t a = (uint64_t)p;

	virtio_write_reg(d, low_reg, (uint32_t)a);
	virtio_write_reg(d, low_reg + 4, (uint32_t)(a >> 32));
}

int vq_setup(struct virtq *vq, struct virtio_dev *d, uint16_t index, uint16_t max)
{
	uint32_t num_max;

	*vq = (struct virtq){ .dev = d, .index = index };
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_SEL, index);
	num_max = virtio_read_reg(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!num_max || virtio_read_reg(d, VIRTIO_MMIO_QUEUE_READY)) {
		printf("argon-guest: virtio-%s: queue %u %s\n", virtio_name(d->device_id), index,
		       num_max ? "already ready after reset" : "does not exist");
		return -1;
	}
	vq->size = pick_size(num_max, max);
	if (alloc_rings(vq, virtio_has(d, VIRTIO_F_INDIRECT_DESC))) {
		printf("argon-guest: virtio-%s: no memory for queue %u\n", virtio_name(d->device_id),
		       index);
		return -1;
	}
	vq_disarm_irq(vq);
	if (!vq_program(vq)) {
		printf("argon-guest: virtio-%s: queue %u (size %u) refused by the device\n",
		       virtio_name(d->device_id), index, vq->size);
		return -1;
	}
	return 0;
}

bool vq_program(const struct virtq *vq)
{
	struct virtio_dev *d = vq->dev;

	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_NUM, vq->size);
	write_addr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, vq->desc);
	write_addr(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, vq->avail);
	write_addr(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, vq->used);
	virtio_write_reg(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return virtio_read_reg(d, VIRTIO_MMIO_QUEUE_READY) == 1;
}

bool vq_has_room(const struct virtq *vq, int n)
{
	return vq->num_free >= ((vq->indirect && n > 1 && n <= VQ_INDIRECT_MAX) ? 1 : n);
}

static void fill_desc(struct vq_desc *d, const struct vq_buf *b, bool more)
{
	d->addr = b->addr;
	d->len = b->len;
	d->flags = (b->write ? VQ_DESC_F_WRITE : 0) | (more ? VQ_DESC_F_NEXT : 0);
}

/* Takes one descriptor (indirect table) or n chained ones from the free
 * list; returns the head. The free list is linked through next, so a chain
 * of n free descriptors is already linked the way we need. */
static uint16_t take_descs(struct virtq *vq, const struct vq_buf *bufs, int n)
{
	uint16_t head = vq->free_head, i = head;

	if (vq->indirect && n > 1 && n <= VQ_INDIRECT_MAX) {
		struct vq_desc *t = &vq->indirect[(uint32_t)head * VQ_INDIRECT_MAX];

		for (int k = 0; k < n; k++) {
			fill_desc(&t[k], &bufs[k], k + 1 < n);
			t[k].next = k + 1;
		}
		vq->free_head = vq->desc[head].next;
		vq->desc[head] = (struct vq_desc){ (uint64_t)t, 16 * n, VQ_DESC_F_INDIRECT,
						   vq->free_head };
		vq->num_free--;
		return head;
	}
	for (int k = 0; k < n; k++) {
		fill_desc(&vq->desc[i], &bufs[k], k + 1 < n);
		if (k + 1 < n)
			i = vq->desc[i].next;
	}
	vq->free_head = vq->desc[i].next;
	vq->num_free -= n;
	return head;
}

int vq_add(struct virtq *vq, const struct vq_buf *bufs, int n, void *cookie)
{
	uint16_t head;

	if (n < 1 || !vq_has_room(vq, n))
		return -1;
	head = take_descs(vq, bufs, n);
	vq->cookies[head] = cookie;
	vq->avail[2 + (vq->avail_idx & (vq->size - 1))] = head;
	vq->avail_idx++;
	vq->added++;
	return 0;
}

/* 2.7.10: notify when the device's avail_event lies in [old, new). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool vq_kick(struct virtq *vq)
{
	uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;
	bool notify;

	barrier();
	vq->avail[1] = new_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->kicked_idx = new_idx;
	if (old == new_idx)
		return false;
	if (virtio_has(vq->dev, VIRTIO_F_EVENT_IDX))
		notify = need_event(*avail_event_ptr(vq), new_idx, old);
	else
		notify = !(((volatile uint16_t *)vq->used)[0] & USED_F_NO_NOTIFY);
	if (notify) {
		virtio_write_reg(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
		vq->kicks++;
	}
	return notify;
}

bool vq_has_used(const struct virtq *vq)
{
	return *used_idx_ptr(vq) != vq->last_used;
}

static void free_chain(struct virtq *vq, uint16_t head)
{
	uint16_t i = head, n = 1;

	while (vq->desc[i].flags & VQ_DESC_F_NEXT) {
		i = vq->desc[i].next;
		n++;
	}
	vq->desc[i].next = vq->free_head;
	vq->free_head = head;
	vq->num_free += n;
}

void *vq_get_used(struct virtq *vq, uint32_t *len)
{
	volatile struct vq_used_elem *e;
	uint32_t id;
	void *cookie;

	if (!vq_has_used(vq))
		return 0;
	barrier(); /* the element is read after the index */
	e = used_elem(vq, vq->last_used);
	id = e->id;
	if (len)
		*len = e->len;
	if (id >= vq->size || !(cookie = vq->cookies[id])) {
		printf("argon-guest: virtio-%s: queue %u: device returned bad id %u\n",
		       virtio_name(vq->dev->device_id), vq->index, id);
		vq->last_used++;
		return 0;
	}
	vq->cookies[id] = 0;
	free_chain(vq, (uint16_t)id);
	vq->last_used++;
	vq->completed++;
	if (!vq->irq_wanted)
		*used_event_ptr(vq) = vq->last_used + DISARMED_DISTANCE;
	return cookie;
}

bool vq_arm_irq(struct virtq *vq)
{
	vq->irq_wanted = true;
	*used_event_ptr(vq) = vq->last_used;
	vq->avail[0] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_has_used(vq);
}

void vq_disarm_irq(struct virtq *vq)
{
	vq->irq_wanted = false;
	*used_event_ptr(vq) = vq->last_used + DISARMED_DISTANCE;
	vq->avail[0] = virtio_has(vq->dev, VIRTIO_F_EVENT_IDX) ? 0 : AVAIL_F_NO_INTERRUPT;
}
