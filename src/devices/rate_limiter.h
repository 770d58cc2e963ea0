/* Token-bucket rate limiting, as Firecracker's: one bucket for bytes and one for
 * operations, each with a size, a refill time and an optional one-time burst. A
 * device asks before doing work; when refused it parks the work and retries when
 * rate_limiter_wait_ns() says tokens are back (a timer on the event loop). */
#ifndef ARGON_DEVICES_RATE_LIMITER_H
#define ARGON_DEVICES_RATE_LIMITER_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket_config {
	uint64_t size;		 /* tokens the bucket holds (bytes or ops); 0 = unlimited */
	uint64_t one_time_burst; /* extra tokens available once, at start */
	uint64_t refill_time_ms; /* time to refill `size` tokens from empty */
};

struct rate_limiter_config {
	struct token_bucket_config bandwidth; /* bytes */
	struct token_bucket_config ops;	      /* requests */
};

struct token_bucket {
	struct token_bucket_config cfg;
	uint64_t tokens;
	uint64_t burst_left;
	uint64_t last_refill_ns;
};

struct rate_limiter {
	struct token_bucket bandwidth, ops;
	uint64_t throttled; /* requests refused, for metrics */
};

/* now_ns is CLOCK_MONOTONIC; tests pass their own clock. */
void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		       uint64_t now_ns);
/* Takes one operation of `bytes` bytes if both buckets allow it; false when throttled
 * (nothing is taken then). An operation larger than a bucket's size is allowed once
 * the bucket is full, so large requests cannot starve. */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
/* Nanoseconds until an operation of `bytes` could pass (0 = now). */
uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns);
/* True when neither bucket limits anything. */
bool rate_limiter_is_unlimited(const struct rate_limiter *rl);

/* A limiter's state for a snapshot (its configuration travels apart): per bucket
 * (bandwidth, ops) the tokens and burst left, and the time since its last refill
 * (negative: a debt, see rate_limiter.c), on the limiter clock. */
struct token_bucket_state {
	uint64_t tokens, burst_left;
	int64_t since_refill_ns;
};
struct rate_limiter_state {
	struct token_bucket_state bandwidth, ops;
};
#define RATE_LIMITER_MAX_DEBT_NS (3600ULL * 1000000000ULL) /* what a restore accepts */
void rate_limiter_get_state(const struct rate_limiter *rl, uint64_t now_ns,
			    struct rate_limiter_state *s);
/* Puts s into rl, whose configuration is already set. Returns 0, or -EINVAL (rl
 * untouched) when s does not fit it: more tokens than the size, more burst than the
 * one-time burst, a debt over RATE_LIMITER_MAX_DEBT_NS. */
int rate_limiter_set_state(struct rate_limiter *rl, const struct rate_limiter_state *s,
			   uint64_t now_ns);

/* While the VM is paused no bucket earns tokens: pause.c stops the limiters' clock
 * when the VM is paused and starts it again on resume, with CLOCK_MONOTONIC now_ns
 * (tests pass their own clock). Stopping a stopped clock, or starting a running one,
 * does nothing. One clock for every limiter of the process (one VM per process). */
void rate_limiter_clock_stop(uint64_t now_ns);
void rate_limiter_clock_start(uint64_t now_ns);

#endif
