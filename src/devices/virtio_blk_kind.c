/* virtio-blk as the rest of the VMM sees it: Firecracker's drives[] entries, the
 * --disk option, PUT and PATCH /drives/{id}, root= on the kernel command line, and the
 * block metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/virtio_blk.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/config_json.h"
#include "vmm/metrics.h"

extern const struct device_kind virtio_blk_kind;

#define PATCH_DRIVE_FAILED "Unable to patch the block device: " /* Firecracker's words */

/* Firecracker's default cache_type is Unsafe: no flush offered (--disk keeps
 * writeback, see blk_parse_option). */
static void blk_config_init(void *conf)
{
	((struct drive_config *)conf)->cache_type = DRIVE_CACHE_UNSAFE;
}

static void blk_config_clear(void *conf)
{
	struct drive_config *d = conf;
	free(d->drive_id);
	free(d->path_on_host);
	free(d->partuuid);
	memset(d, 0, sizeof(*d));
}

static const char *blk_id(const void *conf)
{
	return ((const struct drive_config *)conf)->drive_id;
}

static int take_cache_type(struct parse_ctx *ctx, const char *path, json_t *v,
			   enum drive_cache *out)
{
	const char *s = json_string_value(v);
	if (s && strcmp(s, "Writeback") == 0)
		*out = DRIVE_CACHE_WRITEBACK;
	else if (s && strcmp(s, "Unsafe") == 0)
		*out = DRIVE_CACHE_UNSAFE;
	else
		return config_fail(ctx, "%s: expected \"Writeback\" or \"Unsafe\"", path);
	return 0;
}

static int take_io_engine(struct parse_ctx *ctx, const char *path, json_t *v,
			  enum block_engine *out)
{
	const char *s = json_string_value(v);
	if (json_is_null(v))
		*out = BLOCK_ENGINE_AUTO;
	else if (s && strcmp(s, "Sync") == 0)
		*out = BLOCK_ENGINE_THREADS;
	else if (s && strcmp(s, "Async") == 0)
		*out = BLOCK_ENGINE_IO_URING;
	else
		return config_fail(ctx, "%s: expected \"Sync\" or \"Async\"", path);
	return 0;
}

/* A partition UUID as the kernel's root=PARTUUID= reads it: GPT's 36-character UUID
 * or MBR's SSSSSSSS-PP, hex digits and dashes only (it goes on the command line). */
static int take_partuuid(struct parse_ctx *ctx, const char *path, json_t *v, char **out)
{
	const char *s = json_string_value(v);
	if (s && (!s[0] || strlen(s) > 36 || strspn(s, "0123456789abcdefABCDEF-") != strlen(s)))
		return config_fail(ctx, "%s: expected a partition UUID (hex digits and dashes, "
				   "at most 36)", path);
	return config_take_string(ctx, path, v, out);
}

/* Firecracker's vhost-user-blk drive: argon has no vhost-user backend. */
static int take_socket(struct parse_ctx *ctx, const char *path, json_t *v)
{
	if (json_is_null(v))
		return 0;
	return config_fail(ctx, "%s: vhost-user-blk drives are not supported (give "
			   "path_on_host for a virtio-blk drive)", path);
}

static int take_field(struct parse_ctx *ctx, const char *p, const char *key, json_t *v,
		      struct drive_config *d)
{
	if (strcmp(key, "drive_id") == 0)
		return config_take_string(ctx, p, v, &d->drive_id);
	if (strcmp(key, "path_on_host") == 0)
		return config_take_string(ctx, p, v, &d->path_on_host);
	if (strcmp(key, "is_read_only") == 0)
		return config_take_bool(ctx, p, v, &d->is_read_only);
	if (strcmp(key, "is_root_device") == 0)
		return config_take_bool(ctx, p, v, &d->is_root_device);
	if (strcmp(key, "cache_type") == 0)
		return take_cache_type(ctx, p, v, &d->cache_type);
	if (strcmp(key, "rate_limiter") == 0)
		return config_take_rate_limiter(ctx, p, v, &d->rate_limiter);
	if (strcmp(key, "partuuid") == 0)
		return take_partuuid(ctx, p, v, &d->partuuid);
	if (strcmp(key, "io_engine") == 0)
		return take_io_engine(ctx, p, v, &d->io_engine);
	if (strcmp(key, "socket") == 0)
		return take_socket(ctx, p, v);
	return config_unknown_field(ctx, p, "drive_id, path_on_host, is_read_only, "
					    "is_root_device, cache_type, rate_limiter");
}

static int blk_parse_json(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf)
{
	struct drive_config *d = conf;
	if (!json_is_object(obj))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (take_field(ctx, p, key, v, d))
			return -1;
	}
	if (!d->drive_id || !d->path_on_host)
		return config_fail(ctx, "%s: drive_id and path_on_host are required", path);
	return 0;
}

static json_t *io_engine_json(enum block_engine e)
{
	return e == BLOCK_ENGINE_THREADS    ? json_string("Sync")
	       : e == BLOCK_ENGINE_IO_URING ? json_string("Async")
					    : json_null();
}

/* Firecracker's shape: every field, null where nothing was given. */
static json_t *blk_to_json(const void *conf)
{
	const struct drive_config *d = conf;
	return json_pack("{s:s, s:s, s:b, s:b, s:s, s:o, s:o, s:o, s:n}", "drive_id", d->drive_id,
			 "path_on_host", d->path_on_host, "is_read_only", d->is_read_only,
			 "is_root_device", d->is_root_device, "cache_type",
			 d->cache_type == DRIVE_CACHE_UNSAFE ? "Unsafe" : "Writeback",
			 "rate_limiter", config_rate_limiter_json(&d->rate_limiter), "partuuid",
			 d->partuuid ? json_string(d->partuuid) : json_null(), "io_engine",
			 io_engine_json(d->io_engine), "socket");
}

/* --disk PATH[,ro][,id=NAME][,cache=writeback|unsafe][,bw=N][,ops=N]; the first disk
 * given is the root device, and a disk without id= is disk<index>. */
static int blk_parse_option(void *conf, const char *arg, int index, char *err, size_t errlen)
{
	struct drive_config *d = conf;
	if (index == VIRTIO_BLK_MAX_DRIVES)
		return config_arg_fail(err, errlen, "--disk", arg, "too many disks");
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = 0, bad;
	d->cache_type = DRIVE_CACHE_WRITEBACK; /* argon's own option: flushes reach the disk */
	if (!copy || config_set_string(&d->path_on_host, config_arg_next(&cursor)))
		rc = config_arg_fail(err, errlen, "--disk", arg, "expected PATH[,ro][,id=NAME]...");
	while (!rc && (item = config_arg_next(&cursor))) {
		if (config_arg_common(item, &d->drive_id, &d->rate_limiter, &bad))
			rc = bad ? config_arg_fail(err, errlen, "--disk", item,
						   "expected a positive size") : 0;
		else if (strcmp(item, "ro") == 0)
			d->is_read_only = true;
		else if (strcmp(item, "cache=writeback") == 0)
			d->cache_type = DRIVE_CACHE_WRITEBACK;
		else if (strcmp(item, "cache=unsafe") == 0)
			d->cache_type = DRIVE_CACHE_UNSAFE;
		else
			rc = config_arg_fail(err, errlen, "--disk", item, "expected ro, id=NAME, "
					     "cache=writeback|unsafe, bw=N or ops=N");
	}
	if (!rc && !d->drive_id) {
		char name[16];
		snprintf(name, sizeof(name), "disk%d", index);
		rc = config_set_string(&d->drive_id, name);
	}
	d->is_root_device = !rc && index == 0;
	free(copy);
	return rc ? -1 : 0;
}

static int blk_create(struct vm *vm, const void *conf)
{
	return virtio_blk_create(vm, conf);
}

/* As Firecracker does: a drive marked is_root_device becomes root= (root=PARTUUID= with
 * its partuuid) unless the user gave one. Drives are created in configuration order, so drive i is /dev/vd('a'+i). */
static void blk_kernel_args(const struct vm_config *cfg, const char *cmdline, char *out,
			    size_t len)
{
	if (strstr(cmdline, "root=") == cmdline || strstr(cmdline, " root="))
		return;
	int n = config_device_count(cfg, &virtio_blk_kind);
	for (int i = 0; i < n && i < 26; i++) {
		const struct drive_config *d = config_device_nth(cfg, &virtio_blk_kind, i);
		size_t used = strlen(out);
		if (d->is_root_device && d->partuuid) {
			snprintf(out + used, len - used, " root=PARTUUID=%s %s", d->partuuid,
				 d->is_read_only ? "ro" : "rw");
			return;
		}
		if (d->is_root_device) {
			snprintf(out + used, len - used, " root=/dev/vd%c %s", 'a' + i,
				 d->is_read_only ? "ro" : "rw");
			return;
		}
	}
}

/* PUT /drives/{id}: the image must be a file the guest may use, and one root only. */
static int blk_check_put(struct device_request *rq, const void *conf)
{
	const struct drive_config *d = conf;
	if (rq->check_path(rq, "drives.path_on_host", d->path_on_host, API_PATH_DRIVE,
			   d->is_read_only))
		return -1;
	int n = config_device_count(rq->cfg, &virtio_blk_kind);
	for (int i = 0; i < n && d->is_root_device; i++) {
		const struct drive_config *o = config_device_nth(rq->cfg, &virtio_blk_kind, i);
		if (o->is_root_device && strcmp(o->drive_id, d->drive_id) != 0)
			return rq->fail(rq, "A root block device already exists!");
	}
	return 0;
}

/* Why the device refused a drive's new image (its log has the details). */
static const char *image_refusal(int err)
{
	switch (err) {
	case -EBUSY: return "locked by another process (is another VMM using this disk?)";
	case -EINVAL: return "not a regular file or block device";
	default: return strerror(-err);
	}
}

/* The device takes the change, then the stored configuration follows. path (when
 * given) has been checked as PUT /drives checks it. */
static int update_drive(struct device_request *rq, struct virtio_device *dev,
			struct drive_config *d, const char *path,
			const struct rate_limiter_config *rl)
{
	char *copy = path ? strdup(path) : NULL;
	if (path && !copy)
		return rq->fail(rq, PATCH_DRIVE_FAILED "drive '%s': out of memory", d->drive_id);
	int err = dev ? virtio_blk_update(dev, path, rl) : -ENODEV;
	if (err) {
		free(copy);
		if (!dev)
			return rq->fail(rq, PATCH_DRIVE_FAILED "drive '%s' has no device",
					d->drive_id);
		return rq->fail(rq, PATCH_DRIVE_FAILED "drive '%s': %s: %s", d->drive_id, path,
				image_refusal(err));
	}
	if (copy) {
		free(d->path_on_host);
		d->path_on_host = copy;
	}
	if (rl)
		d->rate_limiter = *rl;
	return 0;
}

/* Firecracker's PATCH /drives/{id} after boot: a new backing file, whose capacity the
 * guest is told, and/or a new rate limiter. null or absent keeps a field. */
static int blk_patch(struct device_request *rq, struct virtio_device *dev, void *conf)
{
	struct drive_config *d = conf;
	const char *path = json_string_value(json_object_get(rq->body, "path_on_host"));
	struct rate_limiter_config rl_cfg;
	struct rate_limiter_config *rl = config_patched_limiter(rq->body, "rate_limiter", &rl_cfg);
	if (!path && !rl)
		return rq->fail(rq, PATCH_DRIVE_FAILED "drive '%s': nothing to change (expected "
				"path_on_host and/or rate_limiter)", rq->id);
	if (path && rq->check_path(rq, "drives.path_on_host", path, API_PATH_DRIVE,
				   d->is_read_only))
		return -1; /* the refusal names the path */
	return update_drive(rq, dev, d, path, rl);
}

static const struct metric_family blk_families[] = {
	METRIC_FAMILY("argon_block_bytes_total", "counter", "Bytes read and written per drive",
		      "drive", "op", false),
	METRIC_FAMILY("argon_block_ops_total", "counter", "Requests completed per drive and kind",
		      "drive", "op", false),
	METRIC_FAMILY("argon_block_errors_total", "counter",
		      "Requests failed by the host (io) or refused as malformed or "
		      "unsupported (bad_request)",
		      "drive", "kind", false),
};

static void blk_stats(const struct device *d, struct metrics_sink *sink)
{
	struct virtio_blk_stats s;
	virtio_blk_get_stats(d->virtio, &s);
	const char *drive = d->label + strlen("block:"); /* as long as the label holds */
	const struct metric_family *bytes = &blk_families[0], *ops = &blk_families[1],
				   *errors = &blk_families[2];
	metrics_add(sink, bytes, drive, "read", s.read_bytes);
	metrics_add(sink, bytes, drive, "write", s.write_bytes);
	metrics_add(sink, ops, drive, "read", s.read_ops);
	metrics_add(sink, ops, drive, "write", s.write_ops);
	metrics_add(sink, ops, drive, "flush", s.flush_ops);
	metrics_add(sink, ops, drive, "discard", s.discard_ops);
	metrics_add(sink, ops, drive, "write_zeroes", s.write_zeroes_ops);
	metrics_add(sink, ops, drive, "get_id", s.get_id_ops);
	metrics_add(sink, errors, drive, "io", s.io_errors);
	metrics_add(sink, errors, drive, "bad_request", s.bad_requests);
	metrics_add(sink, metrics_throttled, d->label, NULL, s.throttled);
}

static void blk_quiesce(struct device *d)
{
	virtio_blk_quiesce(d->virtio);
}

static void blk_save(const struct device *d, struct snap_writer *w)
{
	virtio_blk_save(d->virtio, w);
}

static int blk_restore(struct device *d, struct section_in *in)
{
	return virtio_blk_restore(d->virtio, in);
}

static const char *const blk_patch_fields[] = { "path_on_host", "rate_limiter", NULL };

const struct device_kind virtio_blk_kind = {
	.name = "virtio-blk",
	.section = "drives",
	.id_field = "drive_id",
	.max = VIRTIO_BLK_MAX_DRIVES,
	.plural = "drives",
	.noun = "drive",
	.config_size = sizeof(struct drive_config),
	.config_init = blk_config_init,
	.config_clear = blk_config_clear,
	.id = blk_id,
	.parse_json = blk_parse_json,
	.to_json = blk_to_json,
	.option = "disk",
	.option_usage = "PATH[,ro][,id=NAME][,cache=writeback|unsafe][,bw=N][,ops=N]",
	.parse_option = blk_parse_option,
	.create = blk_create,
	.kernel_args = blk_kernel_args,
	.check_put = blk_check_put,
	.patch_fields = blk_patch_fields,
	.patch_expected = "drive_id, path_on_host, rate_limiter",
	.patch = blk_patch,
	.metrics_label = "block",
	.families = blk_families,
	.nfamilies = sizeof(blk_families) / sizeof(blk_families[0]),
	.stats = blk_stats,
	.quiesce = blk_quiesce,
	.save = blk_save,
	.restore = blk_restore,
};
