/* The configuration back as JSON, in the shape config_load_* reads (GET /vm/config):
 * what an API client configured can be saved and given to --config. */
#include <jansson.h>
#include <stdio.h>

#include "common/log.h"
#include "vmm/config.h"

/* json_object_set_new that remembers a failure (out of memory) in *ok. */
static void put(json_t *obj, const char *key, json_t *value, bool *ok)
{
	if (!value || json_object_set_new(obj, key, value))
		*ok = false;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *bucket_json(const struct token_bucket_config *b)
{
	if (!b->size)
		return json_null();
	return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)b->size, "one_time_burst",
			 (json_int_t)b->one_time_burst, "refill_time", (json_int_t)b->refill_time_ms);
}

static json_t *rate_limiter_json(const struct rate_limiter_config *r)
{
	if (!r->bandwidth.size && !r->ops.size)
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_json(&r->bandwidth), "ops",
			 bucket_json(&r->ops));
}

static json_t *drive_json(const struct drive_config *d)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:s, s:o}", "drive_id", d->drive_id, "path_on_host",
			 d->path_on_host, "is_read_only", d->is_read_only, "is_root_device",
			 d->is_root_device, "cache_type",
			 d->cache_type == DRIVE_CACHE_UNSAFE ? "Unsafe" : "Writeback",
			 "rate_limiter", rate_limiter_json(&d->rate_limiter));
}

static json_t *net_json(const struct net_config *n)
{
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "iface_id", n->iface_id, "host_dev_name",
			      n->host_dev_name, "rx_rate_limiter",
			      rate_limiter_json(&n->rx_rate_limiter), "tx_rate_limiter",
			      rate_limiter_json(&n->tx_rate_limiter));
	if (o && n->has_guest_mac) {
		char mac[18];
		const uint8_t *m = n->guest_mac;
		snprintf(mac, sizeof(mac), "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
		bool ok = true;
		put(o, "guest_mac", json_string(mac), &ok);
		if (!ok) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *devices_json(const void *items, int n, size_t size, json_t *(*one)(const void *))
{
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++) {
		if (json_array_append_new(a, one((const char *)items + (size_t)i * size))) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *drive_item(const void *p)
{
	return drive_json(p);
}

static json_t *net_item(const void *p)
{
	return net_json(p);
}

static const char *level_name(int level)
{
	static const char *const names[] = { [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
					     [LOG_INFO] = "Info", [LOG_DEBUG] = "Debug" };
	if (level == LOGGER_LEVEL_OFF)
		return "Off";
	return level >= 0 && level <= LOG_DEBUG ? names[level] : names[log_get_level()];
}

static void put_optional_sections(json_t *root, const struct vm_config *cfg, bool *ok)
{
	if (cfg->vsock.enabled)
		put(root, "vsock", json_pack("{s:I, s:s}", "guest_cid", (json_int_t)cfg->vsock.guest_cid,
					     "uds_path", cfg->vsock.uds_path), ok);
	if (cfg->balloon.enabled)
		put(root, "balloon", json_pack("{s:I, s:b, s:I}", "amount_mib",
					       (json_int_t)cfg->balloon.amount_mib, "deflate_on_oom",
					       cfg->balloon.deflate_on_oom, "stats_polling_interval_s",
					       (json_int_t)cfg->balloon.stats_polling_interval_s), ok);
	if (cfg->entropy.enabled)
		put(root, "entropy", json_pack("{s:o}", "rate_limiter",
					       rate_limiter_json(&cfg->entropy.rate_limiter)), ok);
	if (cfg->metrics.metrics_path)
		put(root, "metrics", json_pack("{s:s, s:I}", "metrics_path", cfg->metrics.metrics_path,
					       "period_ms", (json_int_t)cfg->metrics.period_ms), ok);
	put(root, "logger", json_pack("{s:o, s:s, s:b, s:b}", "log_path",
				      string_or_null(cfg->logger.log_path), "level",
				      level_name(cfg->logger.level), "show_level",
				      cfg->logger.show_level, "show_log_origin",
				      cfg->logger.show_log_origin), ok);
}

void *config_to_json(const struct vm_config *cfg)
{
	json_t *root = json_object();
	bool ok = root != NULL;
	if (!ok)
		return NULL;
	put(root, "boot-source", json_pack("{s:o, s:o, s:o}", "kernel_image_path",
					   string_or_null(cfg->kernel_path), "initrd_path",
					   string_or_null(cfg->initrd_path), "boot_args",
					   string_or_null(cfg->cmdline)), &ok);
	put(root, "machine-config", json_pack("{s:i, s:I, s:b, s:b}", "vcpu_count", cfg->vcpus,
					      "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", 0,
					      "track_dirty_pages", 0), &ok);
	put(root, "drives", devices_json(cfg->drives, cfg->ndrives, sizeof(cfg->drives[0]),
					 drive_item), &ok);
	put(root, "network-interfaces", devices_json(cfg->nets, cfg->nnets, sizeof(cfg->nets[0]),
						     net_item), &ok);
	put_optional_sections(root, cfg, &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}
