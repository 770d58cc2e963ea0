/* virtio-abuse DEVICE CASE [N]: a driver that breaks virtio 1.2's rules, played
 * against the first device named DEVICE (rng, vsock, ...), so that tests can
 * check what the device does with it (3.1.1 negotiation, 2.1.2 status, 4.2.3.2
 * queue registers, 2.7 rings) and what it costs the host (its log). Each case
 * prints one line of facts; judging them is the test's job. The device's own
 * driver starts it afresh the next time a command needs it.
 *
 * Buffer cases post one 64-byte device-writable buffer on queue 0 and kick it,
 * which a virtio-rng device fills at once; flood cases repeat one write the
 * device must refuse N times. */
#include "commands/commands.h"
#include "cpu.h"
#include "page_alloc.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "timer.h"
#include "virtio/virtqueue.h"

#define QUEUE_SIZE 16
#define BAD_QUEUE_SIZE 3 /* not a power of two (2.7) */
#define BUF_BYTES 64
#define USED_TIMEOUT_US 1000000
#define NEEDS_RESET_TIMEOUT_US 100000
#define MAX_COUNT 10000000

#define STATUS_STARTING (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)

struct abuse;

/* Buffer cases: how the driver starts the device before it posts a buffer. */
struct play {
	bool unoffered;	  /* accept a feature never offered, and no VERSION_1 */
	bool features_ok; /* write FEATURES_OK (refused with unoffered) */
	uint32_t after;	  /* status bits written after DRIVER_OK, in a write of their own */
};

struct abuse_case {
	const char *name;
	bool counted; /* takes N */
	int (*run)(struct abuse *a);
	struct play play; /* for run_play */
};

struct abuse {
	const struct abuse_case *c;
	struct virtio_dev *d;
	struct virtq vq;
	uint64_t count; /* N */
};

/* 3.1.1 steps 1-3: reset, ACKNOWLEDGE, DRIVER; the device's features read. */
static bool begin(struct abuse *a)
{
	a->d->started = false;
	a->d->driver = 0; /* whatever its driver had set up is gone */
	if (!virtio_reset(a->d)) {
		printf("virtio-abuse: reset did not complete\n");
		return false;
	}
	virtio_add_status(a->d, STATUS_STARTING);
	a->d->offered = virtio_device_features(a->d);
	virtio_route_irq(a->d);
	return true;
}

static uint64_t good_features(const struct virtio_dev *d)
{
	return d->offered & (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_EVENT_IDX));
}

/* A feature bit the device did not offer (3.1.1: the driver must not accept it). */
static uint64_t unoffered_feature(const struct virtio_dev *d)
{
	int bit = 63;

	while (bit > 0 && (d->offered & BIT(bit)))
		bit--;
	return BIT(bit);
}

static void set_features(struct abuse *a, uint64_t f)
{
	a->d->features = f; /* what our queue code then assumes (EVENT_IDX) */
	virtio_write_features(a->d, f);
}

/* 3.1.1 steps 4-6 done right: VERSION_1 (and EVENT_IDX), FEATURES_OK. */
static void negotiate(struct abuse *a)
{
	set_features(a, good_features(a->d));
	virtio_add_status(a->d, VIRTIO_STATUS_FEATURES_OK);
}

/* A well-behaved start: negotiation, queue 0, DRIVER_OK. */
static bool start_normally(struct abuse *a)
{
	if (!begin(a))
		return false;
	negotiate(a);
	if (vq_setup(&a->vq, a->d, 0, QUEUE_SIZE))
		return false;
	virtio_add_status(a->d, VIRTIO_STATUS_DRIVER_OK);
	return true;
}

static uint64_t elapsed_ms(uint64_t t0)
{
	return tsc_to_ns(rdtsc() - t0) / 1000000;
}

static void print_flood(const struct abuse *a, uint64_t done, uint64_t t0)
{
	uint64_t ms = elapsed_ms(t0);

	printf("virtio-abuse: %s %s count %lu ms %lu status 0x%x\n", virtio_name(a->d->device_id),
	       a->c->name, done, ms, virtio_status(a->d));
}

/* Posts one device-writable buffer on queue 0, kicks, and waits up to a second
 * for the device to use it. */
static bool post_and_wait(struct abuse *a)
{
	uint8_t *buf = mem_alloc_zeroed(BUF_BYTES, 64);
	struct vq_buf b = { (uint64_t)buf, BUF_BYTES, true };

	if (!buf || vq_add(&a->vq, &b, 1, buf))
		return false;
	if (!vq_kick(&a->vq)) /* the device did not ask: kick anyway, that is the test */
		virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_NOTIFY, a->vq.index);
	return vq_wait_used(&a->vq, USED_TIMEOUT_US) && vq_get_used(&a->vq, 0) == buf;
}

static int run_play(struct abuse *a)
{
	const struct play *p = &a->c->play;
	bool ready, used;

	if (!begin(a))
		return STATUS_FAILED;
	set_features(a, p->unoffered ? unoffered_feature(a->d) : good_features(a->d));
	if (p->features_ok)
		virtio_add_status(a->d, VIRTIO_STATUS_FEATURES_OK);
	/* A device may refuse the queue of a driver it did not accept: rings are
	 * allocated all the same, so the buffer is posted and kicked anyway. */
	ready = !vq_setup(&a->vq, a->d, 0, QUEUE_SIZE);
	if (!a->vq.desc)
		return STATUS_FAILED;
	virtio_add_status(a->d, VIRTIO_STATUS_DRIVER_OK);
	if (p->after) /* on a running device */
		virtio_add_status(a->d, p->after);
	used = post_and_wait(a);
	printf("virtio-abuse: %s %s ready %d used %d status 0x%x\n", virtio_name(a->d->device_id),
	       a->c->name, ready, used, virtio_status(a->d));
	return STATUS_OK;
}

/* flood-ring N: the ready queue's descriptor address rewritten N times (4.2.3.2:
 * only while the queue is not ready). */
static int flood_ring(struct abuse *a)
{
	uint64_t t0;

	if (!start_normally(a))
		return STATUS_FAILED;
	t0 = rdtsc();
	for (uint64_t i = 0; i < a->count; i++) /* the same address: harmless if taken */
		virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(uint64_t)a->vq.desc);
	print_flood(a, a->count, t0);
	return STATUS_OK;
}

/* flood-features N: FEATURES_OK written N times over features never offered. */
static int flood_features(struct abuse *a)
{
	uint64_t t0;

	if (!begin(a))
		return STATUS_FAILED;
	set_features(a, unoffered_feature(a->d));
	t0 = rdtsc();
	for (uint64_t i = 0; i < a->count; i++)
		virtio_write_reg(a->d, VIRTIO_MMIO_STATUS,
				 STATUS_STARTING | VIRTIO_STATUS_FEATURES_OK);
	print_flood(a, a->count, t0);
	return STATUS_OK;
}

/* flood-queue-size N: N rounds of QueueNum 3 (not a power of two) and
 * QueueReady 1 on queue 0. */
static int flood_queue_size(struct abuse *a)
{
	uint64_t t0;

	if (!begin(a))
		return STATUS_FAILED;
	negotiate(a);
	virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_SEL, 0);
	t0 = rdtsc();
	for (uint64_t i = 0; i < a->count; i++) {
		virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_NUM, BAD_QUEUE_SIZE);
		virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	print_flood(a, a->count, t0);
	return STATUS_OK;
}

static bool wait_needs_reset(struct virtio_dev *d)
{
	uint64_t end = deadline_after_us(NEEDS_RESET_TIMEOUT_US);

	while (!(virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET))
		if (deadline_passed(end))
			return false;
	return true;
}

/* flood-broken N: N rounds of reset, start, and a queue whose available index
 * is ahead by more than its size (2.7.13.3), each until the device reports
 * NEEDS_RESET (or 100 ms). Prints how many rounds ended that way. */
static int flood_broken(struct abuse *a)
{
	uint64_t t0, broken = 0;

	if (!begin(a))
		return STATUS_FAILED;
	negotiate(a);
	if (vq_setup(&a->vq, a->d, 0, QUEUE_SIZE))
		return STATUS_FAILED;
	a->vq.avail[1] = a->vq.size + 1;
	t0 = rdtsc();
	for (uint64_t i = 0; i < a->count; i++) {
		if (i) {
			if (!begin(a))
				return STATUS_FAILED;
			negotiate(a);
			virtio_write_reg(a->d, VIRTIO_MMIO_QUEUE_SEL, 0);
			vq_program(&a->vq);
		}
		virtio_add_status(a->d, VIRTIO_STATUS_DRIVER_OK);
		broken += wait_needs_reset(a->d);
	}
	print_flood(a, a->count, t0);
	printf("virtio-abuse: %s flood-broken needs_reset %lu\n", virtio_name(a->d->device_id),
	       broken);
	return STATUS_OK;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct abuse_case cases[] = {
	{ "baseline", false, run_play, { false, true, 0 } },
	{ "no-features-ok", false, run_play, { false, false, 0 } },
	{ "features-refused", false, run_play, { true, true, 0 } },
	{ "failed", false, run_play, { false, true, VIRTIO_STATUS_FAILED } },
	{ "needs-reset", false, run_play, { false, true, VIRTIO_STATUS_NEEDS_RESET } },
	{ "flood-ring", true, flood_ring, { 0 } },
	{ "flood-features", true, flood_features, { 0 } },
	{ "flood-queue-size", true, flood_queue_size, { 0 } },
	{ "flood-broken", true, flood_broken, { 0 } },
};

static struct virtio_dev *find_by_name(const char *name)
{
	static const uint32_t ids[] = { VIRTIO_ID_NET, VIRTIO_ID_BLOCK, VIRTIO_ID_RNG,
					VIRTIO_ID_BALLOON, VIRTIO_ID_VSOCK };

	for (unsigned i = 0; i < COUNT(ids); i++)
		if (!strcmp(name, virtio_name(ids[i])))
			return virtio_find(ids[i], 0);
	return 0;
}

static int usage(void)
{
	printf("virtio-abuse: expected DEVICE CASE [N]; cases:");
	for (unsigned i = 0; i < COUNT(cases); i++)
		printf(cases[i].counted ? " %s N" : " %s", cases[i].name);
	printf("\n");
	return STATUS_USAGE;
}

static int virtio_abuse(int argc, char **argv)
{
	struct abuse a = { 0 };

	for (unsigned i = 0; argc >= 3 && i < COUNT(cases); i++)
		if (!strcmp(argv[2], cases[i].name))
			a.c = &cases[i];
	if (!a.c || argc != (a.c->counted ? 4 : 3) ||
	    (a.c->counted && arg_u64(argc, argv, 3, 0, 1, MAX_COUNT, &a.count)))
		return usage();
	if (!(a.d = find_by_name(argv[1]))) {
		printf("virtio-abuse: no virtio-%s device\n", argv[1]);
		return STATUS_FAILED;
	}
	return a.c->run(&a);
}

const struct command cmd_virtio_abuse = { "virtio-abuse", "DEVICE CASE [N]",
					  "drive a virtio device against the rules", virtio_abuse };
