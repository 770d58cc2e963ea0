/* blk-bench [DISK] [MS] [PHASE]: 4 KiB random reads and writes at queue depth 1
 * and 32, then 1 MiB sequential reads and writes (4 in flight), MS ms each
 * (default 1000); PHASE (a figure's name) runs that phase alone. Writes go over
 * the disk's contents. */
#include "commands/blk_job.h"
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "timer.h"

#define SMALL 4096u
#define LARGE (1u << 20)
#define SEQ_DEPTH 4

struct phase {
	const char *name;
	uint32_t type;
	bool random;
	int depth;
};

static const struct phase phases[] = {
	{ "randread_qd1_iops", VIRTIO_BLK_T_IN, true, 1 },
	{ "randread_qd32_iops", VIRTIO_BLK_T_IN, true, 32 },
	{ "randwrite_qd1_iops", VIRTIO_BLK_T_OUT, true, 1 },
	{ "randwrite_qd32_iops", VIRTIO_BLK_T_OUT, true, 32 },
	{ "seqread_mib_s", VIRTIO_BLK_T_IN, false, SEQ_DEPTH },
	{ "seqwrite_mib_s", VIRTIO_BLK_T_OUT, false, SEQ_DEPTH },
};

/* Returns the phase's figure (IOPS or MiB/s), or -1 on an error. */
static int64_t run_phase(struct blk_dev *b, const struct phase *p, uint64_t ms,
			 uint64_t *reqs, uint64_t *kicks)
{
	uint32_t large = blk_max_bytes(b) < LARGE ? blk_max_bytes(b) : LARGE;
	struct blk_job j = { .b = b, .type = p->type, .depth = p->depth, .random = p->random,
			     .bytes = p->random ? SMALL : large, .seed = ms,
			     .span_sectors = b->capacity, .deadline = deadline_after_us(ms * 1000) };
	uint64_t ns;

	if (!blk_job_run(&j) || j.err_status || !(ns = tsc_to_ns(j.cycles)))
		return -1;
	*reqs += j.reqs;
	*kicks += j.kicks;
	if (p->random)
		return j.reqs * 1000000000ull / ns;
	return j.sectors * BLK_SECTOR / 1024 * 1000000000ull / ns / 1024;
}

static int blk_bench(int argc, char **argv)
{
	uint64_t disk, ms, reqs = 0, kicks = 0, irqs0;
	struct blk_dev *b;

	const char *only = argc > 3 ? argv[3] : NULL;
	bool known = !only;

	for (unsigned i = 0; only && i < sizeof(phases) / sizeof(phases[0]); i++)
		known = known || strcmp(only, phases[i].name) == 0;
	if (argc > 4 || !known || arg_u64(argc, argv, 1, 0, 0, 7, &disk) ||
	    arg_u64(argc, argv, 2, 1000, 10, 600000, &ms))
		return STATUS_USAGE;
	if (!(b = blk_open((int)disk, "blk-bench")))
		return STATUS_FAILED;
	if (b->capacity * BLK_SECTOR < LARGE) {
		printf("blk-bench: disk %lu is smaller than 1 MiB\n", disk);
		return STATUS_FAILED;
	}
	irqs0 = b->vdev->irqs;
	printf("blk-bench:");
	for (unsigned i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		if (only && strcmp(only, phases[i].name) != 0)
			continue;
		int64_t v = run_phase(b, &phases[i], ms, &reqs, &kicks);

		if (v < 0) {
			printf(" %s failed\n", phases[i].name);
			return STATUS_FAILED;
		}
		printf(" %s %ld", phases[i].name, v);
	}
	printf("\nblk-bench: requests %lu kicks %lu interrupts %lu\n", reqs, kicks,
	       b->vdev->irqs - irqs0);
	return STATUS_OK;
}

const struct command cmd_blk_bench = { "blk-bench", "[DISK] [MS] [PHASE]",
				       "random 4 KiB and sequential 1 MiB I/O rates (writes!)",
				       blk_bench };
