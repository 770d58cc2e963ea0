/* balloon [SECONDS], balloon-status: the virtio-balloon driver at work. The
 * driver only runs while these commands do: `balloon` follows the device's
 * target until it is reached (or for SECONDS, following every change and
 * answering statistics requests meanwhile). */
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "virtio/balloon.h"
#include "virtio/virtqueue.h"

#define REACH_TIMEOUT_US 60000000ull

static void report(struct balloon *b)
{
	printf("balloon: target_pages %u actual_pages %u\n", b->target, b->held);
}

/* Moves toward the target; returns false when out of memory or stuck. */
static bool follow(struct balloon *b, uint32_t *reported)
{
	int moved = balloon_step(b);

	if (moved < 0) {
		printf("balloon: cannot reach target_pages %u: %s at actual_pages %u\n", b->target,
		       b->target > b->held ? "no free pages left" : "device did not answer", b->held);
		return false;
	}
	if (b->held == b->target && *reported != b->held) {
		report(b);
		*reported = b->held;
	}
	return true;
}

static int balloon_cmd(int argc, char **argv)
{
	uint64_t seconds, end;
	uint32_t reported = UINT32_MAX;
	struct balloon *b;

	if (argc > 2 || arg_u64(argc, argv, 1, 0, 0, 1000000, &seconds))
		return STATUS_USAGE;
	if (!(b = balloon_open("balloon")))
		return STATUS_FAILED;
	end = deadline_after_us(seconds ? seconds * 1000000 : REACH_TIMEOUT_US);
	for (;;) {
		balloon_service_stats(b);
		if (!follow(b, &reported))
			return STATUS_FAILED;
		if (!seconds && b->held == b->target)
			return STATUS_OK;
		if (deadline_passed(end) || console_key_pressed())
			break;
		if (b->held == b->target)
			balloon_idle(b);
	}
	if (b->held != b->target)
		report(b);
	return seconds ? STATUS_OK : STATUS_FAILED;
}

static int balloon_status(int argc, char **argv)
{
	struct balloon *b;

	(void)argv;
	if (argc > 1) {
		printf("balloon-status: takes no arguments\n");
		return STATUS_USAGE;
	}
	if (!(b = balloon_open("balloon-status")))
		return STATUS_FAILED;
	printf("balloon-status: target_pages %u actual_pages %u held_pages %u stats_answered %lu\n",
	       balloon_target(b), balloon_actual(b), b->held, b->stats_answered);
	return STATUS_OK;
}

const struct command cmd_balloon = { "balloon", "[SECONDS]",
				     "follow the balloon target (until reached, or SECONDS)",
				     balloon_cmd };
const struct command cmd_balloon_status = { "balloon-status", "", "balloon target and actual pages",
					    balloon_status };
