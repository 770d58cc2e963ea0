/* virtio-balloon, the traditional memory balloon (virtio 1.2, 5.5). The host sets a
 * target (num_pages); the guest hands over page frame numbers on the inflate queue
 * and argon frees those pages: a hole punched in the guest-memory memfd (the only way
 * shared memfd pages really go: MADV_DONTNEED would just unmap them from this
 * process), or MADV_DONTNEED for anonymous memory. KVM's MMU notifiers drop the
 * guest's mappings, so a page the guest touches again comes back zeroed.
 *
 * Every PFN is checked to lie in guest RAM; the work per wakeup is bounded in PFNs.
 * With a polling interval the guest's statistics buffer is held and given back at
 * each tick, which is how the device asks for fresh statistics (5.5.6.3). */
#include "devices/virtio_balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/log.h"
#include "snapshot/virtio_section.h"
#include "common/util.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

#define BALLOON_QUEUE_SIZE 128
#define BALLOON_PAGE (1ULL << VIRTIO_BALLOON_PFN_SHIFT)
#define BALLOON_PAGES_PER_MIB (MIB(1) / BALLOON_PAGE)
#define BALLOON_CONFIG_SIZE 8	       /* num_pages, actual (5.5.4) */
#define BALLOON_MAX_PFNS_PER_CHAIN 4096 /* Linux sends 256; more is ignored */
#define BALLOON_PFN_BUDGET 16384       /* PFNs per wakeup, so the loop stays responsive */
#define BALLOON_PFN_BATCH 256
#define BALLOON_STAT_SIZE 10	       /* 5.5.6.3: le16 tag, le64 val, packed */
#define BALLOON_MAX_STATS 64	       /* entries read from one buffer */

/* A run of contiguous guest pages, freed with one call. */
struct pfn_run {
	uint64_t gpa, len;
};

struct virtio_balloon {
	struct virtio_device *dev; /* set when attached */
	uint32_t num_pages;	   /* target (5.5.4) */
	uint32_t actual;	   /* written by the driver */
	bool deflate_on_oom;
	uint32_t stats_interval_s;
	int stats_timer_fd; /* the loop's periodic timer (the loop owns and closes it) */
	bool active;
	bool stats_held; /* the statistics buffer, kept until the next tick */
	uint16_t stats_head;
	uint32_t resume;    /* queues with work left when the budget ran out (bits) */
	int resume_fd;	    /* eventfd: come back to them after the loop's other work */
	bool free_error_logged;
	struct virtq_chain chain;
	struct virtio_balloon_stats st;
};

static bool balloon_running(const struct virtio_balloon *b)
{
	return b->active && virtio_device_running(b->dev);
}

/* ---- Inflate and deflate (5.5.6.1, 5.5.6.2) ---- */

/* Gives the run's pages back to the host. */
static void release_run(struct virtio_balloon *b, const struct pfn_run *run)
{
	if (!run->len)
		return;
	struct guest_mem *mem = &b->dev->vm->mem;
	uint8_t *hva = guest_mem_ptr(mem, run->gpa, run->len); /* checked as it grew */
	int err = 0;
	if (mem->memfd >= 0) {
		off_t off = (off_t)(hva - mem->mapping);
		if (fallocate(mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			      (off_t)run->len) < 0)
			err = errno;
	} else if (madvise(hva, run->len, MADV_DONTNEED) < 0) {
		err = errno;
	}
	if (!err) {
		b->st.inflated_pages += run->len / BALLOON_PAGE;
		return;
	}
	b->st.free_errors++;
	if (!b->free_error_logged)
		log_warn("virtio-balloon: cannot free guest pages at 0x%llx: %s",
			 (unsigned long long)run->gpa, strerror(err));
	b->free_error_logged = true;
}

/* Adds one PFN to the run, or frees the run and starts a new one. PFNs outside RAM
 * are refused and counted. */
static void inflate_pfn(struct virtio_balloon *b, struct pfn_run *run, uint32_t pfn)
{
	const struct guest_mem *mem = &b->dev->vm->mem;
	uint64_t gpa = (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT;
	if (!guest_mem_contains(mem, gpa, BALLOON_PAGE)) {
		b->st.bad_pfns++;
		return;
	}
	if (run->len && gpa == run->gpa + run->len &&
	    guest_mem_contains(mem, run->gpa, run->len + BALLOON_PAGE)) {
		run->len += BALLOON_PAGE;
		return;
	}
	release_run(b, run);
	*run = (struct pfn_run){ .gpa = gpa, .len = BALLOON_PAGE };
}

/* 5.5.6.1: the chain is an array of le32 PFNs. Returns the PFNs looked at. */
static uint32_t inflate_chain(struct virtio_balloon *b, const struct virtq_chain *c)
{
	uint32_t n = MIN(c->read_len / 4, BALLOON_MAX_PFNS_PER_CHAIN);
	uint32_t pfns[BALLOON_PFN_BATCH];
	struct pfn_run run = { 0 };
	for (uint32_t i = 0; i < n; i += BALLOON_PFN_BATCH) {
		uint32_t k = MIN(BALLOON_PFN_BATCH, n - i);
		virtq_chain_read(c, i * 4, pfns, k * 4);
		for (uint32_t j = 0; j < k; j++)
			inflate_pfn(b, &run, pfns[j]); /* little-endian on x86 */
	}
	release_run(b, &run);
	return n;
}

/* 5.5.6.2: nothing to do on the host; a page comes back when the guest touches it. */
static uint32_t deflate_chain(struct virtio_balloon *b, const struct virtq_chain *c)
{
	uint32_t n = MIN(c->read_len / 4, BALLOON_MAX_PFNS_PER_CHAIN);
	b->st.deflated_pages += n;
	return n;
}

static void balloon_defer(struct virtio_balloon *b, uint32_t q)
{
	uint64_t one = 1;
	b->resume |= 1u << q;
	if (write(b->resume_fd, &one, sizeof(one)) < 0)
		log_debug("virtio-balloon: resume eventfd: %m");
}

/* Handles the inflate or deflate queue, up to BALLOON_PFN_BUDGET PFNs. A chain must be
 * device-readable only and hold at least one PFN, or it is returned unread. */
static void pages_process(struct virtio_balloon *b, uint32_t q)
{
	struct virtq *vq = &b->dev->queues[q];
	uint32_t budget = BALLOON_PFN_BUDGET;
	bool pushed = false;
	while (budget) {
		int r = virtio_pop(b->dev, vq, &b->chain, true, "page queue broken");
		if (r == 0 || r == -EIO)
			break;
		uint32_t n = 0;
		if (r < 0 || b->chain.nwrite || b->chain.read_len < 4)
			b->st.chain_errors++;
		else
			n = q == VIRTIO_BALLOON_INFLATEQ ? inflate_chain(b, &b->chain)
							 : deflate_chain(b, &b->chain);
		budget -= MIN(budget, MAX(n, 1u));
		virtq_push(vq, b->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_notify_used(b->dev, q);
	if (!budget)
		balloon_defer(b, q);
}

/* ---- Statistics (5.5.6.3) ---- */

static void stats_parse(struct virtio_balloon *b, const struct virtq_chain *c)
{
	uint32_t n = MIN(c->read_len / BALLOON_STAT_SIZE, BALLOON_MAX_STATS);
	b->st.valid = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t e[BALLOON_STAT_SIZE];
		uint16_t tag;
		uint64_t val;
		virtq_chain_read(c, i * BALLOON_STAT_SIZE, e, sizeof(e));
		memcpy(&tag, e, sizeof(tag));
		memcpy(&val, e + 2, sizeof(val));
		if (tag >= VIRTIO_BALLOON_S_NR)
			continue; /* a tag we do not know */
		b->st.values[tag] = val;
		b->st.valid |= 1ULL << tag;
	}
	b->st.reports++;
}

/* The driver gives one buffer of statistics; we keep it until the next tick. */
static void stats_process(struct virtio_balloon *b)
{
	struct virtq *vq = &b->dev->queues[VIRTIO_BALLOON_STATSQ];
	bool pushed = false;
	for (uint32_t i = 0; i < vq->size; i++) {
		int r = virtio_pop(b->dev, vq, &b->chain, true, "statistics queue broken");
		if (r == 0 || r == -EIO)
			break;
		if (r < 0 || b->chain.nwrite) {
			b->st.chain_errors++;
			virtq_push(vq, b->chain.head, 0);
			pushed = true;
			continue;
		}
		stats_parse(b, &b->chain);
		if (b->stats_held) { /* a second buffer: give the older one back */
			virtq_push(vq, b->stats_head, 0);
			pushed = true;
		}
		b->stats_held = true;
		b->stats_head = b->chain.head;
	}
	if (pushed)
		virtio_notify_used(b->dev, VIRTIO_BALLOON_STATSQ);
}

/* Each interval: return the held buffer, asking the driver for fresh statistics. */
static void on_stats_tick(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	pthread_mutex_lock(&b->dev->lock);
	if (balloon_running(b) && b->stats_held) {
		b->stats_held = false;
		virtq_push(&b->dev->queues[VIRTIO_BALLOON_STATSQ], b->stats_head, 0);
		virtio_notify_used(b->dev, VIRTIO_BALLOON_STATSQ);
	}
	pthread_mutex_unlock(&b->dev->lock);
}

static void on_resume(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t count;
	if (read(b->resume_fd, &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&b->dev->lock);
	uint32_t queues = b->resume;
	b->resume = 0;
	for (uint32_t q = VIRTIO_BALLOON_INFLATEQ; q <= VIRTIO_BALLOON_DEFLATEQ; q++)
		if (balloon_running(b) && (queues & (1u << q)))
			pages_process(b, q);
	pthread_mutex_unlock(&b->dev->lock);
}

static int balloon_attach(struct virtio_balloon *b, struct virtio_device *dev)
{
	struct event_loop *loop = dev->vm->loop;
	b->dev = dev;
	int err = event_loop_add(loop, b->resume_fd, EPOLLIN, on_resume, b);
	if (!err && b->stats_interval_s) {
		int fd = event_loop_add_timer(loop, b->stats_interval_s * 1000000000ULL,
					      on_stats_tick, b);
		err = fd < 0 ? fd : 0;
		b->stats_timer_fd = fd;
	}
	if (err)
		log_error("virtio-balloon: cannot join the event loop: %s", strerror(-err));
	return err;
}

/* ---- virtio device ops ---- */

static uint64_t balloon_features(struct virtio_device *dev)
{
	const struct virtio_balloon *b = dev->backend;
	uint64_t f = 0;
	if (b->stats_interval_s)
		f |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	if (b->deflate_on_oom)
		f |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	return f;
}

static void config_bytes(const struct virtio_balloon *b, uint8_t cfg[BALLOON_CONFIG_SIZE])
{
	memcpy(cfg, &b->num_pages, 4); /* le32, x86 */
	memcpy(cfg + 4, &b->actual, 4);
}

static void balloon_read_config(struct virtio_device *dev, uint32_t offset, uint8_t *data,
				uint32_t len)
{
	uint8_t cfg[BALLOON_CONFIG_SIZE];
	config_bytes(dev->backend, cfg);
	memcpy(data, cfg + offset, len); /* the transport checked offset + len */
}

/* 5.5.4: the driver writes actual; num_pages is the device's and stays. */
static void balloon_write_config(struct virtio_device *dev, uint32_t offset,
				 const uint8_t *data, uint32_t len)
{
	struct virtio_balloon *b = dev->backend;
	uint8_t cfg[BALLOON_CONFIG_SIZE];
	config_bytes(b, cfg);
	memcpy(cfg + offset, data, len);
	memcpy(&b->actual, cfg + 4, 4);
}

static int balloon_activate(struct virtio_device *dev)
{
	struct virtio_balloon *b = dev->backend;
	if (!b->dev) {
		int err = balloon_attach(b, dev);
		if (err)
			return err;
	}
	b->active = true;
	return 0;
}

/* 2.4: everything the driver gave goes with it: its buffers (the rings are gone), the
 * pages it says it holds, and its statistics (5.5.6.3), which the API would otherwise
 * show as current until the next driver reports, or forever if it never does. The
 * host's counters and the target stay. */
static void balloon_reset(struct virtio_device *dev)
{
	struct virtio_balloon *b = dev->backend;
	b->active = false;
	b->stats_held = false;
	b->resume = 0;
	b->actual = 0;
	b->st.valid = 0;
	memset(b->st.values, 0, sizeof(b->st.values));
}

static void balloon_queue_notify(struct virtio_device *dev, uint32_t q)
{
	struct virtio_balloon *b = dev->backend;
	if (!b->active)
		return;
	if (q == VIRTIO_BALLOON_STATSQ)
		stats_process(b);
	else if (q <= VIRTIO_BALLOON_DEFLATEQ)
		pages_process(b, q);
}

/* The VM is going away: release the backend with the device. */
static void balloon_destroy(struct virtio_device *dev)
{
	virtio_balloon_backend_free(dev->backend);
	dev->backend = NULL;
}

#define BALLOON_OPS(queues)                                                            \
	{                                                                              \
		.name = "virtio-balloon", .device_id = VIRTIO_ID_BALLOON,              \
		.num_queues = (queues), .queue_max_size = BALLOON_QUEUE_SIZE,          \
		.config_size = BALLOON_CONFIG_SIZE, .features = balloon_features,      \
		.read_config = balloon_read_config, .write_config = balloon_write_config, \
		.activate = balloon_activate, .reset = balloon_reset,                  \
		.queue_notify = balloon_queue_notify, .destroy = balloon_destroy,      \
	}

/* 5.5.2: statsq exists only with VIRTIO_BALLOON_F_STATS_VQ. */
static const struct virtio_device_ops balloon_ops = BALLOON_OPS(2);
static const struct virtio_device_ops balloon_stats_ops = BALLOON_OPS(3);

const struct virtio_device_ops *virtio_balloon_ops(const struct virtio_balloon *b)
{
	return b->stats_interval_s ? &balloon_stats_ops : &balloon_ops;
}

/* ---- Construction and the API ---- */

static int target_pages(uint32_t amount_mib, uint64_t ram_size, uint32_t *pages)
{
	uint64_t p = (uint64_t)amount_mib * BALLOON_PAGES_PER_MIB;
	if (p > ram_size / BALLOON_PAGE || p > UINT32_MAX)
		return -EINVAL;
	*pages = (uint32_t)p;
	return 0;
}

int virtio_balloon_backend_new(const struct balloon_config *cfg, uint64_t ram_size,
			       struct virtio_balloon **out)
{
	uint32_t pages;
	if (target_pages(cfg->amount_mib, ram_size, &pages)) {
		log_error("balloon: amount_mib %u is more than the guest's %llu MiB",
			  cfg->amount_mib, (unsigned long long)(ram_size >> 20));
		return -EINVAL;
	}
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->num_pages = pages;
	b->deflate_on_oom = cfg->deflate_on_oom;
	b->stats_interval_s = cfg->stats_polling_interval_s;
	b->stats_timer_fd = -1;
	b->resume_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->resume_fd < 0) {
		int err = -errno;
		log_error("balloon: %s", strerror(-err));
		free(b);
		return err;
	}
	*out = b;
	return 0;
}

void virtio_balloon_backend_free(struct virtio_balloon *b)
{
	if (!b)
		return;
	close(b->resume_fd);
	free(b);
}

int virtio_balloon_create_dev(struct vm *vm, const struct balloon_config *cfg,
			      struct virtio_device **out)
{
	struct virtio_balloon *b;
	int err = virtio_balloon_backend_new(cfg, vm->mem.ram_size, &b);
	if (err)
		return err;
	struct virtio_device *dev;
	err = virtio_mmio_create(vm, virtio_balloon_ops(b), b, &dev);
	if (err) {
		virtio_balloon_backend_free(b);
		return err;
	}
	err = balloon_attach(b, dev);
	if (err)
		return err; /* the device lives on with the VM */
	*out = dev;
	return 0;
}

int virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg)
{
	struct virtio_device *dev;
	return virtio_balloon_create_dev(vm, cfg, &dev);
}

static bool is_balloon(const struct virtio_device *dev)
{
	return dev && (dev->ops == &balloon_ops || dev->ops == &balloon_stats_ops);
}

int virtio_balloon_set_target(struct virtio_device *dev, uint32_t amount_mib)
{
	uint32_t pages;
	if (!is_balloon(dev) || target_pages(amount_mib, dev->vm->mem.ram_size, &pages))
		return -EINVAL;
	struct virtio_balloon *b = dev->backend;
	pthread_mutex_lock(&dev->lock);
	b->num_pages = pages;
	if (dev->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_notify_config(dev); /* 5.5.6: the driver rereads num_pages */
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

int virtio_balloon_get_stats(struct virtio_device *dev, struct virtio_balloon_stats *out)
{
	if (!is_balloon(dev))
		return -EINVAL;
	struct virtio_balloon *b = dev->backend;
	pthread_mutex_lock(&dev->lock);
	*out = b->st;
	out->target_pages = b->num_pages;
	out->actual_pages = b->actual;
	pthread_mutex_unlock(&dev->lock);
	return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_device *dev, uint32_t seconds)
{
	if (!is_balloon(dev))
		return -EINVAL;
	struct virtio_balloon *b = dev->backend;
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (!b->stats_interval_s || !seconds) {
		err = b->stats_interval_s == seconds ? 0 : -EINVAL;
	} else if (b->stats_timer_fd >= 0) {
		struct timespec period = { .tv_sec = seconds };
		struct itimerspec its = { .it_interval = period, .it_value = period };
		err = timerfd_settime(b->stats_timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
	}
	if (!err)
		b->stats_interval_s = seconds;
	pthread_mutex_unlock(&dev->lock);
	return err;
}

/* ---- Snapshots ---- */

/* After the transport: u32 num_pages (target), u32 actual, u32 stats interval, u8
 * stats_held, u16 stats_head (the statistics buffer the device keeps, 5.5.6.3, as
 * Firecracker's stats_desc_index), u64 valid, 16 x u64 values, u64 reports. */
void virtio_balloon_save(struct virtio_device *dev, struct snap_writer *w)
{
	struct virtio_balloon *b = dev->backend;
	snap_put_u32(w, b->num_pages);
	snap_put_u32(w, b->actual);
	snap_put_u32(w, b->stats_interval_s);
	snap_put_u8(w, b->stats_held);
	snap_put_u16(w, b->stats_head);
	snap_put_u64(w, b->st.valid);
	for (int i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		snap_put_u64(w, b->st.values[i]);
	snap_put_u64(w, b->st.reports);
}

static void balloon_check(struct section_in *in, const struct virtio_balloon *b,
			  const struct virtio_device *dev, uint32_t interval)
{
	uint64_t ram_pages = dev->vm->mem.ram_size >> VIRTIO_BALLOON_PFN_SHIFT;
	bool statsq = dev->ops->num_queues > VIRTIO_BALLOON_STATSQ;
	if (b->num_pages > ram_pages)
		section_in_fail(in, "num_pages", "%u: the guest has %llu pages", b->num_pages,
				(unsigned long long)ram_pages);
	else if (!interval != !b->stats_interval_s)
		section_in_fail(in, "stats_interval", "%u: the configuration says %u", interval,
				b->stats_interval_s);
	else if (b->stats_held && (!statsq || b->stats_head >= VIRTQ_MAX_SIZE))
		section_in_fail(in, "stats_head", "%u: no statistics queue holds it", b->stats_head);
}

int virtio_balloon_restore(struct virtio_device *dev, struct section_in *in)
{
	struct virtio_balloon *b = dev->backend;
	b->num_pages = snap_get_u32(&in->c);
	b->actual = snap_get_u32(&in->c);
	uint32_t interval = snap_get_u32(&in->c);
	b->stats_held = section_in_flag(in, "stats_held");
	b->stats_head = snap_get_u16(&in->c);
	b->st.valid = snap_get_u64(&in->c);
	for (int i = 0; i < VIRTIO_BALLOON_S_NR; i++)
		b->st.values[i] = snap_get_u64(&in->c);
	b->st.reports = snap_get_u64(&in->c);
	if (!in->c.failed && !in->bad)
		balloon_check(in, b, dev, interval);
	if (!in->c.failed && !in->bad && interval != b->stats_interval_s)
		virtio_balloon_set_stats_interval(dev, interval);
	return in->bad || in->c.failed ? -1 : 0;
}
