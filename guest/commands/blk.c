/* blk-write, blk-verify, blk-discard, blk-info: data integrity and device
 * facts of a virtio-blk disk (DISK counts virtio-blk devices from 0). */
#include "commands/blk_job.h"
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "string.h"

#define DEFAULT_MIB 16
#define CHUNK_BYTES (256u << 10)
#define DEPTH 8
#define MIB (1ul << 20)

/* Parses [DISK] [MiB] [SEED] and opens the disk; MiB defaults to 16 or the
 * whole disk if smaller. Returns a status (power.h). */
static int open_args(int argc, char **argv, struct blk_dev **bp, uint64_t *bytes, uint64_t *seed)
{
	uint64_t disk, mib;
	struct blk_dev *b;

	if (argc > 4 || arg_u64(argc, argv, 1, 0, 0, 7, &disk) ||
	    arg_u64(argc, argv, 2, DEFAULT_MIB, 1, 1 << 20, &mib) ||
	    arg_u64(argc, argv, 3, 1, 0, UINT64_MAX, seed))
		return STATUS_USAGE;
	if (!(*bp = b = blk_open((int)disk, argv[0])))
		return STATUS_FAILED;
	if (mib * MIB > b->capacity * BLK_SECTOR) {
		if (argc > 2) {
			printf("%s: disk %lu has only %lu MiB\n", argv[0], disk,
			       b->capacity * BLK_SECTOR / MIB);
			return STATUS_USAGE;
		}
		mib = b->capacity * BLK_SECTOR / MIB;
	}
	*bytes = mib * MIB;
	return *bytes ? STATUS_OK : STATUS_FAILED;
}

static void job_init(struct blk_job *j, struct blk_dev *b, uint32_t type, uint64_t bytes,
		     uint64_t seed)
{
	uint32_t chunk = blk_max_bytes(b) < CHUNK_BYTES ? blk_max_bytes(b) : CHUNK_BYTES;

	*j = (struct blk_job){ .b = b, .type = type, .bytes = chunk & ~511u, .depth = DEPTH,
			       .span_sectors = bytes / BLK_SECTOR, .pattern = true, .seed = seed };
}

/* Reports a failed job; returns STATUS_FAILED, or STATUS_OK when it ran clean. */
static int job_status(const struct blk_job *j, const char *cmd)
{
	if (j->timed_out) {
		printf("%s: the device did not complete a request within 30 s\n", cmd);
		return STATUS_FAILED;
	}
	if (j->err_status == VIRTIO_BLK_S_UNSUPP) {
		printf("%s: unsupported request at sector %lu\n", cmd, j->err_sector);
		return STATUS_FAILED;
	}
	if (j->err_status) {
		printf("%s: io error at sector %lu\n", cmd, j->err_sector);
		return STATUS_FAILED;
	}
	return STATUS_OK;
}

static int flush(struct blk_dev *b)
{
	struct blk_req r;

	blk_req_init(&r, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	return blk_do(b, &r);
}

static int blk_write(int argc, char **argv)
{
	uint64_t bytes, seed;
	struct blk_dev *b;
	struct blk_job j;
	int st = open_args(argc, argv, &b, &bytes, &seed);

	if (st)
		return st;
	job_init(&j, b, VIRTIO_BLK_T_OUT, bytes, seed);
	blk_job_run(&j);
	if (job_status(&j, "blk-write"))
		return STATUS_FAILED;
	if (!virtio_has(b->vdev, VIRTIO_BLK_F_FLUSH)) {
		printf("blk-write: disk %d bytes %lu not flushed (no VIRTIO_BLK_F_FLUSH)\n", b->disk,
		       bytes);
		return STATUS_FAILED;
	}
	if ((st = flush(b)) != VIRTIO_BLK_S_OK) {
		printf("blk-write: flush failed (%s)\n", st < 0 ? "timeout" : "io error");
		return STATUS_FAILED;
	}
	printf("blk-write: disk %d bytes %lu flushed\n", b->disk, bytes);
	return STATUS_OK;
}

static int blk_verify(int argc, char **argv)
{
	uint64_t bytes, seed;
	struct blk_dev *b;
	struct blk_job j;
	int st = open_args(argc, argv, &b, &bytes, &seed);

	if (st)
		return st;
	job_init(&j, b, VIRTIO_BLK_T_IN, bytes, seed);
	blk_job_run(&j);
	if (job_status(&j, "blk-verify"))
		return STATUS_FAILED;
	if (j.bad_sector != UINT64_MAX) {
		printf("blk-verify: bad sector %lu\n", j.bad_sector);
		return STATUS_FAILED;
	}
	printf("blk-verify: ok disk %d bytes %lu\n", b->disk, bytes);
	return STATUS_OK;
}

const struct command cmd_blk_write = { "blk-write", "[DISK] [MiB] [SEED]",
				       "write a pattern, then flush", blk_write };
const struct command cmd_blk_verify = { "blk-verify", "[DISK] [MiB] [SEED]",
					"read back and check blk-write's pattern", blk_verify };
