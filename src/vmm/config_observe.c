/* JSON for Firecracker's logger and metrics objects: the "logger" and "metrics"
 * sections of a config file and the bodies of PUT /logger and PUT /metrics. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "vmm/config_json.h"

void config_logger_init(struct logger_config *l)
{
	l->log_path = NULL;
	l->level = LOGGER_LEVEL_UNSET;
	l->show_level = true;
	l->show_log_origin = true;
}

/* Firecracker's level names (any case) and argon's own. */
static const struct {
	const char *name;
	int level;
} level_names[] = {
	{ "Off", LOGGER_LEVEL_OFF }, { "Error", LOG_ERROR }, { "Warning", LOG_WARN },
	{ "Warn", LOG_WARN },	     { "Info", LOG_INFO },   { "Debug", LOG_DEBUG },
	{ "Trace", LOG_DEBUG },
};

static int take_level(struct parse_ctx *ctx, json_t *v, int *out)
{
	const char *s = json_string_value(v);
	for (size_t i = 0; s && i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i].name) == 0) {
			*out = level_names[i].level;
			return 0;
		}
	}
	return config_fail(ctx, "logger.level: expected \"Error\", \"Warning\", \"Info\", "
				"\"Debug\", \"Trace\" or \"Off\"");
}

int config_parse_logger(struct parse_ctx *ctx, json_t *obj, struct logger_config *l)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "logger.%s", key);
		int err;
		if (strcmp(key, "log_path") == 0)
			err = config_take_string(ctx, p, v, &l->log_path);
		else if (strcmp(key, "level") == 0)
			err = take_level(ctx, v, &l->level);
		else if (strcmp(key, "show_level") == 0)
			err = config_take_bool(ctx, p, v, &l->show_level);
		else if (strcmp(key, "show_log_origin") == 0)
			err = config_take_bool(ctx, p, v, &l->show_log_origin);
		else if (strcmp(key, "module") == 0)
			err = json_is_null(v) ? 0
				: config_fail(ctx, "%s: filtering by module is not supported", p);
		else
			err = config_fail(ctx, "%s: unknown field (expected log_path, level, "
					       "show_level, show_log_origin)", p);
		if (err)
			return -1;
	}
	return 0;
}

int config_parse_metrics(struct parse_ctx *ctx, json_t *obj, struct metrics_config *m)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[64];
		snprintf(p, sizeof(p), "metrics.%s", key);
		uint64_t ms = 0;
		int err;
		if (strcmp(key, "metrics_path") == 0) {
			err = config_take_string(ctx, p, v, &m->metrics_path);
		} else if (strcmp(key, "period_ms") == 0) {
			err = config_take_uint(ctx, p, v, 100, 3600000, &ms);
			m->period_ms = err ? m->period_ms : (uint32_t)ms;
		} else if (strcmp(key, "emit_id") == 0) {
			err = config_take_bool(ctx, p, v, &m->emit_id);
		} else {
			err = config_fail(ctx, "%s: unknown field (expected metrics_path, period_ms)", p);
		}
		if (err)
			return -1;
	}
	if (!m->metrics_path)
		return config_fail(ctx, "metrics.metrics_path: required");
	return 0;
}
