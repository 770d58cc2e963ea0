/* A VM's configuration: one structure filled from the command line, a JSON file
 * with Firecracker's field names, or (later) the API, so all paths agree. */
#ifndef ARGON_VMM_CONFIG_H
#define ARGON_VMM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/rate_limiter.h"

#define CONFIG_DEFAULT_VCPUS 1
#define CONFIG_DEFAULT_MEM_MIB 128
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

#define CONFIG_MAX_DRIVES 8
#define CONFIG_MAX_NETS 4

/* Firecracker's cache_type: with Writeback (argon's default) the guest sees a volatile
 * write cache and its flushes reach the disk (fdatasync) before they complete; with
 * Unsafe no flush is offered and writes are only as durable as the host's page cache. */
enum drive_cache { DRIVE_CACHE_WRITEBACK, DRIVE_CACHE_UNSAFE };

struct drive_config {
	char *drive_id;	      /* drives[].drive_id */
	char *path_on_host;   /* drives[].path_on_host */
	bool is_read_only;    /* drives[].is_read_only */
	bool is_root_device;  /* drives[].is_root_device */
	enum drive_cache cache_type;
	struct rate_limiter_config rate_limiter;
};

struct net_config {
	char *iface_id;	      /* network-interfaces[].iface_id */
	char *host_dev_name;  /* tap name; created if missing */
	int tap_fd;	      /* an already open tap, or -1 */
	uint8_t guest_mac[6];
	bool has_guest_mac;   /* else the device derives one */
	struct rate_limiter_config rx_rate_limiter, tx_rate_limiter;
};

struct vsock_config {
	bool enabled;
	uint32_t guest_cid; /* >= 3 */
	char *uds_path;
};

struct balloon_config {
	bool enabled;
	uint32_t amount_mib;		   /* target size of the balloon */
	bool deflate_on_oom;
	uint32_t stats_polling_interval_s; /* 0: no statistics queue */
};

struct entropy_config {
	bool enabled;
	struct rate_limiter_config rate_limiter;
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
};

struct vm_config {
	char *kernel_path;  /* boot-source.kernel_image_path */
	char *initrd_path;  /* boot-source.initrd_path, NULL for none */
	char *cmdline;	    /* boot-source.boot_args */
	int vcpus;	    /* machine-config.vcpu_count */
	uint64_t mem_mib;   /* machine-config.mem_size_mib */
	struct drive_config drives[CONFIG_MAX_DRIVES];
	int ndrives;
	struct net_config nets[CONFIG_MAX_NETS];
	int nnets;
	struct vsock_config vsock;
	struct balloon_config balloon;
	struct entropy_config entropy;
	struct logger_config logger;
	struct metrics_config metrics;
};

void config_init(struct vm_config *cfg);
void config_free(struct vm_config *cfg);
/* Replaces *field with a copy of value (NULL clears it). Returns 0 or -ENOMEM. */
int config_set_string(char **field, const char *value);

/* Reads a JSON config file over cfg: {"boot-source": {...}, "machine-config": {...}}.
 * Unknown fields, wrong types and out-of-range values are errors. Returns 0, or -1
 * with a one-line message naming the file and field in err. */
int config_load_file(struct vm_config *cfg, const char *path, char *err, size_t errlen);
/* The same from a string (tests, the API); name is used in messages. */
int config_load_string(struct vm_config *cfg, const char *name, const char *json, char *err,
		       size_t errlen);

/* The whole configuration as JSON that config_load_* accepts (GET /vm/config):
 * every section that is set, with Firecracker's names. Returns a new reference or
 * NULL when out of memory. (A json_t; declared void to keep jansson out of here.) */
void *config_to_json(const struct vm_config *cfg);

#endif
