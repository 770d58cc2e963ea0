/* Split virtqueue walker (virtio 1.2, 2.7). The rings live in guest memory and the
 * guest can change them at any moment: every index is read once, checked, and used
 * from the local copy; every descriptor is copied out before it is checked. */
#include "devices/virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc layout (2.7.5)");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem layout (2.7.8)");

/* Ring sizes in bytes (2.7.4), including the event index fields. */
static uint64_t avail_bytes(uint16_t size)
{
	return 4 + 2ULL * size + 2;
}

static uint64_t used_bytes(uint16_t size)
{
	return 4 + 8ULL * size + 2;
}

static volatile uint16_t *avail_flags(struct virtq *vq)
{
	return (volatile uint16_t *)vq->avail;
}

static volatile uint16_t *avail_idx(struct virtq *vq)
{
	return (volatile uint16_t *)vq->avail + 1;
}

static volatile uint16_t *avail_ring(struct virtq *vq, uint16_t i)
{
	return (volatile uint16_t *)vq->avail + 2 + i;
}

static volatile uint16_t *used_event(struct virtq *vq)
{
	return avail_ring(vq, vq->size);
}

static volatile uint16_t *used_idx_field(struct virtq *vq)
{
	return (volatile uint16_t *)vq->used + 1;
}

static volatile struct virtq_used_elem *used_ring(struct virtq *vq, uint16_t i)
{
	return (volatile struct virtq_used_elem *)((uint8_t *)vq->used + 4) + i;
}

static volatile uint16_t *avail_event(struct virtq *vq)
{
	return (volatile uint16_t *)((uint8_t *)vq->used + 4 + 8 * (size_t)vq->size);
}

int virtq_activate(struct virtq *vq, struct guest_mem *mem, bool event_idx, bool indirect)
{
	uint16_t size = vq->size;
	vq->ready = false;
	/* 2.7: split queue sizes are powers of two; 2.7.10.1 alignment 16/2/4. */
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) ||
	    vq->desc_gpa % 16 || vq->avail_gpa % 2 || vq->used_gpa % 4)
		return -EINVAL;
	vq->desc = guest_mem_ptr(mem, vq->desc_gpa, 16ULL * size);
	vq->avail = guest_mem_ptr(mem, vq->avail_gpa, avail_bytes(size));
	vq->used = guest_mem_ptr(mem, vq->used_gpa, used_bytes(size));
	if (!vq->desc || !vq->avail || !vq->used)
		return -EINVAL;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->last_avail_idx = vq->used_idx = 0;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->broken_why = NULL;
	vq->ready = true;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	uint16_t max = vq->size;
	memset(vq, 0, sizeof(*vq));
	vq->size = max;
}

/* Not logged here: the device then sets NEEDS_RESET, which logs through its rate
 * limit with this reason (a guest that breaks and resets a ring in a loop must not
 * flood the host's log). */
static int ring_broken(struct virtq *vq, const char *why)
{
	if (!vq->broken)
		vq->broken_why = why;
	vq->broken = true;
	return -EIO;
}

uint16_t virtq_available(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return 0;
	uint16_t idx = __atomic_load_n(avail_idx(vq), __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(idx - vq->last_avail_idx);
	/* 2.7.13.3: the driver can never have more than size entries outstanding. */
	if (pending > vq->size) {
		ring_broken(vq, "available index moved by more than the queue size");
		return 0;
	}
	return pending;
}

/* Appends one buffer after checking it lies in RAM and keeps read-before-write order. */
static int add_buf(struct virtq_chain *c, struct guest_mem *mem, const struct virtq_desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	if (d->len == 0)
		return -EINVAL; /* nothing a device could use; refuse rather than guess */
	if (!write && c->nwrite)
		return -EINVAL; /* 2.7.4.2: readable descriptors come first */
	uint32_t n = (uint32_t)c->nread + c->nwrite;
	if (n >= VIRTQ_MAX_SIZE)
		return -EINVAL;
	uint8_t *hva = guest_mem_ptr(mem, d->addr, d->len);
	if (!hva)
		return -EINVAL;
	c->bufs[n] = (struct virtq_buf){ .hva = hva, .len = d->len, .gpa = d->addr };
	uint32_t *total = write ? &c->write_len : &c->read_len;
	if (*total > UINT32_MAX - d->len)
		return -EINVAL;
	*total += d->len;
	if (write)
		c->nwrite++;
	else
		c->nread++;
	return 0;
}

/* Walks an indirect table (2.7.5.3): well-formed length, no nesting, no loops. */
static int walk_indirect(struct virtq *vq, struct virtq_chain *c, const struct virtq_desc *d)
{
	if (!vq->indirect || (d->flags & VIRTQ_DESC_F_NEXT) || d->len == 0 || d->len % 16)
		return -EINVAL;
	uint32_t count = d->len / 16;
	uint32_t room = VIRTQ_MAX_SIZE - c->nread - c->nwrite;
	if (count > vq->size || count > room)
		return -EINVAL;
	const struct virtq_desc *table = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!table)
		return -EINVAL;
	uint32_t i = 0;
	for (uint32_t steps = 0; steps < count; steps++) {
		struct virtq_desc e;
		memcpy(&e, (const void *)&table[i], sizeof(e));
		if (e.flags & VIRTQ_DESC_F_INDIRECT)
			return -EINVAL; /* 2.7.5.3.1: no nested tables */
		int err = add_buf(c, vq->mem, &e);
		if (err)
			return err;
		if (!(e.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (e.next >= count)
			return -EINVAL;
		i = e.next;
	}
	return -EINVAL; /* more links than entries: a loop */
}

/* Follows the chain from head; at most size descriptors, so a loop ends it. */
static int walk_chain(struct virtq *vq, struct virtq_chain *c)
{
	const struct virtq_desc *table = vq->desc;
	uint16_t i = c->head;
	for (uint32_t steps = 0; steps < vq->size; steps++) {
		struct virtq_desc d;
		memcpy(&d, (const void *)&table[i], sizeof(d));
		int err = (d.flags & VIRTQ_DESC_F_INDIRECT) ? walk_indirect(vq, c, &d)
							     : add_buf(c, vq->mem, &d);
		if (err || (d.flags & VIRTQ_DESC_F_INDIRECT))
			return err;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= vq->size)
			return -EINVAL;
		i = d.next;
	}
	return -EINVAL;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c)
{
	if (!vq->ready)
		return 0;
	if (vq->broken)
		return -EIO;
	if (virtq_available(vq) == 0)
		return vq->broken ? -EIO : 0;
	/* The ring entry is read after the index (acquire above): 2.7.13. */
	uint16_t head = *avail_ring(vq, vq->last_avail_idx % vq->size);
	if (head >= vq->size)
		return ring_broken(vq, "available ring names a descriptor past the queue size");
	vq->last_avail_idx++;
	c->head = head;
	c->nread = c->nwrite = 0;
	c->read_len = c->write_len = 0;
	return walk_chain(vq, c) ? -EINVAL : 1;
}

void virtq_unpop(struct virtq *vq, uint16_t n)
{
	vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - n);
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	if (!vq->ready)
		return;
	volatile struct virtq_used_elem *e = used_ring(vq, vq->used_idx % vq->size);
	e->id = head;
	e->len = len;
	vq->used_idx++;
	/* The element must be visible before the index that publishes it (2.7.8). */
	__atomic_store_n(used_idx_field(vq), vq->used_idx, __ATOMIC_RELEASE);
}

bool virtq_should_notify(struct virtq *vq)
{
	if (!vq->ready)
		return false;
	/* Order the used index store before reading the driver's suppression fields. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(*avail_flags(vq) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t event = *used_event(vq);
	uint16_t new_idx = vq->used_idx;
	uint16_t old_idx = vq->signalled_used;
	bool valid = vq->signalled_valid;
	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	/* 2.7.10: vring_need_event(event, new, old). */
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_enable_notify(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx)
		*avail_event(vq) = vq->last_avail_idx;
	/* Publish avail_event before looking again, or a kick in between is lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_available(vq) > 0;
}

static uint32_t chain_copy(const struct virtq_chain *c, bool to_guest, uint32_t offset,
			   uint8_t *host, uint32_t len)
{
	uint32_t first = to_guest ? c->nread : 0;
	uint32_t count = to_guest ? c->nwrite : c->nread;
	uint32_t done = 0;
	for (uint32_t i = first; i < first + count && done < len; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (offset >= b->len) {
			offset -= b->len;
			continue;
		}
		uint32_t n = b->len - offset;
		if (n > len - done)
			n = len - done;
		if (to_guest)
			memcpy(b->hva + offset, host + done, n);
		else
			memcpy(host + done, b->hva + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

uint32_t virtq_chain_read(const struct virtq_chain *c, uint32_t offset, void *dst, uint32_t len)
{
	return chain_copy(c, false, offset, dst, len);
}

uint32_t virtq_chain_write(const struct virtq_chain *c, uint32_t offset, const void *src,
			   uint32_t len)
{
	return chain_copy(c, true, offset, (uint8_t *)(uintptr_t)src, len);
}
