#include "vmm/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "devices/device_kind.h"
#include "vmm/config_json.h"
#include "vmm/vm.h"

void config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = CONFIG_DEFAULT_VCPUS;
	cfg->mem_mib = CONFIG_DEFAULT_MEM_MIB;
	config_logger_init(&cfg->logger);
	cfg->metrics.period_ms = METRICS_DEFAULT_PERIOD_MS;
}

void config_free(struct vm_config *cfg)
{
	free(cfg->kernel_path);
	free(cfg->initrd_path);
	free(cfg->cmdline);
	config_devices_free(cfg);
	free(cfg->logger.log_path);
	free(cfg->metrics.metrics_path);
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

int config_fail(struct parse_ctx *ctx, const char *fmt, ...)
{
	int n = ctx->name ? snprintf(ctx->err, ctx->errlen, "%s: ", ctx->name) : 0;
	if (n >= 0 && (size_t)n < ctx->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int config_take_string(struct parse_ctx *ctx, const char *path, json_t *value, char **field)
{
	if (json_is_null(value))
		return config_set_string(field, NULL);
	if (!json_is_string(value))
		return config_fail(ctx, "%s: expected a string", path);
	if (config_set_string(field, json_string_value(value)))
		return config_fail(ctx, "%s: out of memory", path);
	return 0;
}

int config_take_bool(struct parse_ctx *ctx, const char *path, json_t *value, bool *out)
{
	if (!json_is_boolean(value))
		return config_fail(ctx, "%s: expected true or false", path);
	*out = json_is_true(value);
	return 0;
}

int config_take_uint(struct parse_ctx *ctx, const char *path, json_t *value, uint64_t min,
		     uint64_t max, uint64_t *out)
{
	if (!json_is_integer(value))
		return config_fail(ctx, "%s: expected an integer", path);
	json_int_t v = json_integer_value(value);
	if (v < 0 || (uint64_t)v < min || (uint64_t)v > max)
		return config_fail(ctx, "%s: %lld is out of range, expected %llu..%llu", path,
				   (long long)v, (unsigned long long)min, (unsigned long long)max);
	*out = (uint64_t)v;
	return 0;
}

int config_parse_boot_source(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg)
{
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value) {
		char path[96];
		snprintf(path, sizeof(path), "boot-source.%s", key);
		int err;
		if (strcmp(key, "kernel_image_path") == 0)
			err = config_take_string(ctx, path, value, &cfg->kernel_path);
		else if (strcmp(key, "initrd_path") == 0)
			err = config_take_string(ctx, path, value, &cfg->initrd_path);
		else if (strcmp(key, "boot_args") == 0)
			err = config_take_string(ctx, path, value, &cfg->cmdline);
		else
			err = config_fail(ctx, "%s: unknown field (expected kernel_image_path, "
					       "initrd_path, boot_args)", path);
		if (err)
			return -1;
	}
	return 0;
}

/* Firecracker's names for machine-config.huge_pages. */
static const char *const huge_page_names[] = {
	[GUEST_MEM_PAGES_4K] = "None",
	[GUEST_MEM_PAGES_THP] = "Transparent",
	[GUEST_MEM_PAGES_HUGETLB_2M] = "2M",
};

const char *config_huge_pages_name(enum guest_mem_pages pages)
{
	return huge_page_names[pages];
}

static int take_huge_pages(struct parse_ctx *ctx, const char *path, json_t *value,
			   enum guest_mem_pages *out)
{
	const char *s = json_string_value(value);
	for (size_t i = 0; s && i < sizeof(huge_page_names) / sizeof(huge_page_names[0]); i++) {
		if (strcmp(s, huge_page_names[i]) == 0) {
			*out = (enum guest_mem_pages)i;
			return 0;
		}
	}
	return config_fail(ctx, "%s: expected \"None\", \"Transparent\" or \"2M\"", path);
}

static int take_machine_field(struct parse_ctx *ctx, const char *path, const char *key,
			      json_t *value, struct vm_config *cfg)
{
	uint64_t v = 0;
	int err;
	if (strcmp(key, "vcpu_count") == 0) {
		err = config_take_uint(ctx, path, value, 1, VM_MAX_VCPUS, &v);
		cfg->vcpus = err ? cfg->vcpus : (int)v;
	} else if (strcmp(key, "mem_size_mib") == 0) {
		err = config_take_uint(ctx, path, value, VM_MIN_MEM_MIB, 1ULL << 30, &v);
		cfg->mem_mib = err ? cfg->mem_mib : v;
	} else if (strcmp(key, "smt") == 0) {
		err = config_take_bool(ctx, path, value, &cfg->smt);
	} else if (strcmp(key, "track_dirty_pages") == 0) {
		err = config_take_bool(ctx, path, value, &cfg->track_dirty_pages);
	} else if (strcmp(key, "huge_pages") == 0) {
		err = take_huge_pages(ctx, path, value, &cfg->huge_pages);
	} else if (strcmp(key, "cpu_template") == 0) {
		err = json_is_null(value) || (json_is_string(value) &&
					      strcmp(json_string_value(value), "None") == 0)
			      ? 0 : config_fail(ctx, "%s: CPU templates are not supported (only "
						"\"None\")", path);
	} else {
		err = config_fail(ctx, "%s: unknown field (expected vcpu_count, mem_size_mib)",
				  path);
	}
	return err;
}

/* Firecracker's rules between the fields: with SMT, 1 or an even number of vCPUs;
 * with huge pages, memory in whole 2 MiB pages. */
static int check_machine(struct parse_ctx *ctx, const struct vm_config *cfg)
{
	if (cfg->smt && cfg->vcpus > 1 && cfg->vcpus % 2)
		return config_fail(ctx, "machine-config.vcpu_count: %d: with smt, 1 or an even "
					"number of vCPUs", cfg->vcpus);
	if (cfg->huge_pages != GUEST_MEM_PAGES_4K && cfg->mem_mib % 2)
		return config_fail(ctx, "machine-config.mem_size_mib: %llu: with huge_pages \"%s\", "
					"a multiple of 2 MiB", (unsigned long long)cfg->mem_mib,
				   config_huge_pages_name(cfg->huge_pages));
	return 0;
}

int config_parse_machine_config(struct parse_ctx *ctx, json_t *obj, struct vm_config *cfg)
{
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value) {
		char path[96];
		snprintf(path, sizeof(path), "machine-config.%s", key);
		if (take_machine_field(ctx, path, key, value, cfg))
			return -1;
	}
	return check_machine(ctx, cfg);
}

static int parse_logger_section(struct parse_ctx *ctx, json_t *v, struct vm_config *cfg)
{
	return config_parse_logger(ctx, v, &cfg->logger);
}

static int parse_metrics_section(struct parse_ctx *ctx, json_t *v, struct vm_config *cfg)
{
	return config_parse_metrics(ctx, v, &cfg->metrics);
}

/* The VMM's own sections, named as Firecracker's configuration file names them; the
 * device kinds' sections come between the first two and the rest. */
struct section {
	const char *name;
	int (*parse)(struct parse_ctx *ctx, json_t *value, struct vm_config *cfg);
};
static const struct section machine_sections[] = {
	{ "boot-source", config_parse_boot_source },
	{ "machine-config", config_parse_machine_config },
};
static const struct section observe_sections[] = {
	{ "logger", parse_logger_section },
	{ "metrics", parse_metrics_section },
};
#define NSECTIONS(a) (sizeof(a) / sizeof(a[0]))

static const struct section *find_section(const struct section *s, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].name, key) == 0)
			return &s[i];
	return NULL;
}

/* "boot-source, machine-config, drives, ..., metrics" */
static void section_names(char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < NSECTIONS(machine_sections); i++)
		used += (size_t)snprintf(out + used, len - used, "%s, ", machine_sections[i].name);
	for (int k = 0; device_kinds[k] && used < len; k++)
		used += (size_t)snprintf(out + used, len - used, "%s, ", device_kinds[k]->section);
	for (size_t i = 0; i < NSECTIONS(observe_sections) && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", observe_sections[i].name,
					 i + 1 < NSECTIONS(observe_sections) ? ", " : "");
}

static int unknown_section(struct parse_ctx *ctx, const char *key)
{
	char names[256];
	section_names(names, sizeof(names));
	return config_fail(ctx, "%s: unknown section (expected %s)", key, names);
}

/* Firecracker's sections argon has nothing for: accepted empty (null, or [] for an
 * array), as Firecracker's own GET /vm/config and vm_config.json write them, and
 * refused by name when they ask for something. */
static const struct {
	const char *name;
	bool is_array;
	const char *what;
} absent_sections[] = {
	{ "cpu-config", false, "custom CPU templates are" },
	{ "mmds-config", false, "the microVM metadata service (MMDS) is" },
	{ "pmem", true, "virtio-pmem devices are" },
	{ "memory-hotplug", false, "memory hot-plug is" },
};

/* 1 when key is one of them (0 or -1 in *err), 0 when it is not. */
static int absent_section(struct parse_ctx *ctx, const char *key, json_t *value, int *err)
{
	for (size_t i = 0; i < NSECTIONS(absent_sections); i++) {
		if (strcmp(absent_sections[i].name, key) != 0)
			continue;
		bool empty = json_is_null(value) ||
			     (absent_sections[i].is_array && json_is_array(value) &&
			      json_array_size(value) == 0);
		*err = empty ? 0 : config_fail(ctx, "%s: %s not supported", key,
					       absent_sections[i].what);
		return 1;
	}
	return 0;
}

int config_parse_section(struct parse_ctx *ctx, const char *key, json_t *value,
			 struct vm_config *cfg)
{
	int absent_err;
	if (absent_section(ctx, key, value, &absent_err))
		return absent_err;
	const struct section *s = find_section(machine_sections, NSECTIONS(machine_sections), key);
	if (!s)
		s = find_section(observe_sections, NSECTIONS(observe_sections), key);
	const struct device_kind *kind = s ? NULL : device_kind_by_section(key);
	if (!s && !kind)
		return unknown_section(ctx, key);
	bool is_array = kind && kind->id_field;
	if (json_is_null(value) && !is_array)
		return 0; /* Firecracker writes "vsock": null for an absent device */
	if (is_array ? !json_is_array(value) : !json_is_object(value))
		return config_fail(ctx, "%s: expected %s", key, is_array ? "an array" : "an object");
	return s ? s->parse(ctx, value, cfg) : config_parse_device_section(ctx, kind, value, cfg);
}

static int parse_root(struct parse_ctx *ctx, json_t *root, struct vm_config *cfg)
{
	if (!json_is_object(root))
		return config_fail(ctx, "expected a JSON object at the top level");
	const char *key;
	json_t *value;
	json_object_foreach(root, key, value) {
		if (config_parse_section(ctx, key, value, cfg))
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

/* A file that cannot be read at all is told apart from one whose contents are wrong:
 * they end argon-vmm with different statuses (66, 64). */
int config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen)
{
	struct parse_ctx ctx = { .name = path, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "re");
	struct stat st;
	int e = !f ? errno : fstat(fileno(f), &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (e) {
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (f)
			fclose(f);
		return -e;
	}
	json_error_t jerr;
	json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	return load(cfg, &ctx, root, &jerr) ? -EINVAL : 0;
}

int config_load_string(struct vm_config *cfg, const char *name, const char *json, char *err,
		       size_t errlen)
{
	struct parse_ctx ctx = { .name = name, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	return load(cfg, &ctx, root, &jerr);
}
