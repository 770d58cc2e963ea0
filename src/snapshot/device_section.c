/* A device's whole section: its configuration, then the transport, then the kind's
 * own state (virtio_section.h). The snapshot code goes through here and the device
 * kinds, and knows no device. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/virtio_section.h"
#include "vmm/config_json.h"

int device_section_write(struct snap_writer *w, const struct device *d, const void *conf)
{
	int err = snap_section_begin(w, d->kind->section, d->id, DEVICE_STATE_SECTION_VERSION);
	if (err)
		return err;
	json_t *j = d->kind->to_json(conf);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	snap_put_blob(w, text, (uint32_t)strlen(text));
	free(text);
	struct virtio_transport_state s;
	virtio_mmio_get_state(d->virtio, &s);
	virtio_section_put(w, &s);
	if (d->kind->save)
		d->kind->save(d, w);
	return snap_section_end(w);
}

/* The configuration blob, parsed as the kind parses a config file's entry. */
static void get_config(struct section_in *in, const struct device_kind *kind, void *conf)
{
	uint32_t len = 0;
	const char *text = snap_get_blob_max(&in->c, DEVICE_CONFIG_MAX, &len);
	if (!text)
		return section_in_fail(in, "config", "longer than %u bytes, or truncated",
				       DEVICE_CONFIG_MAX);
	json_error_t jerr;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	char msg[256] = "";
	struct parse_ctx ctx = { .name = NULL, .err = msg, .errlen = sizeof(msg) };
	if (!obj)
		section_in_fail(in, "config", "not JSON: %s", jerr.text);
	else if (!json_is_object(obj) || kind->parse_json(&ctx, kind->section, obj, conf))
		section_in_fail(in, "config", "%s", msg[0] ? msg : "expected an object");
	json_decref(obj);
}

int device_section_config(const struct snap_reader *r, const char *file,
			  const struct device_kind *kind, const char *id, void *conf, char *err,
			  size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, kind->section, id, DEVICE_STATE_SECTION_VERSION,
				 err, errlen);
	if (rc)
		return rc;
	get_config(&in, kind, conf);
	const char *own = in.bad ? NULL : device_kind_id(kind, conf);
	if (!in.bad && (!own || strcmp(own, id) != 0))
		section_in_fail(&in, kind->id_field ? kind->id_field : "config",
				"\"%s\": the section is named \"%s\"", own ? own : "", id);
	return in.bad ? -EINVAL : 0; /* the rest is read once the device exists */
}

int device_section_read(const struct snap_reader *r, const char *file, struct device *d,
			char *err, size_t errlen)
{
	struct section_in in;
	int rc = section_in_open(&in, r, file, d->kind->section, d->id,
				 DEVICE_STATE_SECTION_VERSION, err, errlen);
	if (rc)
		return rc;
	uint32_t len;
	snap_get_blob_max(&in.c, DEVICE_CONFIG_MAX, &len); /* read already */
	struct virtio_transport_state s;
	virtio_section_get(&in, d->virtio, &s);
	if (!in.c.failed && !in.bad && d->kind->restore)
		d->kind->restore(d, &in);
	rc = section_in_close(&in);
	if (rc)
		return rc;
	if (virtio_mmio_set_state(d->virtio, &s) || virtio_mmio_resume(d->virtio)) {
		snprintf(err, errlen, "snapshot %s: section %s/%s: the device could not start again "
			 "with its saved state", file, d->kind->section, d->id);
		return -EINVAL;
	}
	return 0;
}
