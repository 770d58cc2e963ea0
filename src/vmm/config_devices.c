/* JSON for the device sections, with Firecracker's field names: drives,
 * network-interfaces, vsock, balloon, entropy. The API (PUT /drives/{id}, ...) parses
 * the same objects through these functions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_json.h"

#define FOREACH_FIELD(obj, key, value) json_object_foreach(obj, key, value)

static int unknown(struct parse_ctx *ctx, const char *path, const char *expected)
{
	return config_fail(ctx, "%s: unknown field (expected %s)", path, expected);
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

int config_parse_drive(struct parse_ctx *ctx, const char *path, json_t *obj, struct drive_config *d)
{
	if (!json_is_object(obj))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *v;
	FOREACH_FIELD(obj, key, v) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		int err;
		if (strcmp(key, "drive_id") == 0)
			err = config_take_string(ctx, p, v, &d->drive_id);
		else if (strcmp(key, "path_on_host") == 0)
			err = config_take_string(ctx, p, v, &d->path_on_host);
		else if (strcmp(key, "is_read_only") == 0)
			err = config_take_bool(ctx, p, v, &d->is_read_only);
		else if (strcmp(key, "is_root_device") == 0)
			err = config_take_bool(ctx, p, v, &d->is_root_device);
		else if (strcmp(key, "cache_type") == 0)
			err = take_cache_type(ctx, p, v, &d->cache_type);
		else if (strcmp(key, "rate_limiter") == 0)
			err = config_take_rate_limiter(ctx, p, v, &d->rate_limiter);
		else if (strcmp(key, "partuuid") == 0 || strcmp(key, "io_engine") == 0)
			err = json_is_string(v) || json_is_null(v) ? 0
				: config_fail(ctx, "%s: expected a string", p);
		else
			err = unknown(ctx, p, "drive_id, path_on_host, is_read_only, is_root_device, "
					      "cache_type, rate_limiter");
		if (err)
			return -1;
	}
	if (!d->drive_id || !d->path_on_host)
		return config_fail(ctx, "%s: drive_id and path_on_host are required", path);
	return 0;
}

int config_parse_drives(struct parse_ctx *ctx, json_t *array, struct vm_config *cfg)
{
	size_t i;
	json_t *obj;
	json_array_foreach(array, i, obj) {
		char path[32];
		snprintf(path, sizeof(path), "drives[%zu]", i);
		if (cfg->ndrives == CONFIG_MAX_DRIVES)
			return config_fail(ctx, "%s: at most %d drives", path, CONFIG_MAX_DRIVES);
		struct drive_config *d = &cfg->drives[cfg->ndrives++];
		if (config_parse_drive(ctx, path, obj, d))
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

static int take_mac(struct parse_ctx *ctx, const char *path, json_t *v, struct net_config *n)
{
	if (config_parse_mac(json_string_value(v), n->guest_mac))
		return config_fail(ctx, "%s: expected a MAC address like \"AA:FC:00:00:00:01\"", path);
	if (n->guest_mac[0] & 1)
		return config_fail(ctx, "%s: a multicast address cannot be a guest's MAC", path);
	n->has_guest_mac = true;
	return 0;
}

int config_parse_net(struct parse_ctx *ctx, const char *path, json_t *obj, struct net_config *n)
{
	if (!json_is_object(obj))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *v;
	FOREACH_FIELD(obj, key, v) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		int err;
		if (strcmp(key, "iface_id") == 0)
			err = config_take_string(ctx, p, v, &n->iface_id);
		else if (strcmp(key, "host_dev_name") == 0)
			err = config_take_string(ctx, p, v, &n->host_dev_name);
		else if (strcmp(key, "guest_mac") == 0)
			err = take_mac(ctx, p, v, n);
		else if (strcmp(key, "rx_rate_limiter") == 0)
			err = config_take_rate_limiter(ctx, p, v, &n->rx_rate_limiter);
		else if (strcmp(key, "tx_rate_limiter") == 0)
			err = config_take_rate_limiter(ctx, p, v, &n->tx_rate_limiter);
		else
			err = unknown(ctx, p, "iface_id, host_dev_name, guest_mac, rx_rate_limiter, "
					      "tx_rate_limiter");
		if (err)
			return -1;
	}
	if (!n->iface_id || !n->host_dev_name)
		return config_fail(ctx, "%s: iface_id and host_dev_name are required", path);
	return 0;
}

int config_parse_nets(struct parse_ctx *ctx, json_t *array, struct vm_config *cfg)
{
	size_t i;
	json_t *obj;
	json_array_foreach(array, i, obj) {
		char path[64];
		snprintf(path, sizeof(path), "network-interfaces[%zu]", i);
		if (cfg->nnets == CONFIG_MAX_NETS)
			return config_fail(ctx, "%s: at most %d interfaces", path, CONFIG_MAX_NETS);
		struct net_config *n = &cfg->nets[cfg->nnets++];
		n->tap_fd = -1;
		if (config_parse_net(ctx, path, obj, n))
			return -1;
	}
	return 0;
}

int config_parse_vsock(struct parse_ctx *ctx, json_t *obj, struct vsock_config *vs)
{
	const char *key;
	json_t *v;
	FOREACH_FIELD(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "vsock.%s", key);
		uint64_t cid = 0;
		int err;
		if (strcmp(key, "guest_cid") == 0) {
			err = config_take_uint(ctx, p, v, 3, UINT32_MAX - 1, &cid);
			vs->guest_cid = (uint32_t)cid;
		} else if (strcmp(key, "uds_path") == 0) {
			err = config_take_string(ctx, p, v, &vs->uds_path);
		} else if (strcmp(key, "vsock_id") == 0) {
			err = json_is_string(v) ? 0 : config_fail(ctx, "%s: expected a string", p);
		} else {
			err = unknown(ctx, p, "guest_cid, uds_path");
		}
		if (err)
			return -1;
	}
	if (!vs->guest_cid || !vs->uds_path)
		return config_fail(ctx, "vsock: guest_cid and uds_path are required");
	vs->enabled = true;
	return 0;
}

int config_parse_balloon(struct parse_ctx *ctx, json_t *obj, struct balloon_config *b)
{
	const char *key;
	json_t *v;
	FOREACH_FIELD(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "balloon.%s", key);
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
			err = unknown(ctx, p, "amount_mib, deflate_on_oom, stats_polling_interval_s");
		}
		if (err)
			return -1;
	}
	b->enabled = true;
	return 0;
}

int config_parse_entropy(struct parse_ctx *ctx, json_t *obj, struct entropy_config *e)
{
	const char *key;
	json_t *v;
	FOREACH_FIELD(obj, key, v) {
		if (strcmp(key, "rate_limiter") != 0) {
			char p[64];
			snprintf(p, sizeof(p), "entropy.%s", key);
			return unknown(ctx, p, "rate_limiter");
		}
		if (config_take_rate_limiter(ctx, "entropy.rate_limiter", v, &e->rate_limiter))
			return -1;
	}
	e->enabled = true;
	return 0;
}
