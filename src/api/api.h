/* The API's pieces: the route table (routes.c), the handlers (handlers*.c) and the
 * helpers they share (response.c). Semantics follow Firecracker's swagger
 * definition where the endpoints overlap: 204 for a successful PUT/PATCH, 200 with
 * a JSON body for a GET, 400 with {"fault_message": "..."} for every refused request. */
#ifndef ARGON_API_API_H
#define ARGON_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/http.h"
#include "common/client_path.h"
#include "vmm/metrics.h"

struct device_kind;
struct vmm;

struct api_request {
	const struct http_request *http;
	const char *body; /* body_len bytes, not NUL-terminated */
	size_t body_len;
	const char *id;	  /* the {id} path segment, or NULL */
	const struct device_kind *kind; /* the device kind a device route is for */
	json_t *json; /* a PUT's or PATCH's body, a JSON object (parsed by the router) */
};

/* A parse context for config_json.h's parsers whose messages carry no file prefix
 * ("machine-config.vcpu_count: ..."): what every handler with a body declares. */
#define API_PARSE_CTX(ctx, err) \
	struct parse_ctx ctx = { .name = NULL, .err = err, .errlen = sizeof(err) }

struct api_response {
	int status;
	char *body; /* malloc'ed; NULL for 204 */
	const char *content_type;
	bool deprecation; /* adds "Deprecation: true", as Firecracker for deprecated fields */
};

/* Runs with vmm->lock held. Fills resp (status and body). */
typedef void (*api_handler)(struct vmm *v, const struct api_request *req,
			    struct api_response *resp);

/* When a route may run: any time, only before InstanceStart, or only after. */
enum api_gate { API_ANY, API_PRE_BOOT, API_POST_BOOT };

/* Routes a complete request: finds the route, checks its gate and the body rules,
 * parses a PUT's or PATCH's body into req->json, runs the handler under vmm->lock, counts it in stats (nroutes + 1 entries: the last
 * is "other"). */
void api_route(struct vmm *v, const struct http_request *http, const char *body,
	       size_t body_len, struct api_response *resp);
/* Names the endpoints for metrics: fills stats, returns how many (<= max). */
int api_endpoint_names(struct api_endpoint_stats *stats, int max);

/* ---- response helpers (response.c) ---- */
#define API_MSG_MAX 512
/* Sets status and {"fault_message": ...}; returns -1 so callers can return it. */
int api_fault(struct api_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* 200 with obj as the body (the reference is taken); 500 when obj is NULL. */
void api_json(struct api_response *r, json_t *obj);
void api_no_content(struct api_response *r);
/* The body as a JSON object, or NULL after a 400 naming what was wrong. The caller
 * owns the reference. */
json_t *api_body_object(const struct api_request *req, struct api_response *r);

/* File paths a client hands over are checked before use: no ".." component, and the
 * kind of file the resource needs (common/client_path.h). */
/* Returns 0, or -1 after a 400 naming field and path. */
int api_check_path(struct api_response *r, const char *field, const char *path,
		   enum api_path_kind kind, bool read_only);

/* ---- handlers ---- */
void api_get_instance(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_version(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_put_boot_source(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_machine(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_put_machine(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_patch_machine(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_put_actions(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_patch_vm(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_vm_config(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_put_logger(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_put_metrics(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_metrics(struct vmm *v, const struct api_request *req, struct api_response *r);
/* Every device kind's PUT /<section>[/{id}] and PATCH /<section>/{id} (req->kind). */
void api_put_device(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_patch_device(struct vmm *v, const struct api_request *req, struct api_response *r);
/* Snapshots (handlers_snapshot.c). */
void api_put_snapshot_create(struct vmm *v, const struct api_request *req,
			     struct api_response *r);
void api_put_snapshot_load(struct vmm *v, const struct api_request *req, struct api_response *r);
/* virtio-balloon's own (handlers_balloon.c). */
void api_patch_balloon(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_balloon(struct vmm *v, const struct api_request *req, struct api_response *r);
void api_get_balloon_stats(struct vmm *v, const struct api_request *req,
			   struct api_response *r);
void api_patch_balloon_stats(struct vmm *v, const struct api_request *req,
			     struct api_response *r);

#endif
