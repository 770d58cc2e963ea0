/* virtio-balloon through the fake driver: inflated pages really leave the process
 * (mincore for anonymous memory, the memfd's allocated blocks for memfd-backed guest
 * memory, as argon-vmm uses), PFNs outside RAM are refused, the target changes at
 * runtime with a configuration interrupt, statistics are kept and re-requested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_balloon.h"
#include "virtio_test_driver.h"

#define QSIZE 16
#define MEM_MIB 16
#define PAGE 4096ULL
#define F(bit) (1ULL << (bit))
#define FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX))
#define INFLATEQ VIRTIO_BALLOON_INFLATEQ
#define DEFLATEQ VIRTIO_BALLOON_DEFLATEQ
#define STATSQ VIRTIO_BALLOON_STATSQ
#define BALLOON_GPA (8ULL << 20) /* pages the tests balloon: far from rings and buffers */

struct fixture {
	struct vtd t;
	struct virtio_balloon *b;
};

static int setup_with(void **state, const struct balloon_config *cfg, uint64_t features)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(virtio_balloon_backend_new(cfg, MEM_MIB << 20, &f->b), 0);
	assert_int_equal(vtd_init(&f->t, virtio_balloon_ops(f->b), f->b, MEM_MIB, features, QSIZE),
			 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	struct balloon_config cfg = { .amount_mib = 4, .deflate_on_oom = true };
	return setup_with(state, &cfg, FEATURES | F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
}

static int setup_stats(void **state)
{
	struct balloon_config cfg = { .amount_mib = 4,
				      .stats_polling_interval_s = 1 };
	return setup_with(state, &cfg, FEATURES | F(VIRTIO_BALLOON_F_STATS_VQ));
}

/* Guest memory as argon-vmm has it: a memfd mapped shared. The fake driver built
 * anonymous memory; the rings in it are still all zero, so mapping a fresh memfd over
 * the same addresses changes nothing else. */
static int setup_memfd(void **state)
{
	setup(state);
	struct fixture *f = *state;
	struct guest_mem *mem = &f->t.vm.mem;
	int fd = memfd_create("test-guest-ram", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)mem->ram_size), 0);
	void *p = mmap(mem->mapping, mem->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		       fd, 0);
	assert_ptr_equal(p, mem->mapping);
	mem->memfd = fd;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vtd_destroy(&f->t);
	virtio_balloon_backend_free(f->b);
	free(f);
	return 0;
}

static struct virtio_balloon_stats stats(struct fixture *f)
{
	struct virtio_balloon_stats s;
	assert_int_equal(virtio_balloon_get_stats(&f->t.dev, &s), 0);
	return s;
}

static uint8_t *touch_pages(struct fixture *f, uint64_t gpa, unsigned n)
{
	uint8_t *p = guest_mem_ptr(&f->t.vm.mem, gpa, n * PAGE);
	assert_non_null(p);
	memset(p, 0xa5, n * PAGE);
	return p;
}

static unsigned resident_pages(uint8_t *p, unsigned n)
{
	unsigned char vec[n];
	assert_int_equal(mincore(p, n * PAGE, vec), 0);
	unsigned r = 0;
	for (unsigned i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

/* Posts one chain carrying the PFNs on queue q; returns its head. */
static uint16_t post_pfns(struct fixture *f, uint32_t q, const uint32_t *pfns, uint32_t n)
{
	uint32_t *p;
	uint64_t gpa = vtd_alloc(&f->t, n * 4, (void **)&p);
	memcpy(p, pfns, n * 4);
	struct vtd_buf b = { gpa, n * 4, false };
	return vtd_add_chain(&f->t, q, &b, 1);
}

static void used_is(struct fixture *f, uint32_t q, uint16_t head, uint32_t len)
{
	uint32_t id, l;
	assert_int_equal(vtd_get_used(&f->t, q, &id, &l), 1);
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

/* 64 pages in an order that is partly contiguous, partly not. */
static void inflate_64(struct fixture *f)
{
	uint32_t pfns[64];
	for (unsigned i = 0; i < 64; i++)
		pfns[i] = (uint32_t)(BALLOON_GPA / PAGE) + (i < 32 ? i : 95 - i);
	uint16_t head = post_pfns(f, INFLATEQ, pfns, 64);
	vtd_kick(&f->t, INFLATEQ);
	used_is(f, INFLATEQ, head, 0);
	assert_int_equal(stats(f).inflated_pages, 64);
}

static void inflate_frees_anonymous_pages(void **state)
{
	struct fixture *f = *state;
	uint8_t *p = touch_pages(f, BALLOON_GPA, 64);
	assert_int_equal(resident_pages(p, 64), 64);
	inflate_64(f);
	assert_int_equal(resident_pages(p, 64), 0);
	assert_int_equal(p[0], 0); /* a page touched again comes back zeroed */
}

static void inflate_frees_memfd_pages(void **state)
{
	struct fixture *f = *state;
	int fd = f->t.vm.mem.memfd;
	struct stat before, after;
	uint8_t *p = touch_pages(f, BALLOON_GPA, 64);
	/* Rings and the PFN buffer live in [1 MiB, 4 MiB): allocate those pages first so
	 * only the balloon changes the count. */
	memset(guest_mem_ptr(&f->t.vm.mem, 1ULL << 20, 3ULL << 20), 0, 3ULL << 20);
	assert_int_equal(fstat(fd, &before), 0);
	inflate_64(f);
	assert_int_equal(fstat(fd, &after), 0);
	/* st_blocks counts 512-byte blocks: 64 pages are 512 of them. */
	assert_int_equal(before.st_blocks - after.st_blocks, 64 * PAGE / 512);
	assert_int_equal(resident_pages(p, 64), 0);
	assert_int_equal(p[PAGE * 40], 0);
}

static void pfns_outside_ram_are_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t *p = touch_pages(f, BALLOON_GPA, 1);
	uint32_t ram_pages = (uint32_t)((MEM_MIB << 20) / PAGE);
	uint32_t pfns[] = { ram_pages, 0xffffffffu, (uint32_t)(BALLOON_GPA / PAGE),
			    (uint32_t)(0xD0000000ULL / PAGE) };
	uint16_t head = post_pfns(f, INFLATEQ, pfns, 4);
	vtd_kick(&f->t, INFLATEQ);
	used_is(f, INFLATEQ, head, 0);
	assert_int_equal(stats(f).bad_pfns, 3);
	assert_int_equal(stats(f).inflated_pages, 1);
	assert_int_equal(p[0], 0);
}

static void hostile_chains_are_returned_unread(void **state)
{
	struct fixture *f = *state;
	uint8_t *p = touch_pages(f, BALLOON_GPA, 1);
	uint32_t *pfn;
	uint64_t g = vtd_alloc(&f->t, 8, (void **)&pfn);
	pfn[0] = pfn[1] = (uint32_t)(BALLOON_GPA / PAGE);
	struct vtd_buf writable = { g, 8, true }, tiny = { g, 2, false };
	struct vtd_buf mixed[] = { { g, 4, false }, { g + 4, 4, true } };
	uint16_t h1 = vtd_add_chain(&f->t, INFLATEQ, &writable, 1);
	uint16_t h2 = vtd_add_chain(&f->t, INFLATEQ, &tiny, 1);
	uint16_t h3 = vtd_add_chain(&f->t, INFLATEQ, mixed, 2);
	vtd_kick(&f->t, INFLATEQ);
	used_is(f, INFLATEQ, h1, 0);
	used_is(f, INFLATEQ, h2, 0);
	used_is(f, INFLATEQ, h3, 0);
	assert_int_equal(stats(f).chain_errors, 3);
	assert_int_equal(stats(f).inflated_pages, 0);
	assert_int_equal(p[0], 0xa5); /* nothing was freed */
}

static void deflate_is_accepted(void **state)
{
	struct fixture *f = *state;
	uint32_t pfns[] = { 2048, 2049, 2050 };
	uint16_t head = post_pfns(f, DEFLATEQ, pfns, 3);
	vtd_kick(&f->t, DEFLATEQ);
	used_is(f, DEFLATEQ, head, 0);
	assert_int_equal(stats(f).deflated_pages, 3);
}

/* More PFNs than one wakeup may handle: the rest follows after the loop's other work. */
static void a_large_inflate_is_spread_over_wakeups(void **state)
{
	struct fixture *f = *state;
	enum { CHAINS = 5, PER_CHAIN = 4096 };
	static uint32_t pfns[PER_CHAIN];
	for (unsigned i = 0; i < PER_CHAIN; i++)
		pfns[i] = (uint32_t)(BALLOON_GPA / PAGE) + i % 512;
	for (int c = 0; c < CHAINS; c++)
		post_pfns(f, INFLATEQ, pfns, PER_CHAIN);
	vtd_kick(&f->t, INFLATEQ);
	uint32_t id, len;
	int done = 0;
	while (vtd_get_used(&f->t, INFLATEQ, &id, &len))
		done++;
	assert_true(done < CHAINS);
	while (done < CHAINS && vtd_wait_used(&f->t, INFLATEQ, 1000))
		while (vtd_get_used(&f->t, INFLATEQ, &id, &len))
			done++;
	assert_int_equal(done, CHAINS);
}

static void config_and_features(void **state)
{
	struct fixture *f = *state;
	const struct virtio_device_ops *ops = f->t.dev.ops;
	assert_int_equal(ops->num_queues, 2); /* no stats queue without polling */
	uint64_t feat = ops->features(&f->t.dev);
	assert_true(feat & F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_false(feat & F(VIRTIO_BALLOON_F_STATS_VQ));
	uint32_t cfg[2];
	ops->read_config(&f->t.dev, 0, (uint8_t *)cfg, 8);
	assert_int_equal(cfg[0], 4 * 256);
	assert_int_equal(cfg[1], 0);
	uint32_t actual = 700, target = 5;
	ops->write_config(&f->t.dev, 4, (uint8_t *)&actual, 4);
	ops->write_config(&f->t.dev, 0, (uint8_t *)&target, 4); /* read-only for the driver */
	ops->read_config(&f->t.dev, 0, (uint8_t *)cfg, 8);
	assert_int_equal(cfg[0], 4 * 256);
	assert_int_equal(cfg[1], 700);
	assert_int_equal(stats(f).actual_pages, 700);
}

static void target_changes_at_runtime(void **state)
{
	struct fixture *f = *state;
	vtd_interrupts(&f->t);
	uint32_t gen = f->t.dev.config_generation;
	assert_int_equal(virtio_balloon_set_target(&f->t.dev, 10), 0);
	assert_int_equal(stats(f).target_pages, 10 * 256);
	assert_int_equal(f->t.dev.config_generation, gen + 1);
	assert_true(vtd_interrupts(&f->t) > 0);
	assert_true(f->t.dev.interrupt_status & 2); /* configuration change */
	assert_int_equal(virtio_balloon_set_target(&f->t.dev, MEM_MIB + 1), -EINVAL);
	assert_int_equal(stats(f).target_pages, 10 * 256);
	struct virtio_device other = f->t.dev;
	static const struct virtio_device_ops not_a_balloon = { .name = "x" };
	other.ops = &not_a_balloon;
	assert_int_equal(virtio_balloon_set_target(&other, 1), -EINVAL);
}

static void a_target_beyond_ram_is_refused(void **state)
{
	(void)state;
	struct balloon_config cfg = { .amount_mib = MEM_MIB + 1 };
	struct virtio_balloon *b;
	assert_int_equal(virtio_balloon_backend_new(&cfg, MEM_MIB << 20, &b), -EINVAL);
}

/* 5.5.6.3: the device keeps the driver's statistics buffer and returns it at each
 * interval to ask for fresh ones. */
static void stats_are_kept_and_rerequested(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(f->t.dev.ops->num_queues, 3);
	assert_true(f->t.dev.ops->features(&f->t.dev) & F(VIRTIO_BALLOON_F_STATS_VQ));
	uint8_t *p;
	uint64_t g = vtd_alloc(&f->t, 30, (void **)&p);
	const uint16_t tags[] = { VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT, 999 };
	const uint64_t vals[] = { 123, 456, 789 };
	for (int i = 0; i < 3; i++) {
		memcpy(p + 10 * i, &tags[i], 2);
		memcpy(p + 10 * i + 2, &vals[i], 8);
	}
	struct vtd_buf b = { g, 30, false };
	uint16_t head = vtd_add_chain(&f->t, STATSQ, &b, 1);
	vtd_kick(&f->t, STATSQ);
	struct virtio_balloon_stats s = stats(f);
	assert_int_equal(s.reports, 1);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMFREE], 123);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMTOT], 456);
	assert_int_equal(s.valid, F(VIRTIO_BALLOON_S_MEMFREE) | F(VIRTIO_BALLOON_S_MEMTOT));
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, STATSQ, &id, &len), 0); /* held */
	assert_int_equal(vtd_wait_used(&f->t, STATSQ, 2500), 1);	/* the tick */
	used_is(f, STATSQ, head, 0);
}

/* The statistics are the driver's: after a reset (a reboot, another driver) the API
 * shows none until the next driver reports, not the last one's as if they were
 * current. The host's own counters go on. */
static void a_reset_forgets_the_drivers_statistics(void **state)
{
	struct fixture *f = *state;
	uint8_t *p;
	uint64_t g = vtd_alloc(&f->t, 10, (void **)&p);
	const uint16_t tag = VIRTIO_BALLOON_S_MEMFREE;
	const uint64_t val = 4242;
	memcpy(p, &tag, 2);
	memcpy(p + 2, &val, 8);
	struct vtd_buf b = { g, 10, false };
	vtd_add_chain(&f->t, STATSQ, &b, 1);
	vtd_kick(&f->t, STATSQ);
	uint32_t actual = 100;
	virtio_mmio_access(&f->t.dev, 0x100 + 4, (uint8_t *)&actual, 4, true);
	struct virtio_balloon_stats s = stats(f);
	assert_int_equal(s.valid, F(VIRTIO_BALLOON_S_MEMFREE));
	assert_int_equal(s.actual_pages, 100);
	pthread_mutex_lock(&f->t.dev.lock);
	f->t.dev.ops->reset(&f->t.dev);
	pthread_mutex_unlock(&f->t.dev.lock);
	s = stats(f);
	assert_int_equal(s.valid, 0);
	assert_int_equal(s.values[VIRTIO_BALLOON_S_MEMFREE], 0);
	assert_int_equal(s.actual_pages, 0);
	assert_int_equal(s.reports, 1);
	assert_int_equal(s.target_pages, 4 << 8);
}

/* PATCH /balloon/statistics: the interval changes; statistics cannot be switched on
 * or off after creation (Firecracker's rule: the queue exists or it does not). */
static void stats_interval_changes_at_runtime(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(virtio_balloon_set_stats_interval(&f->t.dev, 5), 0);
	assert_int_equal(virtio_balloon_set_stats_interval(&f->t.dev, 0), -EINVAL);
}

static void stats_cannot_be_switched_on_later(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(virtio_balloon_set_stats_interval(&f->t.dev, 5), -EINVAL);
	assert_int_equal(virtio_balloon_set_stats_interval(&f->t.dev, 0), 0);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(inflate_frees_anonymous_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(inflate_frees_memfd_pages, setup_memfd, teardown),
		cmocka_unit_test_setup_teardown(pfns_outside_ram_are_refused, setup_memfd, teardown),
		cmocka_unit_test_setup_teardown(hostile_chains_are_returned_unread, setup, teardown),
		cmocka_unit_test_setup_teardown(deflate_is_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(a_large_inflate_is_spread_over_wakeups, setup,
						teardown),
		cmocka_unit_test_setup_teardown(config_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(target_changes_at_runtime, setup, teardown),
		cmocka_unit_test(a_target_beyond_ram_is_refused),
		cmocka_unit_test_setup_teardown(stats_are_kept_and_rerequested, setup_stats,
						teardown),
		cmocka_unit_test_setup_teardown(a_reset_forgets_the_drivers_statistics, setup_stats,
						teardown),
		cmocka_unit_test_setup_teardown(stats_interval_changes_at_runtime, setup_stats,
						teardown),
		cmocka_unit_test_setup_teardown(stats_cannot_be_switched_on_later, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
