/* The descriptor-chain walker against hostile drivers: every malformed ring or chain
 * fails that chain or marks the queue broken; nothing reads outside guest RAM, loops,
 * or grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "virtio_test_driver.h"

#define QSIZE 8
#define ALL_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) | \
		      (1ULL << VIRTIO_F_INDIRECT_DESC))

static const struct virtio_device_ops test_ops = {
	.name = "test", .device_id = 99, .num_queues = 1, .queue_max_size = QSIZE,
};

struct fixture {
	struct vtd t;
	struct virtq_chain chain;
};

static int setup_with(void **state, uint64_t features)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vtd_init(&f->t, &test_ops, NULL, 16, features, QSIZE), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, ALL_FEATURES);
}

static int setup_no_indirect(void **state)
{
	return setup_with(state, 1ULL << VIRTIO_F_VERSION_1);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vtd_destroy(&f->t);
	free(f);
	return 0;
}

static struct virtq *queue(struct fixture *f)
{
	return &f->t.dev.queues[0];
}

static void a_good_chain_is_translated(void **state)
{
	struct fixture *f = *state;
	void *in, *out;
	uint64_t a = vtd_alloc(&f->t, 100, &in), b = vtd_alloc(&f->t, 60, &out);
	memset(in, 'x', 100);
	struct vtd_buf bufs[] = { { a, 100, false }, { b, 60, true } };
	uint16_t head = vtd_add_chain(&f->t, 0, bufs, 2);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 1);
	assert_int_equal(f->chain.head, head);
	assert_int_equal(f->chain.nread, 1);
	assert_int_equal(f->chain.nwrite, 1);
	assert_int_equal(f->chain.read_len, 100);
	assert_int_equal(f->chain.write_len, 60);
	assert_ptr_equal(f->chain.bufs[0].hva, in);
	assert_int_equal(virtq_chain_write(&f->chain, 10, "hello", 5), 5);
	assert_memory_equal((char *)out + 10, "hello", 5);
	assert_int_equal(virtq_chain_write(&f->chain, 58, "hello", 5), 2);
	virtq_push(queue(f), head, 15);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 15);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 0);
}

static void chain_reads_span_buffers(void **state)
{
	struct fixture *f = *state;
	void *p1, *p2;
	uint64_t a = vtd_alloc(&f->t, 4, &p1), b = vtd_alloc(&f->t, 4, &p2);
	memcpy(p1, "abcd", 4);
	memcpy(p2, "efgh", 4);
	struct vtd_buf bufs[] = { { a, 4, false }, { b, 4, false } };
	vtd_add_chain(&f->t, 0, bufs, 2);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 1);
	char got[8] = { 0 };
	assert_int_equal(virtq_chain_read(&f->chain, 2, got, 8), 6);
	assert_memory_equal(got, "cdefgh", 6);
	assert_int_equal(virtq_chain_read(&f->chain, 8, got, 8), 0);
}

/* Writes one descriptor by hand. */
static void put(struct fixture *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		uint16_t next)
{
	vtd_desc_table(&f->t, 0)[i] = (struct vtd_desc){ addr, len, flags, next };
}

static void expect_bad_chain(struct fixture *f, uint16_t head)
{
	vtd_add_head(&f->t, 0, head);
	assert_int_equal(virtq_pop(queue(f), &f->chain), -22);
	assert_int_equal(f->chain.head, head);
	assert_false(queue(f)->broken);
	/* The queue goes on: the next good chain is served. */
	uint64_t a = vtd_alloc(&f->t, 8, NULL);
	put(f, 7, a, 8, 0, 0);
	vtd_add_head(&f->t, 0, 7);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 1);
}

static void a_loop_ends_the_walk(void **state)
{
	struct fixture *f = *state;
	uint64_t a = vtd_alloc(&f->t, 8, NULL);
	put(f, 0, a, 8, VIRTQ_DESC_F_NEXT, 1);
	put(f, 1, a, 8, VIRTQ_DESC_F_NEXT, 0);
	expect_bad_chain(f, 0);
}

static void a_self_loop_ends_the_walk(void **state)
{
	struct fixture *f = *state;
	put(f, 3, vtd_alloc(&f->t, 8, NULL), 8, VIRTQ_DESC_F_NEXT, 3);
	expect_bad_chain(f, 3);
}

static void next_past_the_queue_is_refused(void **state)
{
	struct fixture *f = *state;
	put(f, 0, vtd_alloc(&f->t, 8, NULL), 8, VIRTQ_DESC_F_NEXT, QSIZE);
	expect_bad_chain(f, 0);
}

static void buffers_outside_ram_are_refused(void **state)
{
	struct fixture *f = *state;
	put(f, 0, MIB(16), 8, 0, 0); /* just past the end of RAM */
	expect_bad_chain(f, 0);
	put(f, 1, MIB(16) - 4, 8, 0, 0); /* straddles the end */
	expect_bad_chain(f, 1);
	put(f, 2, UINT64_MAX - 3, 8, 0, 0); /* wraps around */
	expect_bad_chain(f, 2);
	put(f, 3, 0x1000, UINT32_MAX, 0, 0); /* huge */
	expect_bad_chain(f, 3);
	put(f, 4, 0xC0000000ULL, 8, 0, 0); /* the MMIO hole */
	expect_bad_chain(f, 4);
}

static void zero_length_is_refused(void **state)
{
	struct fixture *f = *state;
	put(f, 0, vtd_alloc(&f->t, 8, NULL), 0, 0, 0);
	expect_bad_chain(f, 0);
}

static void readable_after_writable_is_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t a = vtd_alloc(&f->t, 8, NULL);
	put(f, 0, a, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put(f, 1, a, 8, 0, 0);
	expect_bad_chain(f, 0);
}

static void the_longest_chain_is_the_queue_size(void **state)
{
	struct fixture *f = *state;
	uint64_t a = vtd_alloc(&f->t, 8, NULL);
	for (uint16_t i = 0; i < QSIZE; i++)
		put(f, i, a, 8, i + 1 < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	vtd_add_head(&f->t, 0, 0);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 1);
	assert_int_equal(f->chain.nread, QSIZE);
}

static uint64_t indirect_table(struct fixture *f, struct vtd_desc **table, int n)
{
	uint64_t gpa = vtd_alloc(&f->t, (uint32_t)(16 * n), (void **)table);
	return gpa;
}

static void indirect_tables_are_walked(void **state)
{
	struct fixture *f = *state;
	struct vtd_desc *tbl;
	uint64_t t = indirect_table(f, &tbl, 3);
	uint64_t a = vtd_alloc(&f->t, 32, NULL);
	tbl[0] = (struct vtd_desc){ a, 16, VIRTQ_DESC_F_NEXT, 2 };
	tbl[2] = (struct vtd_desc){ a + 16, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1 };
	tbl[1] = (struct vtd_desc){ a, 4, VIRTQ_DESC_F_WRITE, 0 };
	put(f, 0, t, 48, VIRTQ_DESC_F_INDIRECT, 0);
	vtd_add_head(&f->t, 0, 0);
	assert_int_equal(virtq_pop(queue(f), &f->chain), 1);
	assert_int_equal(f->chain.nread, 1);
	assert_int_equal(f->chain.nwrite, 2);
	assert_int_equal(f->chain.write_len, 20);
}

static void bad_indirect_tables_are_refused(void **state)
{
	struct fixture *f = *state;
	struct vtd_desc *tbl;
	uint64_t t = indirect_table(f, &tbl, 2);
	uint64_t a = vtd_alloc(&f->t, 8, NULL);
	tbl[0] = (struct vtd_desc){ a, 8, VIRTQ_DESC_F_NEXT, 1 };
	tbl[1] = (struct vtd_desc){ a, 8, VIRTQ_DESC_F_NEXT, 0 }; /* loop */
	put(f, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_bad_chain(f, 0);
	tbl[1] = (struct vtd_desc){ t, 32, VIRTQ_DESC_F_INDIRECT, 0 }; /* nested */
	put(f, 1, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_bad_chain(f, 1);
	put(f, 2, t, 24, VIRTQ_DESC_F_INDIRECT, 0); /* not a multiple of 16 */
	expect_bad_chain(f, 2);
	put(f, 3, t, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 4); /* both flags */
	expect_bad_chain(f, 3);
	put(f, 4, t, 16 * (QSIZE + 1), VIRTQ_DESC_F_INDIRECT, 0); /* longer than the queue */
	expect_bad_chain(f, 4);
	tbl[0] = (struct vtd_desc){ a, 8, VIRTQ_DESC_F_NEXT, 9 }; /* next past the table */
	put(f, 5, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_bad_chain(f, 5);
}

static void indirect_without_the_feature_is_refused(void **state)
{
	struct fixture *f = *state;
	struct vtd_desc *tbl;
	uint64_t t = indirect_table(f, &tbl, 1);
	tbl[0] = (struct vtd_desc){ vtd_alloc(&f->t, 8, NULL), 8, 0, 0 };
	put(f, 0, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_bad_chain(f, 0);
}

static void a_runaway_avail_index_breaks_the_queue(void **state)
{
	struct fixture *f = *state;
	vtd_set_avail_idx(&f->t, 0, QSIZE + 1);
	assert_int_equal(virtq_pop(queue(f), &f->chain), -5);
	assert_true(queue(f)->broken);
	assert_int_equal(virtq_pop(queue(f), &f->chain), -5);
	assert_int_equal(virtq_available(queue(f)), 0);
}

static void a_head_past_the_queue_breaks_it(void **state)
{
	struct fixture *f = *state;
	vtd_add_head(&f->t, 0, QSIZE + 3);
	assert_int_equal(virtq_pop(queue(f), &f->chain), -5);
	assert_true(queue(f)->broken);
}

static void activation_checks_size_and_rings(void **state)
{
	struct fixture *f = *state;
	struct virtq vq = *queue(f);
	struct guest_mem *mem = &f->t.vm.mem;
	vq.size = 0;
	assert_int_equal(virtq_activate(&vq, mem, true, true), -22);
	vq.size = 6;
	assert_int_equal(virtq_activate(&vq, mem, true, true), -22);
	vq.size = 2048;
	assert_int_equal(virtq_activate(&vq, mem, true, true), -22);
	vq = *queue(f);
	vq.desc_gpa += 8; /* misaligned */
	assert_int_equal(virtq_activate(&vq, mem, true, true), -22);
	assert_false(vq.ready);
	vq = *queue(f);
	vq.used_gpa = MIB(16) - 8; /* runs off the end of RAM */
	assert_int_equal(virtq_activate(&vq, mem, true, true), -22);
	vq = *queue(f);
	assert_int_equal(virtq_activate(&vq, mem, true, true), 0);
	assert_true(vq.ready);
}

static void event_idx_suppresses_interrupts(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = queue(f);
	uint16_t *used_event = (uint16_t *)vq->avail + 2 + QSIZE;
	*used_event = 1; /* interrupt me when the used index passes 1 */
	virtq_push(vq, 0, 0);
	assert_true(virtq_should_notify(vq)); /* the first one always signals */
	virtq_push(vq, 0, 0);
	assert_true(virtq_should_notify(vq)); /* used_idx went 1 -> 2: crossed 1 */
	virtq_push(vq, 0, 0);
	assert_false(virtq_should_notify(vq)); /* 2 -> 3: the driver did not ask */
	*used_event = 5;
	virtq_push(vq, 0, 0);
	virtq_push(vq, 0, 0);
	virtq_push(vq, 0, 0);
	assert_true(virtq_should_notify(vq)); /* 3 -> 6 crossed 5 */
	/* avail_event tells the driver how far the device has read. */
	uint16_t *avail_event = (uint16_t *)((uint8_t *)vq->used + 4 + 8 * QSIZE);
	assert_false(virtq_enable_notify(vq));
	assert_int_equal(*avail_event, vq->last_avail_idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_good_chain_is_translated, setup, teardown),
		cmocka_unit_test_setup_teardown(chain_reads_span_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(a_loop_ends_the_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(a_self_loop_ends_the_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(next_past_the_queue_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(buffers_outside_ram_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_length_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(readable_after_writable_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(the_longest_chain_is_the_queue_size, setup, teardown),
		cmocka_unit_test_setup_teardown(indirect_tables_are_walked, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_indirect_tables_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(indirect_without_the_feature_is_refused,
						setup_no_indirect, teardown),
		cmocka_unit_test_setup_teardown(a_runaway_avail_index_breaks_the_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(a_head_past_the_queue_breaks_it, setup, teardown),
		cmocka_unit_test_setup_teardown(activation_checks_size_and_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(event_idx_suppresses_interrupts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
