/* The devices of a running VM, each with its kind and the user's id: what the API,
 * metrics and (next) snapshot look devices up in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/virtio/virtio.h"

/* "block:rootfs" for a named device, "entropy" or the virtio name for a one-of. */
static void make_label(struct device *d)
{
	const struct device_kind *k = d->kind;
	if (k->id_field)
		snprintf(d->label, sizeof(d->label), "%s:%s", k->metrics_label, d->id);
	else
		snprintf(d->label, sizeof(d->label), "%s",
			 k->metrics_label ? k->metrics_label : d->virtio->ops->name);
}

int device_set_add(struct device_set *set, const struct device_kind *kind, const char *id,
		   struct virtio_device *virtio)
{
	if (set->n == DEVICE_SET_MAX)
		return -ENOSPC;
	struct device *d = &set->items[set->n];
	*d = (struct device){ .kind = kind, .id = strdup(id), .virtio = virtio };
	if (!d->id)
		return -ENOMEM;
	make_label(d);
	set->n++;
	return 0;
}

struct device *device_set_find(struct device_set *set, const struct device_kind *kind,
			       const char *id)
{
	for (int i = 0; i < set->n; i++) {
		struct device *d = &set->items[i];
		if (d->kind == kind && (!id || strcmp(d->id, id) == 0))
			return d;
	}
	return NULL;
}

struct device *device_set_at(struct device_set *set, uint64_t mmio_base)
{
	for (int i = 0; i < set->n; i++)
		if (set->items[i].virtio->mmio_base == mmio_base)
			return &set->items[i];
	return NULL;
}

void device_set_clear(struct device_set *set)
{
	for (int i = 0; i < set->n; i++)
		free(set->items[i].id);
	memset(set, 0, sizeof(*set));
}
