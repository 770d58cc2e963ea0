/* rng-read [BYTES]: asks virtio-rng for BYTES (default 64, at most 64 KiB)
 * and checks them a little: not all zero, and enough distinct values. */
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "virtio/rng.h"

#define MAX_BYTES 65536
#define TIMEOUT_US 5000000

static uint8_t buf[MAX_BYTES];

/* Expected distinct values among n random bytes is 256 (1 - (255/256)^n);
 * a quarter of min(n, 256) is far below it and far above a stuck source.
 * Fewer than 8 bytes are too few to judge (a single 0 byte is fine). */
static bool plausible(uint32_t n, uint32_t distinct, bool nonzero)
{
	uint32_t want = (n < 256 ? n : 256) / 4;

	return n < 8 || (nonzero && distinct >= want);
}

static int rng_cmd(int argc, char **argv)
{
	static bool seen[256];
	uint64_t want;
	uint32_t distinct = 0;
	bool nonzero = false;
	int64_t n;

	if (arg_count(argc, argv, 1, 64, MAX_BYTES, &want))
		return STATUS_USAGE;
	if ((n = rng_read(buf, (uint32_t)want, TIMEOUT_US, "rng-read")) < 0)
		return STATUS_FAILED;
	for (int i = 0; i < 256; i++)
		seen[i] = false;
	for (int64_t i = 0; i < n; i++) {
		distinct += !seen[buf[i]];
		seen[buf[i]] = true;
		nonzero |= buf[i] != 0;
	}
	printf("rng-read: requested %lu received %ld distinct %u %s\n", want, n, distinct,
	       plausible((uint32_t)n, distinct, nonzero) ? "ok" : "suspicious");
	return n > 0 && plausible((uint32_t)n, distinct, nonzero) ? STATUS_OK : STATUS_FAILED;
}

const struct command cmd_rng_read = { "rng-read", "[BYTES]", "read entropy from virtio-rng",
				      rng_cmd };
