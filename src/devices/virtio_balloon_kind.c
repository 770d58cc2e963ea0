/* virtio-balloon as the rest of the VMM sees it: Firecracker's "balloon" object, the
 * --balloon option, PUT /balloon, and the balloon metrics. (Its runtime endpoints,
 * PATCH /balloon and /balloon/statistics, are api/handlers_balloon.c.) */
#include <stdio.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/virtio_balloon.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/config_json.h"
#include "vmm/metrics.h"

static int take_field(struct parse_ctx *ctx, const char *p, const char *key, json_t *v,
		      struct balloon_config *b)
{
	uint64_t n = 0;
	int err;
	if (strcmp(key, "amount_mib") == 0) {
		err = config_take_uint(ctx, p, v, 0, UINT32_MAX >> 12, &n);
		b->amount_mib = (uint32_t)n;
	} else if (strcmp(key, "deflate_on_oom") == 0) {
		err = config_take_bool(ctx, p, v, &b->deflate_on_oom);
	} else if (strcmp(key, "stats_polling_interval_s") == 0) {
		err = config_take_uint(ctx, p, v, 0, 3600, &n);
		b->stats_polling_interval_s = (uint32_t)n;
	} else {
		err = config_unknown_field(ctx, p, "amount_mib, deflate_on_oom, "
						   "stats_polling_interval_s");
	}
	return err;
}

static int balloon_parse_json(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (take_field(ctx, p, key, v, conf))
			return -1;
	}
	return 0;
}

static json_t *balloon_to_json(const void *conf)
{
	const struct balloon_config *b = conf;
	return json_pack("{s:I, s:b, s:I}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_polling_interval_s);
}

/* --balloon MIB[,deflate-on-oom][,stats=SECONDS] */
static int balloon_parse_option(void *conf, const char *arg, int index, char *err,
				size_t errlen)
{
	struct balloon_config *b = conf;
	char *copy = strdup(arg), *cursor = copy, *item = config_arg_next(&cursor);
	uint64_t v;
	int rc = copy && item && !config_arg_size(item, &v) && v <= (UINT32_MAX >> 12)
			 ? 0
			 : config_arg_fail(err, errlen, "--balloon", arg,
					   "expected MIB[,deflate-on-oom][,stats=S]");
	b->amount_mib = rc ? 0 : (uint32_t)v;
	while (!rc && (item = config_arg_next(&cursor))) {
		if (strcmp(item, "deflate-on-oom") == 0)
			b->deflate_on_oom = true;
		else if (strncmp(item, "stats=", 6) == 0 && !config_arg_size(item + 6, &v) &&
			 v <= 3600)
			b->stats_polling_interval_s = (uint32_t)v;
		else
			rc = config_arg_fail(err, errlen, "--balloon", item,
					     "expected deflate-on-oom or stats=SECONDS");
	}
	free(copy);
	return rc;
}

static int balloon_create(struct vm *vm, const void *conf)
{
	return virtio_balloon_create(vm, conf);
}

/* PUT /balloon: Firecracker requires both fields, and the balloon fits the guest. */
static int balloon_check_put(struct device_request *rq, const void *conf)
{
	const struct balloon_config *b = conf;
	if (!json_object_get(rq->body, "amount_mib") || !json_object_get(rq->body, "deflate_on_oom"))
		return rq->fail(rq, "balloon: amount_mib and deflate_on_oom are required");
	if (b->amount_mib > rq->cfg->mem_mib)
		return rq->fail(rq, "balloon.amount_mib: %u MiB is more than the guest's %llu MiB",
				b->amount_mib, (unsigned long long)rq->cfg->mem_mib);
	return 0;
}

static const struct metric_family balloon_families[] = {
	METRIC_FAMILY("argon_balloon_target_bytes", "gauge", "Balloon size asked for",
		      NULL, NULL, false),
	METRIC_FAMILY("argon_balloon_actual_bytes", "gauge", "Balloon size the guest holds",
		      NULL, NULL, false),
};

static void balloon_stats(const struct device *d, struct metrics_sink *sink)
{
	struct virtio_balloon_stats s;
	if (virtio_balloon_get_stats(d->virtio, &s))
		return;
	metrics_add(sink, &balloon_families[0], NULL, NULL,
		    (uint64_t)s.target_pages << VIRTIO_BALLOON_PFN_SHIFT);
	metrics_add(sink, &balloon_families[1], NULL, NULL,
		    (uint64_t)s.actual_pages << VIRTIO_BALLOON_PFN_SHIFT);
}

static void balloon_save(const struct device *d, struct snap_writer *w)
{
	virtio_balloon_save(d->virtio, w);
}

static int balloon_restore(struct device *d, struct section_in *in)
{
	return virtio_balloon_restore(d->virtio, in);
}

const struct device_kind virtio_balloon_kind = {
	.name = "virtio-balloon",
	.section = "balloon",
	.max = 1,
	.config_size = sizeof(struct balloon_config),
	.parse_json = balloon_parse_json,
	.to_json = balloon_to_json,
	.option = "balloon",
	.option_usage = "MIB[,deflate-on-oom][,stats=SECONDS]",
	.parse_option = balloon_parse_option,
	.create = balloon_create,
	.check_put = balloon_check_put,
	.families = balloon_families,
	.nfamilies = sizeof(balloon_families) / sizeof(balloon_families[0]),
	.stats = balloon_stats,
	.save = balloon_save,
	.restore = balloon_restore,
};
