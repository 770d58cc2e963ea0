/* libFuzzer target for the API: the input is the bytes a client sends. They go
 * through the HTTP parser (api/http.c) request by request, as the server feeds it,
 * and every complete request through the router and its handler (api/routes.c,
 * handlers*.c: JSON bodies, config parsers, path checks) against a VMM that has not
 * started. Invariants (trap on violation): the parser's lengths stay inside the
 * input; every answer has a status from the table and a body that is valid JSON
 * (an object with fault_message for an error) or Prometheus text.
 *
 * Requests that would write to the file system (PUT /logger, PUT /metrics name files
 * to create) are skipped; InstanceStart is answered as a failed start, since no main
 * thread builds a VM here. Build and run: make fuzz, then make fuzz-run. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/http.h"
#include "common/log.h"
#include "vmm/vmm_state.h"

static struct vmm *vmm;
static struct api_endpoint_stats endpoints[METRICS_MAX_ENDPOINTS];

static void setup(void)
{
	log_init("fuzz", LOG_ERROR);
	log_set_off(true);
	vmm = malloc(sizeof(*vmm));
	if (!vmm || vmm_init(vmm, 0))
		abort();
	vmm->metrics.nendpoints = api_endpoint_names(endpoints, METRICS_MAX_ENDPOINTS);
	vmm->metrics.endpoints = endpoints;
}

static bool writes_files(const struct http_request *req)
{
	return req->method == HTTP_PUT &&
	       (strncmp(req->path, "/logger", 7) == 0 || strncmp(req->path, "/metrics", 8) == 0);
}

static void check_response(const struct api_response *r)
{
	if (r->status != 200 && r->status != 204 && r->status != 400 && r->status != 500)
		__builtin_trap();
	if (r->status == 204)
		return;
	if (!r->body)
		__builtin_trap();
	if (strncmp(r->content_type, "text/plain", 10) == 0)
		return; /* GET /metrics */
	json_t *j = json_loads(r->body, 0, NULL);
	if (!j || (r->status >= 400 && !json_is_string(json_object_get(j, "fault_message"))))
		__builtin_trap();
	json_decref(j);
}

static void serve(const struct http_request *req, const uint8_t *body)
{
	if (writes_files(req))
		return;
	/* No main thread: InstanceStart finds its answer ready, a failed start. */
	vmm->start_done = true;
	vmm->start_status = 70;
	snprintf(vmm->start_error, sizeof(vmm->start_error), "fuzzing");
	struct api_response r = { .content_type = "application/json" };
	api_route(vmm, req, (const char *)body, req->content_length, &r);
	check_response(&r);
	free(r.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!vmm)
		setup();
	size_t off = 0;
	while (off < size) {
		struct http_request req;
		char err[256];
		int rc = http_parse_head((const char *)data + off, size - off, &req, err, sizeof(err));
		if (rc != 0)
			break; /* incomplete, or refused: the server answers and closes */
		if (req.head_len > size - off || req.content_length > HTTP_MAX_BODY)
			__builtin_trap();
		if (req.content_length > size - off - req.head_len)
			break;
		serve(&req, data + off + req.head_len);
		off += req.head_len + req.content_length;
	}
	return 0;
}
