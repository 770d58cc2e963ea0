/* Helpers shared by the JSON configuration parsers (config.c, config_devices.c):
 * every message starts with the file (or API resource) name and the field path. */
#ifndef ARGON_VMM_CONFIG_JSON_H
#define ARGON_VMM_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Device sections: obj is the section's JSON (an array for drives and interfaces). */
int config_parse_drives(struct parse_ctx *ctx, json_t *array, struct vm_config *cfg);
int config_parse_drive(struct parse_ctx *ctx, const char *path, json_t *obj,
		       struct drive_config *d);
int config_parse_nets(struct parse_ctx *ctx, json_t *array, struct vm_config *cfg);
int config_parse_net(struct parse_ctx *ctx, const char *path, json_t *obj, struct net_config *n);
int config_parse_vsock(struct parse_ctx *ctx, json_t *obj, struct vsock_config *v);
int config_parse_balloon(struct parse_ctx *ctx, json_t *obj, struct balloon_config *b);
int config_parse_entropy(struct parse_ctx *ctx, json_t *obj, struct entropy_config *e);
/* config_observe.c: Firecracker's logger and metrics objects. */
void config_logger_init(struct logger_config *l);
int config_parse_logger(struct parse_ctx *ctx, json_t *obj, struct logger_config *l);
int config_parse_metrics(struct parse_ctx *ctx, json_t *obj, struct metrics_config *m);

/* Frees a device's strings and zeroes it (tap_fd -1). */
void config_drive_clear(struct drive_config *d);
void config_net_clear(struct net_config *n);

/* "AA:FC:00:00:00:01" into mac; returns 0 or -1. */
int config_parse_mac(const char *s, uint8_t mac[6]);

#endif
