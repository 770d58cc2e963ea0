/* virtio-vsock as the rest of the VMM sees it: Firecracker's "vsock" object, the
 * --vsock option, PUT /vsock, and the vsock metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/virtio_vsock.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/config_json.h"
#include "vmm/metrics.h"

static void vsock_config_clear(void *conf)
{
	struct vsock_config *vs = conf;
	free(vs->uds_path);
	memset(vs, 0, sizeof(*vs));
}

static int take_field(struct parse_ctx *ctx, const char *p, const char *key, json_t *v,
		      struct vsock_config *vs)
{
	uint64_t cid = 0;
	if (strcmp(key, "guest_cid") == 0) {
		int err = config_take_uint(ctx, p, v, 3, UINT32_MAX - 1, &cid);
		vs->guest_cid = (uint32_t)cid;
		return err;
	}
	if (strcmp(key, "uds_path") == 0)
		return config_take_string(ctx, p, v, &vs->uds_path);
	if (strcmp(key, "vsock_id") == 0) { /* deprecated by Firecracker; argon has one vsock */
		vs->vsock_id_given = json_is_string(v);
		return json_is_string(v) || json_is_null(v)
			       ? 0 : config_fail(ctx, "%s: expected a string", p);
	}
	return config_unknown_field(ctx, p, "guest_cid, uds_path");
}

static int vsock_parse_json(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf)
{
	struct vsock_config *vs = conf;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (take_field(ctx, p, key, v, vs))
			return -1;
	}
	if (!vs->guest_cid || !vs->uds_path)
		return config_fail(ctx, "%s: guest_cid and uds_path are required", path);
	return 0;
}

static json_t *vsock_to_json(const void *conf)
{
	const struct vsock_config *vs = conf;
	return json_pack("{s:I, s:s}", "guest_cid", (json_int_t)vs->guest_cid, "uds_path",
			 vs->uds_path);
}

/* --vsock cid=N,uds=PATH */
static int vsock_parse_option(void *conf, const char *arg, int index, char *err, size_t errlen)
{
	struct vsock_config *vs = conf;
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = copy ? 0 : -1;
	while (!rc && (item = config_arg_next(&cursor))) {
		uint64_t cid;
		if (strncmp(item, "cid=", 4) == 0 && !config_arg_size(item + 4, &cid) && cid >= 3 &&
		    cid < UINT32_MAX)
			vs->guest_cid = (uint32_t)cid;
		else if (strncmp(item, "uds=", 4) == 0 && item[4])
			rc = config_set_string(&vs->uds_path, item + 4);
		else
			rc = config_arg_fail(err, errlen, "--vsock", item,
					     "expected cid=N (3 or more) or uds=PATH");
	}
	free(copy);
	if (!rc && (!vs->guest_cid || !vs->uds_path))
		rc = config_arg_fail(err, errlen, "--vsock", arg,
				     "both cid=N and uds=PATH are required");
	return rc;
}

static int vsock_create(struct vm *vm, const void *conf)
{
	return virtio_vsock_create(vm, conf);
}

/* Firecracker's words when vsock_id comes in a PUT (and its Deprecation header). */
static const char *vsock_deprecation(const void *conf)
{
	const struct vsock_config *vs = conf;
	return vs->vsock_id_given ? "PUT /vsock: vsock_id field is deprecated." : NULL;
}

static int vsock_check_put(struct device_request *rq, const void *conf)
{
	const struct vsock_config *vs = conf;
	return rq->check_path(rq, "vsock.uds_path", vs->uds_path, API_PATH_NEW_SOCKET, false);
}

static const struct metric_family vsock_families[] = {
	METRIC_FAMILY("argon_vsock_bytes_total", "counter",
		      "Stream payload bytes, tx = guest to host", "direction", NULL, false),
	METRIC_FAMILY("argon_vsock_packets_total", "counter",
		      "vsock packets, tx = from the guest", "direction", NULL, false),
	METRIC_FAMILY("argon_vsock_errors_total", "counter",
		      "Guest packets dropped as malformed or misaddressed (dropped), resets "
		      "sent (rst), connections refused (refused), data beyond the credit "
		      "we gave (credit)",
		      "kind", NULL, false),
	METRIC_FAMILY("argon_vsock_connections", "gauge",
		      "vsock streams open now", NULL, NULL, false),
};

static void vsock_stats(const struct device *d, struct metrics_sink *sink)
{
	struct vsock_stats s;
	uint32_t open_streams;
	virtio_vsock_get_stats(d->virtio, &s, &open_streams);
	const struct metric_family *bytes = &vsock_families[0], *packets = &vsock_families[1],
				   *errors = &vsock_families[2];
	metrics_add(sink, bytes, "tx", NULL, s.tx_bytes);
	metrics_add(sink, bytes, "rx", NULL, s.rx_bytes);
	metrics_add(sink, packets, "tx", NULL, s.tx_packets);
	metrics_add(sink, packets, "rx", NULL, s.rx_packets);
	metrics_add(sink, errors, "dropped", NULL, s.dropped);
	metrics_add(sink, errors, "rst", NULL, s.rst_sent);
	metrics_add(sink, errors, "refused", NULL, s.refused);
	metrics_add(sink, errors, "credit", NULL, s.credit_violations);
	metrics_add(sink, &vsock_families[3], NULL, NULL, open_streams);
}

static void vsock_quiesce(struct device *d)
{
	virtio_vsock_quiesce(d->virtio);
}

static int vsock_restore(struct device *d, struct section_in *in)
{
	return virtio_vsock_restore(d->virtio, in);
}

const struct device_kind virtio_vsock_kind = {
	.name = "virtio-vsock",
	.section = "vsock",
	.max = 1,
	.config_size = sizeof(struct vsock_config),
	.config_clear = vsock_config_clear,
	.parse_json = vsock_parse_json,
	.to_json = vsock_to_json,
	.option = "vsock",
	.option_usage = "cid=N,uds=PATH",
	.parse_option = vsock_parse_option,
	.create = vsock_create,
	.check_put = vsock_check_put,
	.deprecation = vsock_deprecation,
	.families = vsock_families,
	.nfamilies = sizeof(vsock_families) / sizeof(vsock_families[0]),
	.stats = vsock_stats,
	.quiesce = vsock_quiesce,
	.restore = vsock_restore,
};
