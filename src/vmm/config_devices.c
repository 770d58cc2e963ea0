/* The device sections of a configuration: each kind's entries kept in the order
 * given, parsed by the kind (devices/NAME_kind.c), plus the pieces of JSON several
 * kinds share (rate limiters, MAC addresses). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_kind.h"
#include "vmm/config_json.h"

#define FOREACH_FIELD(obj, key, value) json_object_foreach(obj, key, value)

int config_unknown_field(struct parse_ctx *ctx, const char *path, const char *expected)
{
	return config_fail(ctx, "%s: unknown field (expected %s)", path, expected);
}

static int unknown(struct parse_ctx *ctx, const char *path, const char *expected)
{
	return config_unknown_field(ctx, path, expected);
}

static int parse_bucket(struct parse_ctx *ctx, const char *path, json_t *obj,
			struct token_bucket_config *b)
{
	if (!json_is_object(obj))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *value;
	FOREACH_FIELD(obj, key, value) {
		char p[160];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		uint64_t *field = strcmp(key, "size") == 0		 ? &b->size
				  : strcmp(key, "one_time_burst") == 0 ? &b->one_time_burst
				  : strcmp(key, "refill_time") == 0    ? &b->refill_time_ms
								       : NULL;
		if (!field)
			return unknown(ctx, p, "size, one_time_burst, refill_time");
		if (config_take_uint(ctx, p, value, 0, UINT64_MAX >> 1, field))
			return -1;
	}
	if (b->size && !b->refill_time_ms)
		return config_fail(ctx, "%s.refill_time: must be above 0 when size is set", path);
	return 0;
}

int config_take_rate_limiter(struct parse_ctx *ctx, const char *path, json_t *value,
			     struct rate_limiter_config *out)
{
	if (json_is_null(value)) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (!json_is_object(value))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *v;
	FOREACH_FIELD(value, key, v) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		struct token_bucket_config *b = strcmp(key, "bandwidth") == 0 ? &out->bandwidth
						: strcmp(key, "ops") == 0     ? &out->ops
									      : NULL;
		if (!b)
			return unknown(ctx, p, "bandwidth, ops");
		if (!json_is_null(v) && parse_bucket(ctx, p, v, b))
			return -1;
	}
	return 0;
}

/* "AA:FC:00:00:00:01" */
int config_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
			 &tail) != 6 || strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}


struct rate_limiter_config *config_patched_limiter(json_t *body, const char *key,
						   struct rate_limiter_config *out)
{
	char err[256];
	struct parse_ctx ctx = { .err = err, .errlen = sizeof(err) };
	json_t *value = json_object_get(body, key);
	if (!value || json_is_null(value))
		return NULL;
	memset(out, 0, sizeof(*out));
	return config_take_rate_limiter(&ctx, key, value, out) ? NULL : out;
}

/* ---- the list of devices ---- */

void *config_device_new(const struct device_kind *kind)
{
	void *conf = calloc(1, kind->config_size);
	if (conf && kind->config_init)
		kind->config_init(conf);
	return conf;
}

void config_device_free(const struct device_kind *kind, void *conf)
{
	if (conf && kind->config_clear)
		kind->config_clear(conf);
	free(conf);
}

int config_device_count(const struct vm_config *cfg, const struct device_kind *kind)
{
	int n = 0;
	for (int i = 0; i < cfg->ndevices; i++)
		n += cfg->devices[i].kind == kind;
	return n;
}

void *config_device_nth(const struct vm_config *cfg, const struct device_kind *kind, int k)
{
	for (int i = 0; i < cfg->ndevices; i++)
		if (cfg->devices[i].kind == kind && k-- == 0)
			return cfg->devices[i].conf;
	return NULL;
}

static int find(const struct vm_config *cfg, const struct device_kind *kind, const char *id)
{
	for (int i = 0; i < cfg->ndevices; i++) {
		const struct device_config *d = &cfg->devices[i];
		if (d->kind == kind && (!id || strcmp(device_kind_id(kind, d->conf), id) == 0))
			return i;
	}
	return -1;
}

void *config_device(const struct vm_config *cfg, const struct device_kind *kind, const char *id)
{
	int i = find(cfg, kind, id);
	return i < 0 ? NULL : cfg->devices[i].conf;
}

int config_device_append(struct vm_config *cfg, const struct device_kind *kind, void *conf)
{
	if (cfg->ndevices == CONFIG_MAX_DEVICES) {
		config_device_free(kind, conf);
		return -ENOSPC;
	}
	cfg->devices[cfg->ndevices++] = (struct device_config){ .kind = kind, .conf = conf };
	return 0;
}

int config_device_put(struct vm_config *cfg, const struct device_kind *kind, void *conf)
{
	int i = find(cfg, kind, device_kind_id(kind, conf));
	if (i < 0)
		return config_device_append(cfg, kind, conf);
	config_device_free(kind, cfg->devices[i].conf);
	cfg->devices[i].conf = conf;
	return 0;
}

void config_devices_free(struct vm_config *cfg)
{
	for (int i = 0; i < cfg->ndevices; i++)
		config_device_free(cfg->devices[i].kind, cfg->devices[i].conf);
	cfg->ndevices = 0;
}

/* ---- sections ---- */

/* An array section: each entry is a new device. */
static int parse_entries(struct parse_ctx *ctx, const struct device_kind *kind, json_t *array,
			 struct vm_config *cfg)
{
	size_t i;
	json_t *obj;
	json_array_foreach(array, i, obj) {
		char path[96];
		snprintf(path, sizeof(path), "%s[%zu]", kind->section, i);
		void *conf = NULL;
		if (config_device_count(cfg, kind) == kind->max)
			return config_fail(ctx, "%s: at most %d %s", path, kind->max, kind->plural);
		if (!(conf = config_device_new(kind)) || config_device_append(cfg, kind, conf))
			return config_fail(ctx, "%s: out of memory", path);
		if (kind->parse_json(ctx, path, obj, conf))
			return -1;
	}
	return 0;
}

int config_parse_device_section(struct parse_ctx *ctx, const struct device_kind *kind,
				json_t *value, struct vm_config *cfg)
{
	if (kind->id_field)
		return parse_entries(ctx, kind, value, cfg);
	/* The one device of its kind: read over what an earlier source (the command line,
	 * another file) set. */
	void *conf = config_device(cfg, kind, NULL);
	if (!conf && (!(conf = config_device_new(kind)) || config_device_append(cfg, kind, conf)))
		return config_fail(ctx, "%s: out of memory", kind->section);
	return kind->parse_json(ctx, kind->section, value, conf);
}
