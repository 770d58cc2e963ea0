/* Token buckets with Firecracker's semantics (src/vmm/src/rate_limiter): a bucket of
 * `size` tokens starts full and refills linearly, `size` tokens per `refill_time_ms`;
 * `one_time_burst` extra tokens are spent first and never come back; a bucket whose
 * size or refill time is 0 limits nothing.
 *
 * Two choices where Firecracker leaves room:
 * - Nothing is taken from either bucket when an operation is refused (Firecracker
 *   spends the burst before it finds the bucket short).
 * - An operation larger than the bucket passes once the bucket is full, and the excess
 *   becomes a debt repaid at the refill rate before any other operation passes
 *   (Firecracker's "over-consumption" blocks the limiter for excess/size * refill_time).
 *   The debt is kept by moving last_refill_ns into the future, so the long-run rate
 *   never exceeds size per refill_time whatever the request sizes.
 *
 * The arithmetic is exact and in integers: refills carry the fraction of a token not
 * yet earned to the next refill (last_refill_ns advances only by the time the tokens
 * granted cost), and products go through 128 bits.
 *
 * Paused time earns nothing (Firecracker's buckets fill while its VM is paused, so a
 * pause is a burst on resume): every bucket counts time on one clock that pause.c
 * stops while the VM is paused. It is process-wide because a process runs one VM and
 * the devices that own limiters have no way to it; it changes only while the device
 * loop is parked (pause and resume), or from the thread that changes it. */
#include "devices/rate_limiter.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#define NS_PER_MS 1000000ULL

typedef unsigned __int128 u128;

static struct {
	uint64_t stopped_total; /* ns of the caller's clock spent stopped, before stopped_at */
	uint64_t stopped_at;	/* when the clock stopped; meaningful while stopped */
	bool stopped;
} paused_clock;

void rate_limiter_clock_stop(uint64_t now_ns)
{
	if (__atomic_load_n(&paused_clock.stopped, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&paused_clock.stopped_at, now_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&paused_clock.stopped, true, __ATOMIC_RELEASE);
}

void rate_limiter_clock_start(uint64_t now_ns)
{
	if (!__atomic_load_n(&paused_clock.stopped, __ATOMIC_ACQUIRE))
		return;
	uint64_t at = __atomic_load_n(&paused_clock.stopped_at, __ATOMIC_RELAXED);
	if (now_ns > at)
		__atomic_add_fetch(&paused_clock.stopped_total, now_ns - at, __ATOMIC_RELAXED);
	__atomic_store_n(&paused_clock.stopped, false, __ATOMIC_RELEASE);
}

/* The caller's time (CLOCK_MONOTONIC, or a test's) without the time stopped: what the
 * buckets count. Never goes back while the caller's clock goes forward. */
static uint64_t running_ns(uint64_t now_ns)
{
	bool stopped = __atomic_load_n(&paused_clock.stopped, __ATOMIC_ACQUIRE);
	uint64_t total = __atomic_load_n(&paused_clock.stopped_total, __ATOMIC_RELAXED);
	if (stopped) {
		uint64_t at = __atomic_load_n(&paused_clock.stopped_at, __ATOMIC_RELAXED);
		now_ns = now_ns < at ? now_ns : at;
	}
	return now_ns > total ? now_ns - total : 0;
}

static bool bucket_enabled(const struct token_bucket *b)
{
	return b->cfg.size != 0 && b->cfg.refill_time_ms != 0;
}

/* Nanoseconds to refill the whole bucket; clamped so it fits 64 bits (half a
 * millennium), which keeps every product below 2^128. */
static uint64_t refill_ns(const struct token_bucket *b)
{
	uint64_t ms = b->cfg.refill_time_ms;
	if (ms > UINT64_MAX / NS_PER_MS)
		ms = UINT64_MAX / NS_PER_MS;
	return ms * NS_PER_MS;
}

/* Time the bucket needs to earn `tokens` tokens, rounded up, saturated at 2^64-1. */
static uint64_t time_for_tokens(const struct token_bucket *b, uint64_t tokens)
{
	u128 size = b->cfg.size;
	u128 t = ((u128)tokens * refill_ns(b) + size - 1) / size;
	return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

static void bucket_init(struct token_bucket *b, const struct token_bucket_config *cfg,
			uint64_t now_ns)
{
	b->cfg = *cfg;
	b->tokens = cfg->size;
	b->burst_left = cfg->one_time_burst;
	b->last_refill_ns = now_ns;
}

/* Adds the tokens earned since last_refill_ns. While a debt is being repaid
 * (last_refill_ns in the future) nothing is earned. */
static void bucket_refill(struct token_bucket *b, uint64_t now_ns)
{
	if (!bucket_enabled(b) || now_ns <= b->last_refill_ns)
		return;
	if (b->tokens >= b->cfg.size) {
		b->last_refill_ns = now_ns;
		return;
	}
	u128 delta = now_ns - b->last_refill_ns;
	u128 earned = delta * b->cfg.size / refill_ns(b);
	if (earned >= b->cfg.size - b->tokens) {
		b->tokens = b->cfg.size;
		b->last_refill_ns = now_ns;
		return;
	}
	b->tokens += (uint64_t)earned;
	/* Keep the fraction of a token already paid for: advance only by what the
	 * granted tokens cost (rounded up so no nanosecond is spent twice). */
	b->last_refill_ns += time_for_tokens(b, (uint64_t)earned);
}

/* True when n tokens can be taken now (after a refill). */
static bool bucket_allows(const struct token_bucket *b, uint64_t n)
{
	if (!bucket_enabled(b) || n <= b->burst_left)
		return true;
	if (n - b->burst_left <= b->tokens)
		return true;
	return b->tokens == b->cfg.size; /* larger than the bucket: once it is full */
}

static void bucket_take(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (!bucket_enabled(b))
		return;
	uint64_t from_burst = n < b->burst_left ? n : b->burst_left;
	b->burst_left -= from_burst;
	n -= from_burst;
	if (n <= b->tokens) {
		b->tokens -= n;
		return;
	}
	uint64_t debt = n - b->tokens;
	b->tokens = 0;
	uint64_t from = b->last_refill_ns > now_ns ? b->last_refill_ns : now_ns;
	uint64_t pay = time_for_tokens(b, debt);
	b->last_refill_ns = pay > UINT64_MAX - from ? UINT64_MAX : from + pay;
}

/* Nanoseconds until n tokens can be taken (bucket already refilled to now). */
static uint64_t bucket_wait(const struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (bucket_allows(b, n))
		return 0;
	uint64_t want = n - b->burst_left; /* > tokens, or bucket_allows said yes */
	if (want > b->cfg.size)
		want = b->cfg.size;
	u128 ready = (u128)b->last_refill_ns + time_for_tokens(b, want - b->tokens);
	if (ready <= now_ns)
		return 1; /* cannot happen after a refill; never report "now" for a refusal */
	ready -= now_ns;
	return ready > UINT64_MAX ? UINT64_MAX : (uint64_t)ready;
}

void rate_limiter_init(struct rate_limiter *rl, const struct rate_limiter_config *cfg,
		       uint64_t now_ns)
{
	now_ns = running_ns(now_ns);
	static const struct rate_limiter_config unlimited;
	if (!cfg)
		cfg = &unlimited;
	bucket_init(&rl->bandwidth, &cfg->bandwidth, now_ns);
	bucket_init(&rl->ops, &cfg->ops, now_ns);
	rl->throttled = 0;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	now_ns = running_ns(now_ns);
	bucket_refill(&rl->bandwidth, now_ns);
	bucket_refill(&rl->ops, now_ns);
	if (!bucket_allows(&rl->bandwidth, bytes) || !bucket_allows(&rl->ops, 1)) {
		rl->throttled++;
		return false;
	}
	bucket_take(&rl->bandwidth, bytes, now_ns);
	bucket_take(&rl->ops, 1, now_ns);
	return true;
}

uint64_t rate_limiter_wait_ns(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns)
{
	now_ns = running_ns(now_ns);
	bucket_refill(&rl->bandwidth, now_ns);
	bucket_refill(&rl->ops, now_ns);
	uint64_t a = bucket_wait(&rl->bandwidth, bytes, now_ns);
	uint64_t b = bucket_wait(&rl->ops, 1, now_ns);
	return a > b ? a : b;
}

bool rate_limiter_is_unlimited(const struct rate_limiter *rl)
{
	return !bucket_enabled(&rl->bandwidth) && !bucket_enabled(&rl->ops);
}

/* ---- snapshots ---- */

static void bucket_get_state(const struct token_bucket *b, uint64_t now,
			     struct token_bucket_state *s)
{
	s->tokens = b->tokens;
	s->burst_left = b->burst_left;
	s->since_refill_ns = (int64_t)(now - b->last_refill_ns);
}

void rate_limiter_get_state(const struct rate_limiter *rl, uint64_t now_ns,
			    struct rate_limiter_state *s)
{
	uint64_t now = running_ns(now_ns);
	bucket_get_state(&rl->bandwidth, now, &s->bandwidth);
	bucket_get_state(&rl->ops, now, &s->ops);
}

static bool bucket_state_fits(const struct token_bucket *b, const struct token_bucket_state *s)
{
	return s->tokens <= b->cfg.size && s->burst_left <= b->cfg.one_time_burst &&
	       s->since_refill_ns >= -(int64_t)RATE_LIMITER_MAX_DEBT_NS;
}

/* A refill long ago only means a full bucket: the age is capped at now. */
static void bucket_set_state(struct token_bucket *b, const struct token_bucket_state *s,
			     uint64_t now)
{
	b->tokens = s->tokens;
	b->burst_left = s->burst_left;
	if (s->since_refill_ns < 0)
		b->last_refill_ns = now + (uint64_t)(-s->since_refill_ns);
	else
		b->last_refill_ns = (uint64_t)s->since_refill_ns < now
					    ? now - (uint64_t)s->since_refill_ns : 0;
}

int rate_limiter_set_state(struct rate_limiter *rl, const struct rate_limiter_state *s,
			   uint64_t now_ns)
{
	if (!bucket_state_fits(&rl->bandwidth, &s->bandwidth) ||
	    !bucket_state_fits(&rl->ops, &s->ops))
		return -EINVAL;
	uint64_t now = running_ns(now_ns);
	bucket_set_state(&rl->bandwidth, &s->bandwidth, now);
	bucket_set_state(&rl->ops, &s->ops, now);
	return 0;
}
