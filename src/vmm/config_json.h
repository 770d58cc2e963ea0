/* Helpers shared by the JSON configuration parsers (config.c, config_devices.c,
 * and each device kind's devices/NAME_kind.c):
 * every message starts with the file (or API resource) name and the field path. */
#ifndef ARGON_VMM_CONFIG_JSON_H
#define ARGON_VMM_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/rate_limiter.h"
#include "vmm/config.h"

struct parse_ctx {
	const char *name; /* file name or API resource, for messages; NULL: no prefix */
	char *err;
	size_t errlen;
};

int config_fail(struct parse_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Each returns 0 or -1 with a message naming path. */
int config_take_string(struct parse_ctx *ctx, const char *path, json_t *value, char **field);
int config_take_bool(struct parse_ctx *ctx, const char *path, json_t *value, bool *out);
int config_take_uint(struct parse_ctx *ctx, const char *path, json_t *value, uint64_t min,
		     uint64_t max, uint64_t *out);
int config_take_rate_limiter(struct parse_ctx *ctx, const char *path, json_t *value,
			     struct rate_limiter_config *out);

/* One top-level section by its name ("boot-source", "drives", ...): what a config
 * file's key and an API resource share. value must be of the section's type (object
 * or array); null leaves an object section as it is. */
int config_parse_section(struct parse_ctx *ctx, const char *key, json_t *value,
			 struct vm_config *cfg);
int config_parse_boot_source(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg);
int config_parse_machine_config(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg);
/* machine-config as GET /machine-config and GET /vm/config show it, Firecracker's shape:
 * vcpu_count, mem_size_mib, smt, track_dirty_pages, huge_pages. */
json_t *config_machine_json(const struct vm_config *cfg);
/* "None", "Transparent", "2M" */
const char *config_huge_pages_name(enum guest_mem_pages pages);

/* A device kind's section (devices/device_kind.h): an array of entries for a kind with
 * ids, else the object of its one device, read over what is there. */
struct device_kind;
int config_parse_device_section(struct parse_ctx *ctx, const struct device_kind *kind,
				json_t *value, struct vm_config *cfg);
/* "PATH: unknown field (expected EXPECTED)". Returns -1. */
int config_unknown_field(struct parse_ctx *ctx, const char *path, const char *expected);
/* A rate limiter in the form config_take_rate_limiter reads (null when unset). */
json_t *config_rate_limiter_json(const struct rate_limiter_config *r);
/* A rate limiter given in a PATCH body (already checked) replaces the old one; null or
 * absent keeps it, as Firecracker's optional fields do. Returns out or NULL. */
struct rate_limiter_config *config_patched_limiter(json_t *body, const char *key,
						   struct rate_limiter_config *out);
/* config_observe.c: Firecracker's logger and metrics objects. */
void config_logger_init(struct logger_config *l);
int config_parse_logger(struct parse_ctx *ctx, json_t *obj, struct logger_config *l);
int config_parse_metrics(struct parse_ctx *ctx, json_t *obj, struct metrics_config *m);

/* Frees every device's settings. */
void config_devices_free(struct vm_config *cfg);

/* "AA:FC:00:00:00:01" into mac; returns 0 or -1. */
int config_parse_mac(const char *s, uint8_t mac[6]);

#endif
