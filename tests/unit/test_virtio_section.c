/* A virtio device's transport in the snapshot file (snapshot/virtio_section.h): what
 * is written reads back the same and goes back into a device with its queues
 * running on from the same indices; a hostile section (a queue size not a power of
 * two, rings outside memory, an index beyond the ring, features not offered, status
 * bits out of order) is refused with one line naming the field, before anything is
 * put into the device. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "snapshot/virtio_section.h"
#include "virtio_test_driver.h"

#define FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) | 1ULL)

static const struct virtio_device_ops test_ops = {
	.name = "test", .device_id = VIRTIO_ID_RNG, .num_queues = 2, .queue_max_size = 64,
};

static char path[64];
static struct vtd t;
static char err[512];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/argon-virtio-section-%d.snap", getpid());
	assert_int_equal(vtd_init(&t, &test_ops, NULL, 16, FEATURES, 0), 0);
	return 0;
}

static int teardown(void **state)
{
	vtd_destroy(&t);
	unlink(path);
	return 0;
}

/* Writes s as the only section ("entropy"/"entropy") and reads it back against the
 * test device: 0, or -EINVAL with the line in err. */
static int round_trip(const struct virtio_transport_state *s, struct virtio_transport_state *out)
{
	struct snap_writer *w;
	assert_int_equal(snap_writer_create(path, &w, err, sizeof(err)), 0);
	assert_int_equal(snap_section_begin(w, "entropy", "entropy", 1), 0);
	virtio_section_put(w, s);
	assert_int_equal(snap_section_end(w), 0);
	assert_int_equal(snap_writer_commit(w, err, sizeof(err)), 0);
	struct snap_reader *r;
	assert_int_equal(snap_reader_open(path, &r, err, sizeof(err)), 0);
	struct section_in in;
	assert_int_equal(section_in_open(&in, r, path, "entropy", "entropy", 1, err, sizeof(err)), 0);
	virtio_section_get(&in, &t.dev, out);
	int rc = section_in_close(&in);
	snap_reader_close(r);
	return rc;
}

/* The device after the driver took two chains off queue 0 and answered one. */
static void busy_state(struct virtio_transport_state *s)
{
	struct vtd_buf b = { .gpa = vtd_alloc(&t, 64, NULL), .len = 64, .write = true };
	for (int i = 0; i < 3; i++)
		vtd_add_chain(&t, 0, &b, 1);
	struct virtq_chain *c = malloc(sizeof(*c));
	assert_non_null(c);
	assert_int_equal(virtq_pop(&t.dev.queues[0], c), 1);
	assert_int_equal(virtq_pop(&t.dev.queues[0], c), 1);
	virtq_push(&t.dev.queues[0], c->head, 8);
	free(c);
	t.dev.interrupt_status = VIRTIO_INTERRUPT_USED_BUFFER;
	t.dev.config_generation = 3;
	virtio_mmio_get_state(&t.dev, s);
}

static void test_round_trip(void **state)
{
	struct virtio_transport_state s, back;
	busy_state(&s);
	assert_int_equal(s.queues[0].last_avail_idx, 2);
	assert_int_equal(s.queues[0].used_idx, 1);
	assert_int_equal(round_trip(&s, &back), 0);
	assert_memory_equal(&s, &back, sizeof(s));
	/* Into a device reset meanwhile: the queue takes up where it was. */
	virtq_reset(&t.dev.queues[0]);
	t.dev.status = 0;
	assert_int_equal(virtio_mmio_set_state(&t.dev, &back), 0);
	struct virtq *vq = &t.dev.queues[0];
	assert_true(vq->ready);
	assert_int_equal(vq->last_avail_idx, 2);
	assert_int_equal(vq->used_idx, 1);
	assert_int_equal(virtq_available(vq), 1);
	assert_int_equal(t.dev.status, s.status);
	assert_int_equal(t.dev.config_generation, 3);
}

/* Each hostile change is refused naming its field. */
static void refused(struct virtio_transport_state *s, const char *field)
{
	struct virtio_transport_state back;
	assert_int_equal(round_trip(s, &back), -EINVAL);
	if (!strstr(err, field) || !strstr(err, path) || strchr(err, '\n'))
		fail_msg("expected one line naming %s, got: %s", field, err);
}

static void test_hostile_sections(void **state)
{
	struct virtio_transport_state good, s;
	virtio_mmio_get_state(&t.dev, &good);
	s = good, s.queues[1].size = 48;
	refused(&s, "field queues[1].size: 48: expected a power of two up to 64");
	s = good, s.queues[0].size = 128;
	refused(&s, "queues[0].size");
	s = good, s.queues[0].used_gpa = (16ULL << 20) - 8;
	refused(&s, "queues[0].desc");
	s = good, s.queues[0].avail_gpa = 0x10001;
	refused(&s, "queues[0].desc");
	s = good, s.queues[0].last_avail_idx = (uint16_t)(s.queues[0].last_avail_idx - 65);
	refused(&s, "queues[0].last_avail_idx");
	s = good, s.queues[0].used_idx = (uint16_t)(s.queues[0].last_avail_idx - 65);
	refused(&s, "queues[0].used_idx");
	s = good, s.queues[0].used_idx--;
	refused(&s, "the used ring in memory says");
	s = good, s.driver_features |= 1ULL << 40;
	refused(&s, "driver_features: 0x");
	s = good, s.device_features |= 2;
	refused(&s, "device_features");
	s = good, s.status = VIRTIO_STATUS_DRIVER_OK;
	refused(&s, "DRIVER_OK without FEATURES_OK");
	s = good, s.status |= 0x20;
	refused(&s, "status");
	s = good, s.interrupt_status = 4;
	refused(&s, "interrupt_status");
	s = good, s.queues[0].event_idx = false;
	refused(&s, "queues[0].event_idx");
	s = good, s.device_id = VIRTIO_ID_BLOCK;
	refused(&s, "device_id");
	s = good, s.num_queues = 3;
	refused(&s, "num_queues");
	s = good, s.mmio_base = 0xd0000000;
	refused(&s, "mmio_base");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_sections, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
