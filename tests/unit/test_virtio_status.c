/* virtio-mmio's device status (virtio 1.2, 2.1 and 3.1.1) driven through the
 * registers as a hostile driver would: a device starts only on DRIVER_OK after
 * FEATURES_OK was accepted, never after FAILED; NEEDS_RESET is the device's alone;
 * and a driver that floods refused register writes gets a few log lines, not one
 * per write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "devices/virtio_rng.h"
#include "virtio_test_driver.h"

#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DEVICE_LOW 0x0a0

#define ACK VIRTIO_STATUS_ACKNOWLEDGE
#define DRIVER VIRTIO_STATUS_DRIVER
#define FEATURES_OK VIRTIO_STATUS_FEATURES_OK
#define DRIVER_OK VIRTIO_STATUS_DRIVER_OK
#define NEEDS_RESET VIRTIO_STATUS_NEEDS_RESET
#define FAILED VIRTIO_STATUS_FAILED
#define VERSION_1_HIGH (1u << (VIRTIO_F_VERSION_1 - 32))

static int activations;

static int count_activate(struct virtio_device *dev)
{
	activations++;
	return 0;
}

static const struct virtio_device_ops counting_ops = {
	.name = "counting", .device_id = 4, .num_queues = 1, .queue_max_size = 16,
	.activate = count_activate,
};

static uint32_t read_reg(struct vtd *t, uint64_t reg)
{
	uint32_t v;
	virtio_mmio_access(&t->dev, reg, (uint8_t *)&v, 4, false);
	return v;
}

static void write_reg(struct vtd *t, uint64_t reg, uint32_t v)
{
	virtio_mmio_access(&t->dev, reg, (uint8_t *)&v, 4, true);
}

/* A device fresh from a reset, its driver at ACKNOWLEDGE | DRIVER. */
static struct vtd *reset_device(const struct virtio_device_ops *ops, void *backend)
{
	static struct vtd t;
	assert_int_equal(vtd_init(&t, ops, backend, 2, 1ULL << VIRTIO_F_VERSION_1, 0), 0);
	write_reg(&t, REG_STATUS, 0);
	activations = 0;
	write_reg(&t, REG_STATUS, ACK);
	write_reg(&t, REG_STATUS, ACK | DRIVER);
	return &t;
}

static void write_features(struct vtd *t, uint32_t low, uint32_t high)
{
	write_reg(t, REG_DRIVER_FEATURES_SEL, 0);
	write_reg(t, REG_DRIVER_FEATURES, low);
	write_reg(t, REG_DRIVER_FEATURES_SEL, 1);
	write_reg(t, REG_DRIVER_FEATURES, high);
}

static void the_handshake_starts_the_device_once(void **state)
{
	struct vtd *t = reset_device(&counting_ops, NULL);
	write_features(t, 0, VERSION_1_HIGH);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK);
	assert_int_equal(read_reg(t, REG_STATUS), ACK | DRIVER | FEATURES_OK);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_int_equal(activations, 1);
	assert_true(virtio_device_running(&t->dev));
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_int_equal(activations, 1); /* DRIVER_OK again is not a new start */
	vtd_destroy(t);
}

static void driver_ok_without_features_ok_does_not_start(void **state)
{
	struct vtd *t = reset_device(&counting_ops, NULL);
	write_features(t, 0, VERSION_1_HIGH);
	write_reg(t, REG_STATUS, ACK | DRIVER | DRIVER_OK);
	assert_int_equal(activations, 0);
	assert_true(read_reg(t, REG_STATUS) & NEEDS_RESET);
	assert_false(virtio_device_running(&t->dev));
	/* FEATURES_OK afterwards changes nothing: only a reset does. */
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_int_equal(activations, 0);
	assert_false(virtio_device_running(&t->dev));
	vtd_destroy(t);
}

static void refused_features_leave_the_device_stopped(void **state)
{
	uint32_t cases[][2] = {
		{ 0, 0 },			 /* no VERSION_1 */
		{ 1u << 5, VERSION_1_HIGH },	 /* a bit never offered */
		{ 0, VERSION_1_HIGH | 1u << 31 }, /* a high bit never offered */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vtd *t = reset_device(&counting_ops, NULL);
		write_features(t, cases[i][0], cases[i][1]);
		write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK);
		assert_int_equal(read_reg(t, REG_STATUS) & FEATURES_OK, 0); /* 3.1.1: refused */
		write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
		assert_int_equal(activations, 0);
		assert_true(read_reg(t, REG_STATUS) & NEEDS_RESET);
		vtd_destroy(t);
	}
}

static void the_driver_cannot_set_needs_reset(void **state)
{
	struct vtd *t = reset_device(&counting_ops, NULL);
	write_reg(t, REG_STATUS, ACK | DRIVER | NEEDS_RESET);
	assert_int_equal(read_reg(t, REG_STATUS), ACK | DRIVER);
	vtd_destroy(t);
}

static void failed_stops_the_device(void **state)
{
	struct vtd *t = reset_device(&counting_ops, NULL);
	write_features(t, 0, VERSION_1_HIGH);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
	assert_true(virtio_device_running(&t->dev));
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED);
	assert_false(virtio_device_running(&t->dev));
	vtd_destroy(t);
	/* And FAILED before DRIVER_OK: never started. */
	t = reset_device(&counting_ops, NULL);
	write_features(t, 0, VERSION_1_HIGH);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | FAILED);
	write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK | FAILED | DRIVER_OK);
	assert_int_equal(activations, 0);
	assert_false(virtio_device_running(&t->dev));
	vtd_destroy(t);
}

/* Queue 0 laid out by vtd, made ready again through the registers after a reset. */
static void make_queue_ready(struct vtd *t)
{
	struct vtd_queue *q = &t->q[0];
	write_reg(t, REG_QUEUE_SEL, 0);
	write_reg(t, REG_QUEUE_NUM, q->size);
	write_reg(t, REG_QUEUE_DESC_LOW, (uint32_t)q->desc_gpa);
	write_reg(t, REG_QUEUE_DESC_HIGH, (uint32_t)(q->desc_gpa >> 32));
	write_reg(t, REG_QUEUE_DRIVER_LOW, (uint32_t)q->avail_gpa);
	write_reg(t, REG_QUEUE_DEVICE_LOW, (uint32_t)q->used_gpa);
	write_reg(t, REG_QUEUE_READY, 1);
	assert_int_equal(read_reg(t, REG_QUEUE_READY), 1);
}

/* A real device (virtio-rng) whose driver skipped FEATURES_OK: a buffer it posts and
 * kicks is never used. */
static void an_unnegotiated_device_uses_no_buffer(void **state)
{
	struct entropy_config cfg = { 0 };
	struct virtio_rng *rng;
	assert_int_equal(virtio_rng_backend_new(&cfg, &rng), 0);
	struct vtd *t = reset_device(&virtio_rng_ops, rng);
	write_features(t, 0, VERSION_1_HIGH);
	make_queue_ready(t);
	write_reg(t, REG_STATUS, ACK | DRIVER | DRIVER_OK);
	struct vtd_buf b = { vtd_alloc(t, 64, NULL), 64, true };
	vtd_add_chain(t, 0, &b, 1);
	vtd_kick(t, 0);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(t, 0, &id, &len), 0);
	vtd_destroy(t);
	virtio_rng_backend_free(rng);
}

static size_t count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = 0;
	for (int c; (c = fgetc(fp)) != EOF;)
		n += c == '\n';
	fclose(fp);
	return n;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 100,000 refused writes of three kinds: a few lines a second, the rest counted. */
static void a_flood_of_refused_writes_logs_a_few_lines(void **state)
{
	char path[] = "/tmp/argon-status-log-XXXXXX", err[128];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	log_set_level(LOG_WARN);
	assert_int_equal(log_set_destination(path, err, sizeof(err)), 0);
	struct vtd *t = reset_device(&counting_ops, NULL);
	make_queue_ready(t);
	uint64_t held = log_lines_suppressed();
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		write_reg(t, REG_QUEUE_SEL, 0);
		write_reg(t, REG_QUEUE_DESC_LOW, (uint32_t)i); /* the queue is ready: refused */
		write_features(t, 0, 0);
		write_reg(t, REG_STATUS, ACK | DRIVER | FEATURES_OK); /* refused: no VERSION_1 */
	}
	double secs = seconds_since(&t0);
	log_set_destination(NULL, err, sizeof(err));
	log_set_level(LOG_ERROR);
	size_t lines = count_lines(path);
	unlink(path);
	/* One window per started second, LOG_LIMIT_PROCESS lines in each at most. */
	size_t bound = (size_t)LOG_LIMIT_PROCESS * (size_t)(secs + 1.0);
	if (lines < 2 || lines > bound)
		fail_msg("%zu log lines for %d refused writes in %.2f s (expected 2..%zu)", lines,
			 2 * n, secs, bound);
	assert_true(log_lines_suppressed() - held >= (uint64_t)(2 * n) - lines);
	vtd_destroy(t);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_handshake_starts_the_device_once),
		cmocka_unit_test(driver_ok_without_features_ok_does_not_start),
		cmocka_unit_test(refused_features_leave_the_device_stopped),
		cmocka_unit_test(the_driver_cannot_set_needs_reset),
		cmocka_unit_test(failed_stops_the_device),
		cmocka_unit_test(an_unnegotiated_device_uses_no_buffer),
		cmocka_unit_test(a_flood_of_refused_writes_logs_a_few_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
