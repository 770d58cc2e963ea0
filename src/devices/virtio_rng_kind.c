/* virtio-rng as the rest of the VMM sees it: Firecracker's "entropy" object, the
 * --rng[=bw=N] option, PUT /entropy, and the entropy metrics. */
#include <stdio.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/virtio_rng.h"
#include "vmm/config_args.h"
#include "vmm/config_json.h"
#include "vmm/metrics.h"

static int rng_parse_json(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf)
{
	struct entropy_config *e = conf;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (strcmp(key, "rate_limiter") != 0)
			return config_unknown_field(ctx, p, "rate_limiter");
		if (config_take_rate_limiter(ctx, p, v, &e->rate_limiter))
			return -1;
	}
	return 0;
}

static json_t *rng_to_json(const void *conf)
{
	const struct entropy_config *e = conf;
	return json_pack("{s:o}", "rate_limiter", config_rate_limiter_json(&e->rate_limiter));
}

/* --rng alone, or --rng=bw=BYTES_PER_SECOND. */
static int rng_parse_option(void *conf, const char *arg, int index, char *err, size_t errlen)
{
	struct entropy_config *e = conf;
	if (!arg || !*arg)
		return 0;
	if (strncmp(arg, "bw=", 3) || config_arg_rate(arg + 3, &e->rate_limiter.bandwidth))
		return config_arg_fail(err, errlen, "--rng", arg, "expected bw=BYTES_PER_SECOND");
	return 0;
}

static int rng_create(struct vm *vm, const void *conf)
{
	return virtio_rng_create(vm, conf);
}

static const struct metric_family rng_families[] = {
	METRIC_FAMILY("argon_entropy_bytes_total", "counter", "Random bytes given",
		      NULL, NULL, false),
	METRIC_FAMILY("argon_entropy_requests_total", "counter", "Entropy requests",
		      NULL, NULL, false),
	METRIC_FAMILY("argon_entropy_errors_total", "counter", "Failed entropy requests",
		      NULL, NULL, false),
};

static void rng_stats(const struct device *d, struct metrics_sink *sink)
{
	struct virtio_rng_stats s;
	virtio_rng_get_stats(d->virtio, &s);
	metrics_add(sink, &rng_families[0], NULL, NULL, s.bytes);
	metrics_add(sink, &rng_families[1], NULL, NULL, s.requests);
	metrics_add(sink, &rng_families[2], NULL, NULL, s.errors);
	metrics_add(sink, metrics_throttled, d->label, NULL, s.throttled);
}

static void rng_quiesce(struct device *d)
{
	virtio_rng_quiesce(d->virtio);
}

static void rng_save(const struct device *d, struct snap_writer *w)
{
	virtio_rng_save(d->virtio, w);
}

static int rng_restore(struct device *d, struct section_in *in)
{
	return virtio_rng_restore(d->virtio, in);
}

const struct device_kind virtio_rng_kind = {
	.name = "virtio-rng",
	.section = "entropy",
	.max = 1,
	.config_size = sizeof(struct entropy_config),
	.parse_json = rng_parse_json,
	.to_json = rng_to_json,
	.option = "rng",
	.option_arg_optional = true,
	.option_usage = "[=bw=N]",
	.option_help = "an entropy device",
	.parse_option = rng_parse_option,
	.create = rng_create,
	.metrics_label = "entropy",
	.families = rng_families,
	.nfamilies = sizeof(rng_families) / sizeof(rng_families[0]),
	.stats = rng_stats,
	.quiesce = rng_quiesce,
	.save = rng_save,
	.restore = rng_restore,
};
