/* virtio-rng through the fake driver: writable buffers are filled, each request is
 * bounded, hostile chains come back empty, the rate limiter parks and resumes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "devices/virtio_rng.h"
#include "virtio_test_driver.h"

#define QSIZE 16
#define FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX))

struct fixture {
	struct vtd t;
	struct virtio_rng *rng;
};

static int setup_with(void **state, const struct entropy_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	struct entropy_config def = { 0 };
	assert_int_equal(virtio_rng_backend_new(cfg ? cfg : &def, &f->rng), 0);
	assert_int_equal(vtd_init(&f->t, &virtio_rng_ops, f->rng, 16, FEATURES, QSIZE), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

static int setup_limited(void **state)
{
	/* 4 KiB per 100 ms. */
	struct entropy_config cfg = { 0 };
	cfg.rate_limiter.bandwidth = (struct token_bucket_config){ .size = 4096,
								   .refill_time_ms = 100 };
	return setup_with(state, &cfg);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vtd_destroy(&f->t);
	virtio_rng_backend_free(f->rng);
	free(f);
	return 0;
}

static struct virtio_rng_stats stats(struct fixture *f)
{
	struct virtio_rng_stats s;
	virtio_rng_get_stats(&f->t.dev, &s);
	return s;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static uint16_t post(struct fixture *f, uint32_t len, bool write, uint8_t **hva)
{
	uint64_t gpa = vtd_alloc(&f->t, len, (void **)hva);
	memset(*hva, 0, len);
	struct vtd_buf b = { gpa, len, write };
	return vtd_add_chain(&f->t, 0, &b, 1);
}

static void used_is(struct fixture *f, uint16_t head, uint32_t len)
{
	uint32_t id, l;
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &l), 1);
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

static void fills_writable_buffers(void **state)
{
	struct fixture *f = *state;
	uint8_t *a, *b;
	uint64_t ga = vtd_alloc(&f->t, 100, (void **)&a), gb = vtd_alloc(&f->t, 200, (void **)&b);
	memset(a, 0, 100);
	memset(b, 0, 200);
	struct vtd_buf bufs[] = { { ga, 100, true }, { gb, 200, true } };
	uint16_t head = vtd_add_chain(&f->t, 0, bufs, 2);
	vtd_kick(&f->t, 0);
	used_is(f, head, 300);
	assert_false(all_zero(a, 100));
	assert_false(all_zero(b + 100, 100));
	assert_int_equal(stats(f).bytes, 300);
	assert_true(vtd_interrupts(&f->t) > 0);
}

/* At most 64 KiB per request: what lies beyond stays untouched. */
static void a_request_is_bounded(void **state)
{
	struct fixture *f = *state;
	uint8_t *a, *b;
	uint64_t ga = vtd_alloc(&f->t, 65536, (void **)&a), gb = vtd_alloc(&f->t, 4096, (void **)&b);
	memset(a, 0, 65536);
	memset(b, 0, 4096);
	struct vtd_buf bufs[] = { { ga, 65536, true }, { gb, 4096, true } };
	uint16_t head = vtd_add_chain(&f->t, 0, bufs, 2);
	vtd_kick(&f->t, 0);
	used_is(f, head, VIRTIO_RNG_MAX_CHAIN_BYTES);
	assert_false(all_zero(a + 65536 - 64, 64));
	assert_true(all_zero(b, 4096));
}

static void hostile_chains_come_back_empty(void **state)
{
	struct fixture *f = *state;
	uint8_t *r, *ok;
	uint16_t h_read = post(f, 64, false, &r);
	uint64_t g = vtd_alloc(&f->t, 64, NULL);
	struct vtd_buf mixed[] = { { g, 32, false }, { g + 32, 32, true } };
	uint16_t h_mixed = vtd_add_chain(&f->t, 0, mixed, 2);
	struct vtd_buf zero[] = { { g, 0, true } };
	uint16_t h_zero = vtd_add_chain(&f->t, 0, zero, 1);
	struct vtd_buf outside = { 1ULL << 40, 64, true };
	uint16_t h_outside = vtd_add_chain(&f->t, 0, &outside, 1);
	uint16_t h_ok = post(f, 64, true, &ok);
	vtd_kick(&f->t, 0);
	used_is(f, h_read, 0);
	used_is(f, h_mixed, 0);
	used_is(f, h_zero, 0);
	used_is(f, h_outside, 0);
	used_is(f, h_ok, 64);
	assert_true(all_zero(r, 64)); /* a device-readable buffer is never written */
	assert_int_equal(stats(f).errors, 4);
	assert_int_equal(stats(f).requests, 1);
}

static void many_requests_in_one_wakeup(void **state)
{
	struct fixture *f = *state;
	uint8_t *p;
	for (int i = 0; i < QSIZE; i++)
		post(f, 32, true, &p);
	vtd_kick(&f->t, 0);
	uint32_t id, len;
	for (int i = 0; i < QSIZE; i++) {
		assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 1);
		assert_int_equal(len, 32);
	}
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 0);
}

static void a_broken_ring_needs_reset(void **state)
{
	struct fixture *f = *state;
	vtd_set_avail_idx(&f->t, 0, 500);
	vtd_kick(&f->t, 0);
	assert_true(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
}

static void rate_limiter_parks_then_resumes(void **state)
{
	struct fixture *f = *state;
	uint8_t *a, *b;
	uint16_t h1 = post(f, 4096, true, &a), h2 = post(f, 4096, true, &b);
	vtd_kick(&f->t, 0);
	used_is(f, h1, 4096);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, 0, &id, &len), 0);
	assert_int_equal(stats(f).throttled, 1);
	assert_int_equal(vtd_wait_used(&f->t, 0, 1000), 1);
	used_is(f, h2, 4096);
	assert_false(all_zero(b, 4096));
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fills_writable_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(a_request_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_chains_come_back_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(many_requests_in_one_wakeup, setup, teardown),
		cmocka_unit_test_setup_teardown(a_broken_ring_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(rate_limiter_parks_then_resumes, setup_limited,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
