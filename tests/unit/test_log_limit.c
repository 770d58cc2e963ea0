/* The rate limits on lines a guest can trigger (common/log.h), with the clock in the
 * test's hands: LOG_LIMIT_BURST lines per limiter and LOG_LIMIT_PROCESS for all of
 * them in a window, the held-back count carried to the next line let through.
 * The process-wide window is shared by every test, so each test starts its clock
 * far from the others'. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"

#define SEC 1000000000ULL

static unsigned allowed(struct log_limit *l, uint64_t now, unsigned calls, uint64_t *last_held)
{
	unsigned n = 0;
	for (unsigned i = 0; i < calls; i++) {
		uint64_t held;
		if (log_limit_allow(l, now, &held)) {
			n++;
			*last_held = held;
		}
	}
	return n;
}

static void one_limiter_lets_a_burst_through_per_window(void **state)
{
	struct log_limit l = { 0 };
	uint64_t base = 100 * SEC, held = 99, before = log_lines_suppressed();
	assert_int_equal(allowed(&l, base, 1000, &held), LOG_LIMIT_BURST);
	assert_int_equal(held, 0);
	assert_int_equal(log_lines_suppressed() - before, 1000 - LOG_LIMIT_BURST);
	/* Still inside the window: nothing more. */
	assert_int_equal(allowed(&l, base + SEC - 1, 10, &held), 0);
	/* The next window: the first line carries what was held back. */
	assert_int_equal(allowed(&l, base + SEC, 1, &held), 1);
	assert_int_equal(held, 1000 - LOG_LIMIT_BURST + 10);
	assert_int_equal(allowed(&l, base + SEC, 1, &held), 1);
	assert_int_equal(held, 0);
}

static void all_limiters_share_the_process_budget(void **state)
{
	struct log_limit a = { 0 }, b = { 0 }, c = { 0 };
	uint64_t base = 200 * SEC, held;
	unsigned na = allowed(&a, base, 100, &held);
	unsigned nb = allowed(&b, base, 100, &held);
	unsigned nc = allowed(&c, base, 100, &held);
	assert_int_equal(na, LOG_LIMIT_BURST);
	assert_int_equal(na + nb + nc, LOG_LIMIT_PROCESS);
	/* A flood across many limiters over ten seconds: ten windows' worth at most. */
	struct log_limit many[64] = { 0 };
	unsigned total = 0;
	for (uint64_t t = 0; t < 10 * SEC; t += SEC / 100)
		for (int i = 0; i < 64; i++)
			total += allowed(&many[i], base + 2 * SEC + t, 1, &held);
	assert_true(total <= 10 * LOG_LIMIT_PROCESS);
	assert_true(total >= 9 * LOG_LIMIT_PROCESS);
}

/* log_limited itself: a line per limiter burst goes out, with the held count. */
static void limited_lines_reach_the_log_with_the_held_count(void **state)
{
	char path[] = "/tmp/argon-log-limit-XXXXXX", err[128];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	log_set_level(LOG_WARN);
	assert_int_equal(log_set_destination(path, err, sizeof(err)), 0);
	struct log_limit l = { 0 };
	for (int i = 0; i < 50; i++)
		log_warn_limited(&l, "refused %d", i);
	/* Below the level: neither logged nor counted. */
	uint64_t before = log_lines_suppressed();
	log_limited(&l, LOG_DEBUG, __func__, "debug %d", 1);
	assert_int_equal(log_lines_suppressed(), before);
	log_set_destination(NULL, err, sizeof(err));
	log_set_level(LOG_ERROR);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), fp))
		n++;
	fclose(fp);
	unlink(path);
	/* At most one window may have turned over while the loop ran. */
	assert_true(n >= 1 && n <= 2 * LOG_LIMIT_BURST);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_limiter_lets_a_burst_through_per_window),
		cmocka_unit_test(all_limiters_share_the_process_budget),
		cmocka_unit_test(limited_lines_reach_the_log_with_the_held_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
