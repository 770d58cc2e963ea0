/* Handlers for devices, the same for every kind: PUT /<section>[/{id}] before boot and
 * PATCH /<section>/{id} after. Bodies go through the kind's parser (what --config
 * uses) into a scratch copy, which replaces the stored one only once every check
 * passed; devices are found by kind and id. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/log.h"
#include "devices/device_kind.h"
#include "vmm/config_json.h"
#include "vmm/vmm_state.h"

#define ID_MISMATCH "The id from the path does not match the id from the body!"

static int request_fail(struct device_request *rq, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int request_fail(struct device_request *rq, const char *fmt, ...)
{
	char msg[API_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_fault(rq->api, 400, "%s", msg);
}

static int request_check_path(struct device_request *rq, const char *field, const char *path,
			      enum api_path_kind kind, bool read_only)
{
	return api_check_path(rq->api, field, path, kind, read_only);
}

static struct device_request request(struct vmm *v, const char *path, const char *id,
				     json_t *body, struct api_response *r)
{
	return (struct device_request){ .cfg = &v->cfg, .path = path, .id = id, .body = body,
					.fail = request_fail, .check_path = request_check_path,
					.api = r };
}

/* The parsed settings against the request and the others; 0 or -1 after a fault. */
static int check_put(struct vmm *v, const struct api_request *req, struct device_request *rq,
		     const void *conf, struct api_response *r)
{
	const struct device_kind *kind = req->kind;
	if (kind->id_field && strcmp(device_kind_id(kind, conf), req->id) != 0)
		return api_fault(r, 400, ID_MISMATCH);
	if (kind->check_put && kind->check_put(rq, conf))
		return -1;
	if (!config_device(&v->cfg, kind, rq->id) && config_device_count(&v->cfg, kind) == kind->max)
		return api_fault(r, 400, "%s: at most %d %s", kind->section, kind->max, kind->plural);
	return 0;
}

void api_put_device(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	const struct device_kind *kind = req->kind;
	json_t *body = req->json;
	char err[API_MSG_MAX], path[96];
	API_PARSE_CTX(ctx, err);
	const char *id = kind->id_field ? req->id : kind->section;
	snprintf(path, sizeof(path), kind->id_field ? "%s[%s]" : "%s", kind->section, req->id);
	struct device_request rq = request(v, path, id, body, r);
	void *conf = config_device_new(kind);
	if (!conf) {
		api_fault(r, 400, "%s: out of memory", path);
	} else if (kind->parse_json(&ctx, path, body, conf)) {
		api_fault(r, 400, "%s", err);
	} else if (check_put(v, req, &rq, conf, r) == 0) {
		const char *deprecated = kind->deprecation ? kind->deprecation(conf) : NULL;
		if (deprecated)
			log_warn("%s", deprecated);
		r->deprecation = deprecated != NULL;
		config_device_put(&v->cfg, kind, conf); /* cannot fail: checked above */
		conf = NULL;
		api_no_content(r);
	}
	config_device_free(kind, conf);
}

/* PATCH bodies: the id plus the fields that may change, each type-checked. */
static int check_patch_fields(struct parse_ctx *ctx, json_t *body, const char *section,
			      const char *id_key, const char *const *allowed, const char *expected)
{
	const char *key;
	json_t *value;
	json_object_foreach(body, key, value) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", section, key);
		bool known = strcmp(key, id_key) == 0;
		for (int i = 0; allowed[i] && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known)
			return config_fail(ctx, "%s: unknown field (expected %s)", p, expected);
		struct rate_limiter_config rl = { 0 };
		char *s = NULL;
		int err = strstr(key, "rate_limiter") ? config_take_rate_limiter(ctx, p, value, &rl)
						      : config_take_string(ctx, p, value, &s);
		free(s);
		if (err)
			return -1;
	}
	return 0;
}

/* Checks a PATCH body: its fields, its id, the device. 0, or -1 after a fault. */
static int check_patch(struct vmm *v, const struct api_request *req, struct api_response *r,
		       json_t *body)
{
	const struct device_kind *kind = req->kind;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
	const char *id = json_string_value(json_object_get(body, kind->id_field));
	if (check_patch_fields(&ctx, body, kind->section, kind->id_field, kind->patch_fields,
			       kind->patch_expected))
		return api_fault(r, 400, "%s", err);
	if (!id || strcmp(id, req->id) != 0)
		return api_fault(r, 400, ID_MISMATCH);
	if (!config_device(&v->cfg, kind, req->id))
		return api_fault(r, 400, "%s '%s' does not exist", kind->noun, req->id);
	return 0;
}

/* The kind's change after boot (Firecracker's PATCH /drives/{id}, ...): the device
 * takes it, then the stored configuration follows. */
void api_patch_device(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	const struct device_kind *kind = req->kind;
	json_t *body = req->json;
	if (check_patch(v, req, r, body))
		return;
	char path[96];
	snprintf(path, sizeof(path), "%s[%s]", kind->section, req->id);
	struct device_request rq = request(v, path, req->id, body, r);
	struct device *d = device_set_find(&v->devices, kind, req->id);
	if (kind->patch(&rq, d ? d->virtio : NULL, config_device(&v->cfg, kind, req->id)) == 0)
		api_no_content(r);
}
