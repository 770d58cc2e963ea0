/* A block I/O job: requests of one size and direction, sequential or random,
 * `depth` of them in flight, until a sector count or a deadline. The engine
 * of blk-write, blk-verify and blk-bench. */
#ifndef GUEST_COMMANDS_BLK_JOB_H
#define GUEST_COMMANDS_BLK_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/blk.h"

#define BLK_JOB_MAX_DEPTH 64
#define BLK_JOB_BUF_BYTES (4u << 20) /* depth * bytes must fit */

struct blk_job {
	struct blk_dev *b;
	uint32_t type;	       /* VIRTIO_BLK_T_IN or _OUT */
	uint32_t bytes;	       /* per request, a multiple of 512 */
	int depth;	       /* requests in flight */
	bool random;	       /* random offsets aligned to bytes, else sequential */
	uint64_t first_sector; /* sequential start */
	uint64_t span_sectors; /* the area used: [0, span) random, [first, first+span) sequential */
	uint64_t deadline;     /* TSC; 0 = run until the span is done (sequential only) */
	bool pattern;	       /* fill writes / check reads with lib/pattern.h */
	uint64_t seed;
	/* Results. */
	uint64_t reqs, sectors, cycles, kicks;
	int err_status;	      /* first virtio status other than OK, or 0 */
	uint64_t err_sector;  /* lowest sector of a failed request */
	uint64_t bad_sector;  /* lowest sector that failed the pattern check, or UINT64_MAX */
	bool timed_out;
};

/* Runs the job; false when the device stopped answering (timed_out). */
bool blk_job_run(struct blk_job *j);

#endif
