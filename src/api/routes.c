/* The API's endpoints as data: method, path, when the route may run, handler (and
 * the device kind, for the routes every kind has). The
 * router checks everything a table can say (path, method, body presence, the {id}
 * segment, the VM's state) so each handler only parses its body and acts. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "devices/device_kind.h"
#include "vmm/vmm_state.h"

#define ID_MAX 64

struct route {
	enum http_method method;
	const char *path; /* a trailing "/{id}" is one path segment */
	enum api_gate gate;
	api_handler fn;
	const char *name; /* for metrics */
	const struct device_kind *kind; /* for the device routes */
};

/* The VMM's own endpoints; every device kind's come between these two tables. */
static const struct route machine_routes[] = {
	{ HTTP_GET, "/", API_ANY, api_get_instance, "GET /", NULL },
	{ HTTP_GET, "/version", API_ANY, api_get_version, "GET /version", NULL },
	{ HTTP_PUT, "/boot-source", API_PRE_BOOT, api_put_boot_source, "PUT /boot-source", NULL },
	{ HTTP_GET, "/machine-config", API_ANY, api_get_machine, "GET /machine-config", NULL },
	{ HTTP_PUT, "/machine-config", API_PRE_BOOT, api_put_machine, "PUT /machine-config", NULL },
	{ HTTP_PATCH, "/machine-config", API_PRE_BOOT, api_patch_machine,
	  "PATCH /machine-config", NULL },
};
static const struct route other_routes[] = {
	/* virtio-balloon's own, beside its PUT /balloon */
	{ HTTP_PATCH, "/balloon", API_POST_BOOT, api_patch_balloon, "PATCH /balloon", NULL },
	{ HTTP_GET, "/balloon", API_ANY, api_get_balloon, "GET /balloon", NULL },
	{ HTTP_GET, "/balloon/statistics", API_POST_BOOT, api_get_balloon_stats,
	  "GET /balloon/statistics", NULL },
	{ HTTP_PATCH, "/balloon/statistics", API_POST_BOOT, api_patch_balloon_stats,
	  "PATCH /balloon/statistics", NULL },
	{ HTTP_PUT, "/actions", API_ANY, api_put_actions, "PUT /actions", NULL },
	{ HTTP_PATCH, "/vm", API_POST_BOOT, api_patch_vm, "PATCH /vm", NULL },
	{ HTTP_PUT, "/snapshot/create", API_POST_BOOT, api_put_snapshot_create,
	  "PUT /snapshot/create", NULL },
	{ HTTP_PUT, "/snapshot/load", API_PRE_BOOT, api_put_snapshot_load, "PUT /snapshot/load",
	  NULL },
	{ HTTP_GET, "/vm/config", API_ANY, api_get_vm_config, "GET /vm/config", NULL },
	{ HTTP_PUT, "/logger", API_PRE_BOOT, api_put_logger, "PUT /logger", NULL },
	{ HTTP_PUT, "/metrics", API_PRE_BOOT, api_put_metrics, "PUT /metrics", NULL },
	{ HTTP_GET, "/metrics", API_ANY, api_get_metrics, "GET /metrics", NULL },
};
#define COUNT(a) (sizeof(a) / sizeof(a[0]))

/* Two routes per kind at most (PUT, PATCH); built once from the tables and the kinds,
 * then only read. */
#define MAX_ROUTES (COUNT(machine_routes) + 2 * DEVICE_SET_MAX + COUNT(other_routes))
static struct route routes[MAX_ROUTES];
static char route_text[MAX_ROUTES][2][96]; /* path and name of the device routes */
static size_t nroutes;
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

static void add_device_route(const struct device_kind *kind, enum http_method method)
{
	char *path = route_text[nroutes][0], *name = route_text[nroutes][1];
	bool put = method == HTTP_PUT;
	const char *id = kind->id_field ? "/{id}" : "";
	snprintf(path, sizeof(route_text[0][0]), "/%s%s", kind->section, id);
	snprintf(name, sizeof(route_text[0][1]), "%s /%s%s", put ? "PUT" : "PATCH", kind->section,
		 id);
	routes[nroutes++] = (struct route){ .method = method, .path = path,
					    .gate = put ? API_PRE_BOOT : API_POST_BOOT,
					    .fn = put ? api_put_device : api_patch_device,
					    .name = name, .kind = kind };
}

static void build_routes(void)
{
	for (size_t i = 0; i < COUNT(machine_routes); i++)
		routes[nroutes++] = machine_routes[i];
	for (int k = 0; device_kinds[k]; k++) {
		add_device_route(device_kinds[k], HTTP_PUT);
		if (device_kinds[k]->patch && device_kinds[k]->id_field)
			add_device_route(device_kinds[k], HTTP_PATCH);
	}
	for (size_t i = 0; i < COUNT(other_routes); i++)
		routes[nroutes++] = other_routes[i];
}

static size_t route_count(void)
{
	pthread_once(&routes_once, build_routes);
	return nroutes;
}

int api_endpoint_names(struct api_endpoint_stats *stats, int max)
{
	int n = 0;
	size_t nr = route_count();
	for (size_t i = 0; i < nr && n < max; i++)
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
	size_t nr = route_count();
	for (size_t i = 0; i < nr; i++) {
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
	char why[API_MSG_MAX + 128];
	if (vmm_ending(v, why, sizeof(why)))
		return api_fault(resp, 400, "%s", why);
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

/* The handler, with the body every PUT and PATCH carries parsed for it (a body that
 * is not a JSON object is refused here, once for all handlers). */
static void run(struct vmm *v, const struct route *r, struct api_request *req,
		struct api_response *resp)
{
	if (r->method != HTTP_GET && !(req->json = api_body_object(req, resp)))
		return;
	r->fn(v, req, resp);
	json_decref(req->json);
}

void api_route(struct vmm *v, const struct http_request *http, const char *body,
	       size_t body_len, struct api_response *resp)
{
	char id[ID_MAX + 2];
	bool has_id = false;
	const struct route *r = find(http, id, &has_id);
	struct api_request req = {
		.http = http, .body = body, .body_len = body_len, .id = has_id ? id : NULL,
		.kind = r ? r->kind : NULL,
	};
	pthread_mutex_lock(&v->lock);
	if (!r)
		api_fault(resp, 400, "Invalid request method and/or path: %s %s.", http->method_name,
			  http->path);
	else if (check_request(v, r, &req, resp) == 0)
		run(v, r, &req, resp);
	count(v, r ? (size_t)(r - routes) : route_count(), resp->status);
	pthread_mutex_unlock(&v->lock);
}
