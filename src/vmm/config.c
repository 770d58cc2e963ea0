#include "vmm/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = CONFIG_DEFAULT_VCPUS;
	cfg->mem_mib = CONFIG_DEFAULT_MEM_MIB;
}

void config_free(struct vm_config *cfg)
{
	free(cfg->kernel_path);
	free(cfg->initrd_path);
	free(cfg->cmdline);
	memset(cfg, 0, sizeof(*cfg));
}

int config_set_string(char **field, const char *value)
{
	char *copy = value ? strdup(value) : NULL;
	if (value && !copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

struct parse_ctx {
	const char *name; /* file name, for messages */
	char *err;
	size_t errlen;
};

static int fail(struct parse_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct parse_ctx *ctx, const char *fmt, ...)
{
	int n = snprintf(ctx->err, ctx->errlen, "%s: ", ctx->name);
	if (n >= 0 && (size_t)n < ctx->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int take_string(struct parse_ctx *ctx, const char *section, const char *key,
		       json_t *value, char **field)
{
	if (json_is_null(value))
		return config_set_string(field, NULL);
	if (!json_is_string(value))
		return fail(ctx, "%s.%s: expected a string", section, key);
	return config_set_string(field, json_string_value(value)) ? -1 : 0;
}

static int parse_boot_source(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg)
{
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value) {
		int err;
		if (strcmp(key, "kernel_image_path") == 0)
			err = take_string(ctx, "boot-source", key, value, &cfg->kernel_path);
		else if (strcmp(key, "initrd_path") == 0)
			err = take_string(ctx, "boot-source", key, value, &cfg->initrd_path);
		else if (strcmp(key, "boot_args") == 0)
			err = take_string(ctx, "boot-source", key, value, &cfg->cmdline);
		else
			err = fail(ctx, "%s.%s: unknown field (expected kernel_image_path, "
					"initrd_path, boot_args)", "boot-source", key);
		if (err)
			return -1;
	}
	return 0;
}

static int take_int(struct parse_ctx *ctx, const char *key, json_t *value, long long min,
		    long long max, long long *out)
{
	if (!json_is_integer(value))
		return fail(ctx, "machine-config.%s: expected an integer", key);
	long long v = json_integer_value(value);
	if (v < min || v > max)
		return fail(ctx, "machine-config.%s: %lld is out of range, expected %lld..%lld", key,
			    v, min, max);
	*out = v;
	return 0;
}

static int parse_machine_config(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg)
{
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value) {
		long long v = 0;
		if (strcmp(key, "vcpu_count") == 0) {
			if (take_int(ctx, key, value, 1, VM_MAX_VCPUS, &v))
				return -1;
			cfg->vcpus = (int)v;
		} else if (strcmp(key, "mem_size_mib") == 0) {
			if (take_int(ctx, key, value, VM_MIN_MEM_MIB, 1LL << 30, &v))
				return -1;
			cfg->mem_mib = (uint64_t)v;
		} else if (strcmp(key, "smt") == 0 || strcmp(key, "track_dirty_pages") == 0) {
			if (!json_is_boolean(value))
				return fail(ctx, "%s.%s: expected true or false", "machine-config",
					    key);
		} else {
			return fail(ctx, "%s.%s: unknown field (expected vcpu_count, mem_size_mib)",
				    "machine-config", key);
		}
	}
	return 0;
}

static int parse_root(struct parse_ctx *ctx, json_t *root, struct vm_config *cfg)
{
	if (!json_is_object(root))
		return fail(ctx, "expected a JSON object at the top level");
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value) {
		bool boot = strcmp(key, "boot-source") == 0;
		if (!boot && strcmp(key, "machine-config") != 0)
			return fail(ctx, "%s: unknown section (expected boot-source, machine-config)",
				    key);
		if (!json_is_object(value))
			return fail(ctx, "%s: expected an object", key);
		int err = boot ? parse_boot_source(ctx, value, cfg)
			       : parse_machine_config(ctx, value, cfg);
		if (err)
			return -1;
	}
	return 0;
}

static int load(struct vm_config *cfg, struct parse_ctx *ctx, json_t *root, json_error_t *jerr)
{
	if (!root) {
		snprintf(ctx->err, ctx->errlen, "%s: line %d column %d: %s", ctx->name, jerr->line,
			 jerr->column, jerr->text);
		return -1;
	}
	int err = parse_root(ctx, root, cfg);
	json_decref(root);
	return err;
}

int config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .name = path, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	return load(cfg, &ctx, root, &jerr);
}

int config_load_string(struct vm_config *cfg, const char *name, const char *json, char *err,
		       size_t errlen)
{
	struct parse_ctx ctx = { .name = name, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	return load(cfg, &ctx, root, &jerr);
}
