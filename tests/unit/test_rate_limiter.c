/* Token-bucket arithmetic on a virtual clock: start full, linear refill with the
 * fraction carried, one-time burst, requests larger than the bucket, refusals that
 * take nothing, and wait times that are exact (not a nanosecond early or late). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/rate_limiter.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

static void limiter(struct rate_limiter *rl, uint64_t bw_size, uint64_t bw_burst, uint64_t bw_ms,
		    uint64_t ops_size, uint64_t ops_ms)
{
	struct rate_limiter_config cfg = {
		.bandwidth = { .size = bw_size, .one_time_burst = bw_burst, .refill_time_ms = bw_ms },
		.ops = { .size = ops_size, .refill_time_ms = ops_ms },
	};
	rate_limiter_init(rl, &cfg, 0);
}

static void zero_config_limits_nothing(void **state)
{
	struct rate_limiter rl;
	rate_limiter_init(&rl, NULL, 0);
	assert_true(rate_limiter_is_unlimited(&rl));
	for (int i = 0; i < 1000; i++)
		assert_true(rate_limiter_consume(&rl, UINT64_MAX, 0));
	assert_int_equal(rate_limiter_wait_ns(&rl, UINT64_MAX, 0), 0);
	/* A size without a refill time is no limit either (Firecracker). */
	limiter(&rl, 100, 0, 0, 0, 1000);
	assert_true(rate_limiter_is_unlimited(&rl));
	limiter(&rl, 100, 0, 1000, 0, 0);
	assert_false(rate_limiter_is_unlimited(&rl));
}

static void bucket_starts_full_and_refills_linearly(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 1000, 0, 1000, 0, 0); /* 1000 bytes per second: 1 byte per ms */
	assert_true(rate_limiter_consume(&rl, 1000, 0));
	assert_false(rate_limiter_consume(&rl, 1, 0));
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 0), 1 * MS);
	assert_false(rate_limiter_consume(&rl, 1, MS - 1));
	assert_true(rate_limiter_consume(&rl, 1, MS));
	assert_int_equal(rate_limiter_wait_ns(&rl, 250, MS), 250 * MS);
	assert_true(rate_limiter_consume(&rl, 250, 251 * MS));
	assert_int_equal(rl.throttled, 2);
}

static void idle_time_fills_the_bucket_only_to_its_size(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 1000, 0, 1000, 0, 0);
	assert_true(rate_limiter_consume(&rl, 1000, 0));
	assert_true(rate_limiter_consume(&rl, 1000, 3600 * SEC));
	assert_false(rate_limiter_consume(&rl, 1, 3600 * SEC));
}

static void fractions_of_a_token_are_carried(void **state)
{
	/* 3 tokens per 10 ms: one every 3.33 ms. Polling every microsecond must still
	 * earn 3 tokens in 10 ms (each refill may lose under 1 ns to rounding, never a
	 * token): rounding each poll's share down would earn nothing at all. */
	struct rate_limiter rl;
	limiter(&rl, 0, 0, 0, 3, 10);
	for (int i = 0; i < 3; i++)
		assert_true(rate_limiter_consume(&rl, 0, 0));
	int passed = 0;
	for (uint64_t t = 1000; t <= 10 * MS + 1000; t += 1000)
		passed += rate_limiter_consume(&rl, 0, t);
	assert_int_equal(passed, 3);
	assert_false(rate_limiter_consume(&rl, 0, 10 * MS + 1000));
}

static void one_time_burst_is_spent_first_and_never_returns(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 100, 500, 1000, 0, 0);
	assert_true(rate_limiter_consume(&rl, 600, 0)); /* 500 burst + 100 bucket */
	assert_int_equal(rl.bandwidth.burst_left, 0);
	assert_false(rate_limiter_consume(&rl, 1, 0));
	assert_true(rate_limiter_consume(&rl, 100, 10 * SEC));
	assert_false(rate_limiter_consume(&rl, 1, 10 * SEC));
}

static void burst_alone_covers_small_operations(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 100, 1000, 1000, 0, 0);
	for (int i = 0; i < 10; i++)
		assert_true(rate_limiter_consume(&rl, 100, 0)); /* all from the burst */
	assert_int_equal(rl.bandwidth.tokens, 100);
	assert_true(rate_limiter_consume(&rl, 100, 0));
	assert_false(rate_limiter_consume(&rl, 1, 0));
}

static void refusal_takes_nothing_from_either_bucket(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 100, 50, 1000, 1, 1000);
	assert_true(rate_limiter_consume(&rl, 10, 0));
	assert_int_equal(rl.bandwidth.burst_left, 40);
	assert_false(rate_limiter_consume(&rl, 80, 0)); /* ops bucket empty */
	assert_int_equal(rl.bandwidth.burst_left, 40);
	assert_int_equal(rl.bandwidth.tokens, 100);
	assert_int_equal(rl.throttled, 1);
	assert_int_equal(rate_limiter_wait_ns(&rl, 80, 0), SEC);
}

static void larger_than_bucket_passes_when_full_then_repays(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 1000, 0, 1000, 0, 0);
	assert_true(rate_limiter_consume(&rl, 500, 0));
	assert_false(rate_limiter_consume(&rl, 3000, 0));
	assert_int_equal(rate_limiter_wait_ns(&rl, 3000, 0), 500 * MS); /* until full */
	assert_true(rate_limiter_consume(&rl, 3000, 500 * MS));
	/* 2000 bytes of debt at 1 byte/ms, then 1 ms for the next byte. */
	assert_int_equal(rate_limiter_wait_ns(&rl, 1, 500 * MS), 2001 * MS);
	assert_true(rate_limiter_consume(&rl, 0, 500 * MS)); /* no bytes: passes */
	assert_false(rate_limiter_consume(&rl, 1, 2500 * MS));
	assert_true(rate_limiter_consume(&rl, 1, 2501 * MS));
}

static void ops_bucket_counts_requests(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 0, 0, 0, 10, 1000);
	for (int i = 0; i < 10; i++)
		assert_true(rate_limiter_consume(&rl, 1 << 20, 0));
	assert_false(rate_limiter_consume(&rl, 0, 0));
	assert_int_equal(rate_limiter_wait_ns(&rl, 0, 0), 100 * MS);
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

static void wait_time_is_exact(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 4096, 0, 7, 5, 3);
	uint64_t seed = 1, now = 0;
	for (int i = 0; i < 20000; i++) {
		uint64_t bytes = lcg(&seed) % 10000;
		uint64_t w = rate_limiter_wait_ns(&rl, bytes, now);
		if (w > 1) {
			struct rate_limiter copy = rl;
			assert_false(rate_limiter_consume(&copy, bytes, now + w - 1));
		}
		now += w;
		assert_true(rate_limiter_consume(&rl, bytes, now));
		now += lcg(&seed) % 1000;
	}
}

static void long_run_rate_holds_with_any_request_size(void **state)
{
	/* 1 MiB per 100 ms; greedy requests of 0..4 MiB for 10 s of virtual time. */
	const uint64_t size = 1 << 20, period = 100 * MS, span = 10 * SEC;
	struct rate_limiter rl;
	limiter(&rl, size, 0, 100, 0, 0);
	uint64_t seed = 7, now = 0, total = 0, largest = 0, bytes = 0;
	while (now < span) {
		if (!bytes)
			bytes = lcg(&seed) % (4 * size) + 1;
		if (rate_limiter_consume(&rl, bytes, now)) {
			total += bytes;
			largest = bytes > largest ? bytes : largest;
			bytes = 0;
		} else {
			now += rate_limiter_wait_ns(&rl, bytes, now);
		}
	}
	uint64_t allowed = size + size * (span / period); /* the full start plus the refill */
	assert_true(total <= allowed + largest);
	assert_true(total + 2 * largest >= allowed);
}

static void extreme_values_do_not_overflow(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, 0));
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, 1));
	assert_false(rate_limiter_consume(&rl, UINT64_MAX, 2));
	assert_true(rate_limiter_wait_ns(&rl, UINT64_MAX, 2) > 0);
	limiter(&rl, 1, 0, UINT64_MAX, 0, 0);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, UINT64_MAX - 5));
	assert_true(rate_limiter_wait_ns(&rl, 1, UINT64_MAX - 5) > 5); /* no wrap */
	assert_false(rate_limiter_consume(&rl, 1, UINT64_MAX - 1));
	limiter(&rl, 3, 0, 1, 0, 0);
	assert_true(rate_limiter_consume(&rl, UINT64_MAX, 0)); /* debt saturates */
	assert_true(rate_limiter_wait_ns(&rl, 1, 0) > 0);
}

/* Paused time earns nothing: the bucket holds after resume what it held at the pause
 * plus what the running time before and after earned. */
static void paused_time_earns_no_tokens(void **state)
{
	struct rate_limiter rl;
	limiter(&rl, 1000, 0, 1000, 0, 0); /* 1 byte per ms */
	assert_true(rate_limiter_consume(&rl, 1000, 0));
	rate_limiter_clock_stop(100 * MS); /* 100 bytes earned so far */
	rate_limiter_clock_stop(150 * MS); /* stopping twice keeps the first stop */
	assert_false(rate_limiter_consume(&rl, 101, 1000 * MS));
	assert_int_equal(rate_limiter_wait_ns(&rl, 101, 1000 * MS), 1 * MS);
	rate_limiter_clock_start(2100 * MS); /* paused 2 s */
	rate_limiter_clock_start(2200 * MS); /* starting twice changes nothing */
	assert_false(rate_limiter_consume(&rl, 101, 2100 * MS));
	assert_true(rate_limiter_consume(&rl, 100, 2100 * MS));
	assert_int_equal(rate_limiter_wait_ns(&rl, 50, 2100 * MS), 50 * MS);
	assert_true(rate_limiter_consume(&rl, 50, 2150 * MS));
	/* A limiter made while paused starts full and counts from the resume. */
	struct rate_limiter_config cfg = { .bandwidth = { .size = 1000, .refill_time_ms = 1000 } };
	rate_limiter_clock_stop(3000 * MS);
	rate_limiter_init(&rl, &cfg, 4000 * MS);
	rate_limiter_clock_start(5000 * MS);
	assert_true(rate_limiter_consume(&rl, 1000, 5000 * MS));
	assert_int_equal(rate_limiter_wait_ns(&rl, 10, 5000 * MS), 10 * MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zero_config_limits_nothing),
		cmocka_unit_test(bucket_starts_full_and_refills_linearly),
		cmocka_unit_test(idle_time_fills_the_bucket_only_to_its_size),
		cmocka_unit_test(fractions_of_a_token_are_carried),
		cmocka_unit_test(one_time_burst_is_spent_first_and_never_returns),
		cmocka_unit_test(burst_alone_covers_small_operations),
		cmocka_unit_test(refusal_takes_nothing_from_either_bucket),
		cmocka_unit_test(larger_than_bucket_passes_when_full_then_repays),
		cmocka_unit_test(ops_bucket_counts_requests),
		cmocka_unit_test(wait_time_is_exact),
		cmocka_unit_test(long_run_rate_holds_with_any_request_size),
		cmocka_unit_test(extreme_values_do_not_overflow),
		cmocka_unit_test(paused_time_earns_no_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
