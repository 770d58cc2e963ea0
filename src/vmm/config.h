/* A VM's configuration: one structure filled from the command line, a JSON file
 * with Firecracker's field names, or (later) the API, so all paths agree. */
#ifndef ARGON_VMM_CONFIG_H
#define ARGON_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

#define CONFIG_DEFAULT_VCPUS 1
#define CONFIG_DEFAULT_MEM_MIB 128
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

/* Devices of every kind in one VM (each kind has its own limit too). */
#define CONFIG_MAX_DEVICES 16

struct device_kind;

/* One configured device: its kind and the kind's own settings (struct drive_config,
 * ...), which only the kind reads (devices/NAME_kind.c). */
struct device_config {
	const struct device_kind *kind;
	void *conf;
};

/* Firecracker's logger object (PUT /logger, "logger" in a config file). */
#define LOGGER_LEVEL_UNSET (-1) /* keep --log-level */
#define LOGGER_LEVEL_OFF (-2)
struct logger_config {
	char *log_path;	      /* NULL: stderr */
	int level;	      /* enum log_level, LOGGER_LEVEL_OFF or _UNSET */
	bool show_level;      /* default true (argon's line format) */
	bool show_log_origin; /* default true */
};

/* Firecracker's metrics object; period_ms is argon's: how often a line is written. */
#define METRICS_DEFAULT_PERIOD_MS 60000
struct metrics_config {
	char *metrics_path; /* NULL: no metrics file (GET /metrics still answers) */
	uint32_t period_ms;
	bool emit_id; /* Firecracker's: each line carries the instance's "id" (--id) */
};

struct vm_config {
	char *kernel_path;  /* boot-source.kernel_image_path */
	char *initrd_path;  /* boot-source.initrd_path, NULL for none */
	char *cmdline;	    /* boot-source.boot_args */
	int vcpus;	    /* machine-config.vcpu_count */
	uint64_t mem_mib;   /* machine-config.mem_size_mib */
	bool smt;	    /* machine-config.smt: two threads per core (host with SMT only) */
	bool track_dirty_pages;	    /* machine-config.track_dirty_pages */
	enum guest_mem_pages huge_pages; /* machine-config.huge_pages */
	/* Devices in the order given; created kind by kind (device_kinds.c), each kind's
	 * in this order. */
	struct device_config devices[CONFIG_MAX_DEVICES];
	int ndevices;
	struct logger_config logger;
	struct metrics_config metrics;
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);
/* Replaces *field with a copy of value (NULL clears it). Returns 0 or -ENOMEM. */
int config_set_string(char **field, const char *value);

/* ---- devices (config_devices.c) ---- */
/* The settings of kind's device named id (NULL: its first device), or NULL. */
void *config_device(const struct vm_config *cfg, const struct device_kind *kind,
		    const char *id);
/* How many devices of kind; the k-th of them in the order given, or NULL. */
int config_device_count(const struct vm_config *cfg, const struct device_kind *kind);
void *config_device_nth(const struct vm_config *cfg, const struct device_kind *kind, int k);
/* New settings for kind with its defaults, or NULL when out of memory. */
void *config_device_new(const struct device_kind *kind);
void config_device_free(const struct device_kind *kind, void *conf);
/* Adds conf (taken over) after the devices given so far. Returns 0, or -ENOSPC when
 * CONFIG_MAX_DEVICES are configured (conf is then freed). */
int config_device_append(struct vm_config *cfg, const struct device_kind *kind, void *conf);
/* Stores conf (taken over) in place of kind's device with the same id, else appends it
 * (API PUTs). Returns 0 or -ENOSPC (conf freed). */
int config_device_put(struct vm_config *cfg, const struct device_kind *kind, void *conf);

/* Reads a JSON config file over cfg: {"boot-source": {...}, "machine-config": {...}}.
 * Unknown fields, wrong types and out-of-range values are errors. Returns 0, -EINVAL
 * for wrong contents, or -errno when the file cannot be read (a directory: -EISDIR),
 * with a one-line message naming the file (and field) in err. */
int config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* The same from a string (tests, the API); name is used in messages. */
int config_load_string(struct vm_config *cfg, const char *name, const char *json, char *err,
		       size_t errlen);

/* The whole configuration as JSON that config_load_* accepts (GET /vm/config):
 * every section that is set, with Firecracker's names. Returns a new reference or
 * NULL when out of memory. (A json_t; declared void to keep jansson out of here.) */
void *config_to_json(const struct vm_config *cfg);

#endif
