/* The configuration back as JSON, in the shape config_load_* reads (GET /vm/config):
 * what an API client configured can be saved and given to --config. Each device
 * kind writes its own entries. */
#include <jansson.h>
#include <stdio.h>

#include "common/log.h"
#include "devices/device_kind.h"
#include "vmm/config.h"
#include "vmm/config_json.h"

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

json_t *config_rate_limiter_json(const struct rate_limiter_config *r)
{
	if (!r->bandwidth.size && !r->ops.size)
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_json(&r->bandwidth), "ops",
			 bucket_json(&r->ops));
}

/* A kind's section: the array of its devices (even empty) for a kind with ids, else
 * its one device's object when there is one. */
static void put_device_section(json_t *root, const struct vm_config *cfg,
			       const struct device_kind *kind, bool *ok)
{
	int n = config_device_count(cfg, kind);
	if (!kind->id_field) { /* null when absent, as Firecracker's */
		put(root, kind->section,
		    n ? kind->to_json(config_device_nth(cfg, kind, 0)) : json_null(), ok);
		return;
	}
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++) {
		if (json_array_append_new(a, kind->to_json(config_device_nth(cfg, kind, i)))) {
			json_decref(a);
			a = NULL;
		}
	}
	put(root, kind->section, a, ok);
}

static const char *level_name(int level)
{
	static const char *const names[] = { [LOG_ERROR] = "Error", [LOG_WARN] = "Warning",
					     [LOG_INFO] = "Info", [LOG_DEBUG] = "Debug" };
	if (level == LOGGER_LEVEL_OFF)
		return "Off";
	return level >= 0 && level <= LOG_DEBUG ? names[level] : names[log_get_level()];
}

static void put_sections(json_t *root, const struct vm_config *cfg, bool *ok)
{
	for (int k = 0; device_kinds[k]; k++)
		put_device_section(root, cfg, device_kinds[k], ok);
	if (cfg->metrics.metrics_path)
		put(root, "metrics", json_pack("{s:s, s:I, s:b}", "metrics_path",
					       cfg->metrics.metrics_path, "period_ms",
					       (json_int_t)cfg->metrics.period_ms, "emit_id",
					       cfg->metrics.emit_id), ok);
	else
		put(root, "metrics", json_null(), ok); /* Firecracker's null when unset */
	put(root, "logger", json_pack("{s:o, s:s, s:b, s:b}", "log_path",
				      string_or_null(cfg->logger.log_path), "level",
				      level_name(cfg->logger.level), "show_level",
				      cfg->logger.show_level, "show_log_origin",
				      cfg->logger.show_log_origin), ok);
}

json_t *config_machine_json(const struct vm_config *cfg)
{
	return json_pack("{s:i, s:I, s:b, s:b, s:s}", "vcpu_count", cfg->vcpus, "mem_size_mib",
			 (json_int_t)cfg->mem_mib, "smt", cfg->smt, "track_dirty_pages",
			 cfg->track_dirty_pages, "huge_pages",
			 config_huge_pages_name(cfg->huge_pages));
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
	put(root, "machine-config", config_machine_json(cfg), &ok);
	put_sections(root, cfg, &ok);
	/* Firecracker's sections argon has nothing for (config.c), empty as it writes them. */
	put(root, "cpu-config", json_null(), &ok);
	put(root, "mmds-config", json_null(), &ok);
	put(root, "pmem", json_array(), &ok);
	put(root, "memory-hotplug", json_null(), &ok);
	if (!ok) {
		json_decref(root);
		return NULL;
	}
	return root;
}
