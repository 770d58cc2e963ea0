/* The list of device kinds, in the order their devices are created: a VM's MMIO
 * slots and interrupt lines follow it, and so do the configuration's sections, the
 * command-line options, the API's routes and the metrics. A new device is its own
 * files plus one line here (and its declaration above it). */
#include "devices/device_kind.h"

#include <getopt.h>
#include <string.h>

extern const struct device_kind virtio_blk_kind;
extern const struct device_kind virtio_net_kind;
extern const struct device_kind virtio_vsock_kind;
extern const struct device_kind virtio_rng_kind;
extern const struct device_kind virtio_balloon_kind;

const struct device_kind *const device_kinds[] = {
	&virtio_blk_kind,
	&virtio_net_kind,
	&virtio_vsock_kind,
	&virtio_rng_kind,
	&virtio_balloon_kind,
	NULL,
};

const struct device_kind *device_kind_by_section(const char *section)
{
	for (int i = 0; device_kinds[i]; i++)
		if (strcmp(device_kinds[i]->section, section) == 0)
			return device_kinds[i];
	return NULL;
}

const struct device_kind *device_kind_by_option(const char *option)
{
	for (int i = 0; device_kinds[i]; i++)
		if (strcmp(device_kinds[i]->option, option) == 0)
			return device_kinds[i];
	return NULL;
}

int device_kind_index(const struct device_kind *kind)
{
	for (int i = 0; device_kinds[i]; i++)
		if (device_kinds[i] == kind)
			return i;
	return -1;
}

const char *device_kind_id(const struct device_kind *kind, const void *conf)
{
	return kind->id ? kind->id(conf) : kind->section;
}

size_t device_kinds_add_options(struct option *longopts, size_t n, size_t max)
{
	for (int k = 0; device_kinds[k] && n + 1 < max; k++)
		longopts[n++] = (struct option){ device_kinds[k]->option,
						 device_kinds[k]->option_arg_optional
							 ? optional_argument : required_argument,
						 NULL, DEVICE_OPTION(k) };
	longopts[n] = (struct option){ 0 };
	return n;
}
