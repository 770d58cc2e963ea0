/* The API's endpoints as data: method, path, when the route may run, handler. The
 * router checks everything a table can say (path, method, body presence, the {id}
 * segment, the VM's state) so each handler only parses its body and acts. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "vmm/vmm_state.h"

#define ID_MAX 64

static const struct route {
	enum http_method method;
	const char *path; /* a trailing "/{id}" is one path segment */
	enum api_gate gate;
	api_handler fn;
	const char *name; /* for metrics */
} routes[] = {
	{ HTTP_GET, "/", API_ANY, api_get_instance, "GET /" },
	{ HTTP_GET, "/version", API_ANY, api_get_version, "GET /version" },
	{ HTTP_PUT, "/boot-source", API_PRE_BOOT, api_put_boot_source, "PUT /boot-source" },
	{ HTTP_GET, "/machine-config", API_ANY, api_get_machine, "GET /machine-config" },
	{ HTTP_PUT, "/machine-config", API_PRE_BOOT, api_put_machine, "PUT /machine-config" },
	{ HTTP_PATCH, "/machine-config", API_PRE_BOOT, api_patch_machine,
	  "PATCH /machine-config" },
	{ HTTP_PUT, "/drives/{id}", API_PRE_BOOT, api_put_drive, "PUT /drives/{id}" },
	{ HTTP_PATCH, "/drives/{id}", API_POST_BOOT, api_patch_drive, "PATCH /drives/{id}" },
	{ HTTP_PUT, "/network-interfaces/{id}", API_PRE_BOOT, api_put_net,
	  "PUT /network-interfaces/{id}" },
	{ HTTP_PATCH, "/network-interfaces/{id}", API_POST_BOOT, api_patch_net,
	  "PATCH /network-interfaces/{id}" },
	{ HTTP_PUT, "/vsock", API_PRE_BOOT, api_put_vsock, "PUT /vsock" },
	{ HTTP_PUT, "/entropy", API_PRE_BOOT, api_put_entropy, "PUT /entropy" },
	{ HTTP_PUT, "/balloon", API_PRE_BOOT, api_put_balloon, "PUT /balloon" },
	{ HTTP_PATCH, "/balloon", API_POST_BOOT, api_patch_balloon, "PATCH /balloon" },
	{ HTTP_GET, "/balloon", API_ANY, api_get_balloon, "GET /balloon" },
	{ HTTP_GET, "/balloon/statistics", API_POST_BOOT, api_get_balloon_stats,
	  "GET /balloon/statistics" },
	{ HTTP_PATCH, "/balloon/statistics", API_POST_BOOT, api_patch_balloon_stats,
	  "PATCH /balloon/statistics" },
	{ HTTP_PUT, "/actions", API_ANY, api_put_actions, "PUT /actions" },
	{ HTTP_PATCH, "/vm", API_POST_BOOT, api_patch_vm, "PATCH /vm" },
	{ HTTP_GET, "/vm/config", API_ANY, api_get_vm_config, "GET /vm/config" },
	{ HTTP_PUT, "/logger", API_PRE_BOOT, api_put_logger, "PUT /logger" },
	{ HTTP_PUT, "/metrics", API_PRE_BOOT, api_put_metrics, "PUT /metrics" },
	{ HTTP_GET, "/metrics", API_ANY, api_get_metrics, "GET /metrics" },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

int api_endpoint_names(struct api_endpoint_stats *stats, int max)
{
	int n = 0;
	for (size_t i = 0; i < NROUTES && n < max; i++)
		stats[n++] = (struct api_endpoint_stats){ .name = routes[i].name };
	if (n < max)
		stats[n++] = (struct api_endpoint_stats){ .name = "other" };
	return n;
}

/* path against pattern; a trailing "/{id}" matches one segment, which may be empty
 * ("/drives", "/drives/") so the handler can say the ID is missing. */
static bool match(const char *pattern, const char *path, const char **id)
{
	const char *brace = strstr(pattern, "/{id}");
	size_t plen = strlen(path);
	if (plen > 1 && path[plen - 1] == '/')
		plen--; /* "/machine-config/" is "/machine-config" */
	if (!brace)
		return strlen(pattern) == plen && strncmp(pattern, path, plen) == 0;
	size_t prefix = (size_t)(brace - pattern);
	if (plen < prefix || strncmp(pattern, path, prefix) != 0)
		return false;
	const char *rest = path + prefix;
	if (rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0')) {
		*id = "";
		return true;
	}
	if (rest[0] != '/' || memchr(rest + 1, '/', plen - prefix - 1))
		return false;
	*id = rest + 1;
	return true;
}

/* Firecracker's rule for resource IDs, plus a length limit. */
static bool id_ok(const char *id, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return len <= ID_MAX;
}

/* The route for the request's method and path, with its {id} segment copied into id
 * (at most ID_MAX + 1 characters, enough to tell that it is too long). */
static const struct route *find(const struct http_request *http, char id[ID_MAX + 2],
				bool *has_id)
{
	for (size_t i = 0; i < NROUTES; i++) {
		const char *seg = NULL;
		if (!match(routes[i].path, http->path, &seg) || routes[i].method != http->method)
			continue;
		*has_id = seg != NULL;
		if (seg) {
			size_t len = strcspn(seg, "/");
			len = len > ID_MAX + 1 ? ID_MAX + 1 : len;
			memcpy(id, seg, len);
			id[len] = '\0';
		}
		return &routes[i];
	}
	return NULL;
}

/* What the table can refuse before the handler runs; 0 or -1 after a fault. */
static int check_request(struct vmm *v, const struct route *r, const struct api_request *req,
			 struct api_response *resp)
{
	if (r->method == HTTP_GET && req->body_len)
		return api_fault(resp, 400, "GET request cannot have a body.");
	if (r->method != HTTP_GET && !req->body_len)
		return api_fault(resp, 400, "Empty %s request.", r->method == HTTP_PUT ? "PUT" : "PATCH");
	if (req->id) {
		size_t len = strlen(req->id);
		if (!len)
			return api_fault(resp, 400, "The ID cannot be empty.");
		if (!id_ok(req->id, len))
			return api_fault(resp, 400, "API Resource IDs can only contain alphanumeric "
						    "characters and underscores, at most %d.", ID_MAX);
	}
	if (r->gate == API_PRE_BOOT && v->state != VMM_NOT_STARTED)
		return api_fault(resp, 400, "The requested operation is not supported after "
					    "starting the microVM.");
	if (r->gate == API_POST_BOOT && v->state == VMM_NOT_STARTED)
		return api_fault(resp, 400, "The requested operation is not supported before "
					    "starting the microVM.");
	return 0;
}

static void count(struct vmm *v, size_t index, int status)
{
	struct metrics *m = &v->metrics;
	if (!m->endpoints || m->nendpoints == 0)
		return;
	if ((int)index >= m->nendpoints)
		index = (size_t)m->nendpoints - 1; /* "other" */
	__atomic_add_fetch(&m->endpoints[index].requests, 1, __ATOMIC_RELAXED);
	if (status >= 400)
		__atomic_add_fetch(&m->endpoints[index].errors, 1, __ATOMIC_RELAXED);
}

void api_route(struct vmm *v, const struct http_request *http, const char *body,
	       size_t body_len, struct api_response *resp)
{
	char id[ID_MAX + 2];
	bool has_id = false;
	const struct route *r = find(http, id, &has_id);
	struct api_request req = {
		.http = http, .body = body, .body_len = body_len, .id = has_id ? id : NULL,
	};
	pthread_mutex_lock(&v->lock);
	if (!r)
		api_fault(resp, 400, "Invalid request method and/or path: %s %s.", http->method_name,
			  http->path);
	else if (check_request(v, r, &req, resp) == 0)
		r->fn(v, &req, resp);
	count(v, r ? (size_t)(r - routes) : NROUTES, resp->status);
	pthread_mutex_unlock(&v->lock);
}
