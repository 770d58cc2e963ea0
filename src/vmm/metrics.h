/* Per-VM metrics: vCPU exits by reason, PIO/MMIO accesses per device, block, net
 * and entropy counters, rate-limiter throttling, vCPU run and steal time, guest
 * memory and the VMM's RSS, API requests and errors by endpoint, lost log and
 * metrics lines. One collection, two renderings: a JSON line written to the
 * metrics file on a period and on FlushMetrics (Firecracker's habit), and
 * Prometheus text for GET /metrics.
 *
 * Counters are cumulative since the process started in both renderings (Firecracker
 * writes per-interval deltas to its file; subtract consecutive lines for those).
 * The JSON keys are the Prometheus names without "argon_"; a labelled family is an
 * object keyed by its first label (and nested by the second). Times are seconds. */
#ifndef ARGON_VMM_METRICS_H
#define ARGON_VMM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm;

/* A metric family: its name (Prometheus' conventions: _total for counters, base
 * units), type, help and up to two label names. `ns` families are counted in
 * nanoseconds and shown in seconds. The VMM's own are in metrics.c; each device kind
 * declares its own (device_kind.h), shown after the VMM's device-thread families in
 * the order of device_kinds. */
struct metric_family {
	const char *name, *type, *help, *label1, *label2;
	bool ns;
};
#define METRIC_FAMILY(n, t, h, l1, l2, in_ns) \
	{ .name = n, .type = t, .help = h, .label1 = l1, .label2 = l2, .ns = in_ns }

/* Where a collection gathers samples (metrics.c). */
struct metrics_sink;
/* One sample of family f; l1 and l2 are its labels' values (NULL when it has none). */
void metrics_add(struct metrics_sink *sink, const struct metric_family *f, const char *l1,
		 const char *l2, uint64_t value);
/* Times a rate limiter made a device wait, labelled by device: shared by every kind
 * with a rate limiter, shown after all the kinds' families. */
extern const struct metric_family *const metrics_throttled;

/* API counters, filled by the API server (one entry per route, plus "other"). */
#define METRICS_MAX_ENDPOINTS 48
struct api_endpoint_stats {
	const char *name; /* "PUT /drives/{id}" */
	uint64_t requests, errors; /* atomic */
};

struct metrics {
	int fd;		      /* the metrics file or FIFO, -1 for none */
	uint32_t period_ms;
	uint64_t next_flush_ns;
	uint64_t lines_written, lines_dropped;
	struct api_endpoint_stats *endpoints;
	int nendpoints;
	uint64_t api_connections_refused; /* atomic */
};

void metrics_init(struct metrics *m);
/* Opens path for the JSON lines: a FIFO read-write and non-blocking (a full or
 * unread FIFO drops lines, counted), anything else created 0600 and appended to,
 * non-blocking. NULL closes. Returns 0 or -errno with a message in err. */
int metrics_open(struct metrics *m, const char *path, uint32_t period_ms, char *err,
		 size_t errlen);
void metrics_close(struct metrics *m);

/* Writes one JSON line to the metrics file (nothing without one); a line the file
 * cannot take whole right now is dropped and counted. vmm->lock held. Returns 0 or
 * -errno. */
int metrics_flush(struct vmm *v);
/* Nanoseconds until the next periodic flush is due (0: now), or -1 with no file. */
int64_t metrics_due_in(const struct metrics *m, uint64_t now_ns);

/* The same collection as Prometheus text (text format 0.0.4), or as one JSON line
 * (without the newline). malloc'ed, NULL when out of memory; vmm->lock held. */
char *metrics_prometheus(struct vmm *v);
char *metrics_json(struct vmm *v);

#endif
