/* Firecracker's snapshot endpoints: PUT /snapshot/create on a paused VM, PUT
 * /snapshot/load on a fresh argon-vmm (vmm/snapshot.h). Bodies are Firecracker's
 * (SnapshotCreateParams, SnapshotLoadParams); what argon does not do yet (Diff
 * snapshots, dirty-page tracking, network overrides, UFFD backends) is refused by
 * name rather than ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/log.h"
#include "vmm/config_json.h"
#include "vmm/snapshot.h"
#include "vmm/vmm_state.h"

/* One string field, required or not: 0 (value in *out, NULL when absent) or -1 after
 * a fault. */
static int take_path(struct api_response *r, json_t *body, const char *section,
		     const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(body, key);
	*out = json_string_value(v);
	if (v && !*out)
		return api_fault(r, 400, "%s.%s: expected a string", section, key);
	if (!v && required)
		return api_fault(r, 400, "%s.%s: required", section, key);
	return 0;
}

/* Every key of body is one of allowed (NULL-terminated); -1 after a fault naming the
 * first other one. */
static int known_fields(struct api_response *r, json_t *body, const char *section,
			const char *const *allowed, const char *expected)
{
	const char *key;
	json_t *value;
	json_object_foreach(body, key, value) {
		size_t i = 0;
		while (allowed[i] && strcmp(allowed[i], key) != 0)
			i++;
		if (!allowed[i])
			return api_fault(r, 400, "%s.%s: unknown field (expected %s)", section, key,
					 expected);
	}
	return 0;
}

static int check_create_body(struct vmm *v, struct api_response *r, json_t *body,
			     const char **state_path, const char **mem_path)
{
	static const char *const fields[] = { "snapshot_type", "snapshot_path", "mem_file_path",
					      "version", NULL };
	const char *type = NULL;
	if (known_fields(r, body, "snapshot", fields,
			 "snapshot_type, snapshot_path, mem_file_path") ||
	    take_path(r, body, "snapshot", "snapshot_type", false, &type) ||
	    take_path(r, body, "snapshot", "snapshot_path", true, state_path) ||
	    take_path(r, body, "snapshot", "mem_file_path", true, mem_path))
		return -1;
	if (type && strcmp(type, "Full") != 0)
		return api_fault(r, 400, "snapshot.snapshot_type: \"%s\": only \"Full\" snapshots "
				 "are supported", type);
	if (v->state != VMM_PAUSED)
		return api_fault(r, 400, "Create snapshot error: the microVM is not paused: "
				 "PATCH /vm {\"state\": \"Paused\"} first");
	if (api_check_path(r, "snapshot.snapshot_path", *state_path, API_PATH_OUTPUT, false) ||
	    api_check_path(r, "snapshot.mem_file_path", *mem_path, API_PATH_OUTPUT, false))
		return -1;
	return 0;
}

/* The VM stays paused throughout. The lock every request takes is let go while the
 * files are written (DESIGN.md: a long action must not hold it): only this API thread
 * changes the VM's state, and it is busy here; the main thread, which may flush
 * metrics meanwhile, tears the VM down only after it has joined this thread. */
void api_put_snapshot_create(struct vmm *v, const struct api_request *req,
			     struct api_response *r)
{
	const char *state_path, *mem_path;
	if (check_create_body(v, r, req->json, &state_path, &mem_path))
		return;
	char err[API_MSG_MAX];
	struct snapshot_create_stats st;
	pthread_mutex_unlock(&v->lock);
	log_capture_begin(err, sizeof(err));
	int rc = snapshot_create(v, state_path, mem_path, &st);
	log_capture_end();
	pthread_mutex_lock(&v->lock);
	if (rc) {
		api_fault(r, 400, "Create snapshot error: %s", err[0] ? err : "internal error");
		return;
	}
	log_info("snapshot %s (%llu bytes, %.3f ms) and %s (%llu MiB written, %llu MiB holes, "
		 "%.3f ms)", state_path, (unsigned long long)st.state_bytes, st.state_ns / 1e6,
		 mem_path, (unsigned long long)(st.mem.written >> 20),
		 (unsigned long long)(st.mem.skipped >> 20), st.mem_ns / 1e6);
	api_no_content(r);
}

/* mem_backend {backend_type: "File", backend_path}, or Firecracker's older
 * mem_file_path; exactly one. */
static int take_mem_backend(struct api_response *r, json_t *body, const char **mem_path)
{
	json_t *backend = json_object_get(body, "mem_backend");
	const char *old = NULL, *type = NULL;
	if (take_path(r, body, "snapshot-load", "mem_file_path", false, &old))
		return -1;
	if (!backend == !old)
		return api_fault(r, 400, "snapshot-load: give mem_backend (or the older "
				 "mem_file_path), exactly one");
	if (old) {
		*mem_path = old;
		return 0;
	}
	static const char *const fields[] = { "backend_type", "backend_path", NULL };
	if (!json_is_object(backend))
		return api_fault(r, 400, "snapshot-load.mem_backend: expected an object");
	if (known_fields(r, backend, "snapshot-load.mem_backend", fields,
			 "backend_type, backend_path") ||
	    take_path(r, backend, "snapshot-load.mem_backend", "backend_type", true, &type) ||
	    take_path(r, backend, "snapshot-load.mem_backend", "backend_path", true, mem_path))
		return -1;
	if (strcmp(type, "File") != 0)
		return api_fault(r, 400, "snapshot-load.mem_backend.backend_type: \"%s\": only "
				 "\"File\" is supported", type);
	return 0;
}

static int check_load_body(struct vmm *v, struct api_response *r, json_t *body,
			   const char **state_path, const char **mem_path, bool *resume)
{
	static const char *const fields[] = { "snapshot_path", "mem_backend", "mem_file_path",
					      "resume_vm", "enable_diff_snapshots",
					      "track_dirty_pages", NULL };
	if (known_fields(r, body, "snapshot-load", fields,
			 "snapshot_path, mem_backend, resume_vm") ||
	    take_path(r, body, "snapshot-load", "snapshot_path", true, state_path) ||
	    take_mem_backend(r, body, mem_path))
		return -1;
	json_t *res = json_object_get(body, "resume_vm");
	if (res && !json_is_boolean(res))
		return api_fault(r, 400, "snapshot-load.resume_vm: expected true or false");
	*resume = json_is_true(res);
	if (json_is_true(json_object_get(body, "enable_diff_snapshots")) ||
	    json_is_true(json_object_get(body, "track_dirty_pages")))
		return api_fault(r, 400, "snapshot-load: diff snapshots (dirty-page tracking) are "
				 "not supported");
	if (v->cfg.kernel_path || v->cfg.ndevices)
		return api_fault(r, 400, "Loading a microVM snapshot not allowed after configuring "
				 "boot-specific resources.");
	if (api_check_path(r, "snapshot-load.snapshot_path", *state_path, API_PATH_READ, true) ||
	    api_check_path(r, "snapshot-load.mem_backend.backend_path", *mem_path, API_PATH_READ,
			   true))
		return -1;
	return 0;
}

/* Like InstanceStart: the main thread builds the VM, from the snapshot; a load that
 * fails answers 400 with the reason, then argon-vmm ends with the matching status. */
void api_put_snapshot_load(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	const char *state_path, *mem_path;
	bool resume = false;
	char err[API_MSG_MAX];
	if (check_load_body(v, r, req->json, &state_path, &mem_path, &resume))
		return;
	if (config_set_string(&v->restore.state_path, state_path) ||
	    config_set_string(&v->restore.mem_path, mem_path)) {
		api_fault(r, 500, "out of memory");
		return;
	}
	v->restore.resume = resume;
	if (vmm_request_start(v, err, sizeof(err)))
		api_fault(r, 400, "Load snapshot error: %s", err);
	else
		api_no_content(r);
}
