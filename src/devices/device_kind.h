/* A device kind: everything the VMM above the device knows about one type of device,
 * declared once beside the device (virtio_rng_kind.c, ...) and listed in
 * device_kinds.c in a visible order. Configuration, command line, API, metrics and
 * snapshot reach devices only through their kind, and find a device by the
 * user's id: (kind, id) as Firecracker's VirtioDeviceId = (type, String), never "the
 * k-th device of a kind".
 *
 * A kind either has many devices, each named by the user (drives by drive_id,
 * network interfaces by iface_id), or at most one whose id is the kind's section
 * name ("vsock", "balloon", "entropy"). */
#ifndef ARGON_DEVICES_DEVICE_KIND_H
#define ARGON_DEVICES_DEVICE_KIND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/client_path.h"

struct metric_family;
struct metrics_sink;
struct parse_ctx;
struct virtio_device;
struct vm;
struct vm_config;
struct device;
struct section_in;
struct snap_writer;

/* A client's request about one device (PUT before boot, PATCH after), as a kind sees
 * it: what it may look at and how it refuses. Filled by the API (api/). */
struct device_request {
	const struct vm_config *cfg; /* the configuration as it stands */
	const char *path;	     /* "drives[rootfs]", "vsock": starts messages */
	const char *id;		     /* the {id} of the URL; the section for one-of kinds */
	json_t *body;
	/* Refuses the request (400 with the message). Returns -1. */
	int (*fail)(struct device_request *rq, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* Checks a file path the client handed over (no "..", the right kind of file).
	 * Returns 0, or -1 after refusing the request with a message naming field. */
	int (*check_path)(struct device_request *rq, const char *field, const char *path,
			  enum api_path_kind kind, bool read_only);
	void *api; /* the API's own state for fail and check_path */
};

struct device_kind {
	const char *name;    /* "virtio-rng": in logs */
	const char *section; /* "entropy": the configuration section and the API resource */
	/* The field naming a device ("drive_id"), or NULL for a kind of at most one device,
	 * whose section is then an object, not an array. */
	const char *id_field;
	int max;	       /* devices of this kind in one VM */
	const char *plural;    /* "drives": "drives: at most 8 drives" */
	const char *noun;      /* "drive": "drive 'x' does not exist" */

	/* ---- configuration: one settings struct per device, config_size bytes ---- */
	size_t config_size;
	void (*config_init)(void *conf);      /* may be NULL: zeroed is the default */
	void (*config_clear)(void *conf);     /* frees what conf holds (not conf); may be NULL */
	const char *(*id)(const void *conf); /* the user's id; NULL when id_field is NULL */
	/* One entry of the section (path: "drives[0]", "drives[rootfs]", "vsock"), parsed
	 * over conf. Returns 0 or -1 with a message naming the field (config_json.h). */
	int (*parse_json)(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf);
	/* The entry in the form parse_json reads (GET /vm/config); NULL when out of memory. */
	json_t *(*to_json)(const void *conf);

	/* ---- command line: --option ARG (argon-vmm and argon run) ---- */
	const char *option;	   /* "rng" */
	bool option_arg_optional;  /* --rng alone, or --rng=ARG */
	const char *option_usage;  /* "[=bw=N]" after "--rng" in the usage */
	const char *option_help;   /* what argon run's usage says of it; may be NULL */
	/* Parses ARG over conf; index is how many devices of the kind came before. Returns
	 * 0, or -1 with a message naming the option in err. */
	int (*parse_option)(void *conf, const char *arg, int index, char *err, size_t errlen);

	/* ---- the VM ---- */
	/* Opens the backend (files, taps, sockets) and adds the device to vm. Returns 0, or
	 * -errno after logging one message naming what was wrong. */
	int (*create)(struct vm *vm, const void *conf);
	/* Appends what the kernel command line needs for these devices (" root=/dev/vda
	 * rw") to out, given the user's cmdline. May be NULL. */
	void (*kernel_args)(const struct vm_config *cfg, const char *cmdline, char *out,
			    size_t len);

	/* ---- the API ---- */
	/* Checks beyond parse_json for PUT before boot. May be NULL. Returns 0 or -1 after
	 * rq->fail. */
	int (*check_put)(struct device_request *rq, const void *conf);
	/* A PUT that succeeded but used a deprecated field: the message to log (the
	 * answer then carries Firecracker's "Deprecation: true" header), or NULL. May be
	 * NULL. */
	const char *(*deprecation)(const void *conf);
	/* PATCH after boot: the fields it may carry besides the id (NULL: no PATCH), the
	 * words of the "unknown field" message, and the change itself: the device takes
	 * it (dev may be NULL if it was never built), then conf follows. */
	const char *const *patch_fields;
	const char *patch_expected;
	int (*patch)(struct device_request *rq, struct virtio_device *dev, void *conf);

	/* ---- metrics ---- */
	/* "entropy", or "block" for "block:<id>"; NULL: the virtio device's name. */
	const char *metrics_label;
	const struct metric_family *families; /* this kind's metric families, in order */
	int nfamilies;
	/* Adds the device's counters to sink (metrics.h). May be NULL. */
	void (*stats)(const struct device *d, struct metrics_sink *sink);

	/* ---- snapshot: the device's section (snapshot/virtio_section.h) holds its
	 * configuration (to_json), the transport's state, then what these hooks write.
	 * Each may be NULL: nothing to do, nothing of its own. ---- */
	/* The VM is paused: finish or give back whatever the device has half done (I/O
	 * in flight answered into the used ring, chains it holds returned to the avail
	 * ring with virtq_unpop), so the rings and memory are the whole truth. The VM may
	 * be resumed afterwards, and runs on as if nothing happened. */
	void (*quiesce)(struct device *d);
	/* Appends the device's own fields to the open section. */
	void (*save)(const struct device *d, struct snap_writer *w);
	/* Reads them back (a hostile file: each field checked, section_in_fail on the
	 * first bad one) into the device just built from the section's configuration,
	 * before its transport state is put back. Returns 0 or -1. */
	int (*restore)(struct device *d, struct section_in *in);
};

/* The kinds in the order their devices are created (and so their MMIO slots and
 * interrupts): drives, network interfaces, vsock, entropy, balloon. NULL-terminated. */
extern const struct device_kind *const device_kinds[];

/* The kind whose section (or command-line option) is name, or NULL. */
const struct device_kind *device_kind_by_section(const char *section);
const struct device_kind *device_kind_by_option(const char *option);
/* getopt_long's value for the command-line option of device_kinds[k]. */
#define DEVICE_OPTION(k) (256 + (k))
struct option;
/* Appends every kind's --option to longopts[n..] (a program's own options come
 * first) and its terminating entry; max is longopts' length. Returns the count. */
size_t device_kinds_add_options(struct option *longopts, size_t n, size_t max);
/* The kind's position in device_kinds, or -1. */
int device_kind_index(const struct device_kind *kind);
/* conf's id: kind->id(conf), or the section for a kind of at most one device. */
const char *device_kind_id(const struct device_kind *kind, const void *conf);

/* A device of a running VM: its kind, the user's id, and the virtio device. */
#define DEVICE_LABEL_MAX 64
struct device {
	const struct device_kind *kind;
	char *id;
	char label[DEVICE_LABEL_MAX]; /* "block:rootfs", "entropy": in metrics */
	struct virtio_device *virtio;
};

#define DEVICE_SET_MAX 16
struct device_set {
	struct device items[DEVICE_SET_MAX];
	int n;
};

/* Records a device just created; returns 0 or -ENOMEM / -ENOSPC. */
int device_set_add(struct device_set *set, const struct device_kind *kind, const char *id,
		   struct virtio_device *virtio);
/* The device of kind named id (NULL: the kind's one device), or NULL. */
struct device *device_set_find(struct device_set *set, const struct device_kind *kind,
			       const char *id);
/* The device whose MMIO window starts at base, or NULL. */
struct device *device_set_at(struct device_set *set, uint64_t mmio_base);
void device_set_clear(struct device_set *set);

#endif
