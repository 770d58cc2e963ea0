/* Handlers for the instance, its machine, boot source, actions, state, configuration,
 * logger and metrics. Each parses its body with the same functions --config uses
 * (config*.c) into a scratch copy, checks it, and only then changes v->cfg, so a
 * refused request changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "api/api.h"
#include "common/exit_status.h"
#include "common/version.h"
#include "devices/i8042.h"
#include "vmm/config_json.h"
#include "vmm/vm.h"
#include "vmm/vmm_state.h"


static void move_string(char **dst, char **src)
{
	free(*dst);
	*dst = *src;
	*src = NULL;
}

void api_get_instance(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	api_json(r, json_pack("{s:s, s:s, s:s, s:s}", "id", v->id, "state",
			      vmm_state_name(v->state), "vmm_version", ARGON_VERSION, "app_name",
			      "argon-vmm"));
}

void api_get_version(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	/* firecracker_version: what Firecracker's SDKs read. */
	api_json(r, json_pack("{s:s, s:s}", "firecracker_version", ARGON_VERSION, "argon_version",
			      ARGON_VERSION));
}

void api_put_boot_source(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
	struct vm_config s;
	config_init(&s);
	if (config_parse_boot_source(&ctx, body, &s))
		api_fault(r, 400, "%s", err);
	else if (!s.kernel_path)
		api_fault(r, 400, "boot-source.kernel_image_path: required");
	else if (api_check_path(r, "boot-source.kernel_image_path", s.kernel_path, API_PATH_READ,
				true) == 0 &&
		 (!s.initrd_path || api_check_path(r, "boot-source.initrd_path", s.initrd_path,
						   API_PATH_READ, true) == 0)) {
		move_string(&v->cfg.kernel_path, &s.kernel_path);
		move_string(&v->cfg.initrd_path, &s.initrd_path);
		move_string(&v->cfg.cmdline, &s.cmdline);
		api_no_content(r);
	}
	config_free(&s);
}

void api_get_machine(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	api_json(r, config_machine_json(&v->cfg));
}

static uint64_t host_mib(void)
{
	struct sysinfo si;
	return sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit >> 20 : 0;
}

/* The fields as Firecracker's PUT leaves them: absent ones take their defaults; a
 * PATCH starts from what is set. */
static void machine_start(struct vm_config *s, const struct vm_config *cur, bool patch)
{
	s->vcpus = patch ? cur->vcpus : s->vcpus;
	s->mem_mib = patch ? cur->mem_mib : s->mem_mib;
	s->smt = patch && cur->smt;
	s->track_dirty_pages = patch && cur->track_dirty_pages;
	s->huge_pages = patch ? cur->huge_pages : GUEST_MEM_PAGES_4K;
}

/* What the host cannot give is refused now, as Firecracker refuses SMT it lacks. */
static int check_machine_host(const struct vm_config *s, char *err, size_t len)
{
	struct vm_options o = { .smt = s->smt, .track_dirty_pages = s->track_dirty_pages,
				.pages = s->huge_pages };
	return vm_options_check_host(&o, s->mem_mib, err, len);
}

/* PUT replaces the machine configuration (both fields required), PATCH updates it. */
static void set_machine(struct vmm *v, const struct api_request *req, struct api_response *r,
			bool patch)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
	struct vm_config s;
	config_init(&s);
	machine_start(&s, &v->cfg, patch);
	uint64_t host = host_mib();
	if (patch && json_object_size(body) == 0)
		api_fault(r, 400, "Empty PATCH request.");
	else if (!patch && (!json_object_get(body, "vcpu_count") ||
			    !json_object_get(body, "mem_size_mib")))
		api_fault(r, 400, "machine-config: vcpu_count and mem_size_mib are required");
	else if (config_parse_machine_config(&ctx, body, &s))
		api_fault(r, 400, "%s", err);
	else if (host && s.mem_mib > host)
		api_fault(r, 400, "machine-config.mem_size_mib: %llu MiB is more than this host's "
				  "%llu MiB", (unsigned long long)s.mem_mib, (unsigned long long)host);
	else if (check_machine_host(&s, err, sizeof(err)))
		api_fault(r, 400, "%s", err);
	else {
		v->cfg.vcpus = s.vcpus;
		v->cfg.mem_mib = s.mem_mib;
		v->cfg.smt = s.smt;
		v->cfg.track_dirty_pages = s.track_dirty_pages;
		v->cfg.huge_pages = s.huge_pages;
		api_no_content(r);
	}
	config_free(&s);
}

void api_put_machine(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	set_machine(v, req, r, false);
}

void api_patch_machine(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	set_machine(v, req, r, true);
}

static void instance_start(struct vmm *v, struct api_response *r)
{
	char err[API_MSG_MAX];
	if (v->state != VMM_NOT_STARTED)
		api_fault(r, 400, "The requested operation is not supported after starting the "
				  "microVM.");
	else if (!v->cfg.kernel_path)
		api_fault(r, 400, "Start microvm error: no kernel: PUT /boot-source first");
	else if (vmm_request_start(v, err, sizeof(err)))
		api_fault(r, 400, "Start microvm error: %s", err);
	else
		api_no_content(r);
}

static void flush_metrics(struct vmm *v, struct api_response *r)
{
	if (v->metrics.fd < 0)
		api_fault(r, 400, "Metrics error: no metrics file: PUT /metrics first");
	else if (metrics_flush(v))
		api_fault(r, 400, "Metrics error: the metrics file did not take the line (counted "
				  "in metrics_lines_dropped_total)");
	else
		api_no_content(r);
}

/* Firecracker's: the keys go to the guest's i8042 keyboard and IRQ 1; what follows is
 * the guest's business (Linux reboots, which ends argon-vmm with status 0). A paused
 * VM takes them on resume. */
static void send_ctrl_alt_del(struct vmm *v, struct api_response *r)
{
	if (v->state == VMM_NOT_STARTED || !v->keyboard)
		api_fault(r, 400, "The requested operation is not supported before starting the "
				  "microVM.");
	else if (i8042_send_ctrl_alt_del(v->keyboard))
		api_fault(r, 400, "SendCtrlAltDel: the guest's keyboard buffer is full (the guest "
				  "has not read the keys sent before)");
	else
		api_no_content(r);
}

void api_put_actions(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	const char *key;
	json_t *value;
	json_object_foreach(body, key, value) {
		if (strcmp(key, "action_type") != 0) {
			api_fault(r, 400, "actions.%s: unknown field (expected action_type)", key);
			return;
		}
	}
	const char *type = json_string_value(json_object_get(body, "action_type"));
	if (type && strcmp(type, "InstanceStart") == 0)
		instance_start(v, r);
	else if (type && strcmp(type, "FlushMetrics") == 0)
		flush_metrics(v, r);
	else if (type && strcmp(type, "SendCtrlAltDel") == 0)
		send_ctrl_alt_del(v, r);
	else
		api_fault(r, 400, "actions.action_type: expected \"InstanceStart\", "
				  "\"SendCtrlAltDel\" or \"FlushMetrics\"");
}

void api_patch_vm(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	const char *state = json_string_value(json_object_get(body, "state"));
	bool pause = state && strcmp(state, "Paused") == 0;
	bool resume = state && strcmp(state, "Resumed") == 0;
	if (json_object_size(body) != 1 || !json_object_get(body, "state"))
		api_fault(r, 400, "vm: expected {\"state\": \"Paused\"} or {\"state\": \"Resumed\"}");
	else if (!pause && !resume)
		api_fault(r, 400, "vm.state: expected \"Paused\" or \"Resumed\"");
	else if (pause && vmm_pause(v, err, sizeof(err)))
		api_fault(r, 400, "Pause error: %s", err);
	else if (resume && vmm_resume(v, err, sizeof(err)))
		api_fault(r, 400, "Resume error: %s", err);
	else
		api_no_content(r);
}

void api_get_vm_config(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	api_json(r, config_to_json(&v->cfg));
}

void api_put_logger(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
	struct logger_config l;
	config_logger_init(&l);
	if (config_parse_logger(&ctx, body, &l))
		api_fault(r, 400, "%s", err);
	else if (l.log_path &&
		 api_check_path(r, "logger.log_path", l.log_path, API_PATH_OUTPUT, false))
		; /* fault set */
	else if (vmm_apply_logger(v, &l, err, sizeof(err)))
		api_fault(r, 400, "logger.log_path: %s", err);
	else {
		free(v->cfg.logger.log_path);
		v->cfg.logger = l;
		l.log_path = NULL; /* now the configuration's */
		api_no_content(r);
	}
	free(l.log_path);
}

void api_put_metrics(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
	struct metrics_config m = { .period_ms = METRICS_DEFAULT_PERIOD_MS };
	if (config_parse_metrics(&ctx, body, &m))
		api_fault(r, 400, "%s", err);
	else if (api_check_path(r, "metrics.metrics_path", m.metrics_path, API_PATH_OUTPUT, false))
		; /* fault set */
	else if (vmm_apply_metrics(v, &m, err, sizeof(err)))
		api_fault(r, 400, "metrics.metrics_path: %s", err);
	else {
		move_string(&v->cfg.metrics.metrics_path, &m.metrics_path);
		v->cfg.metrics.period_ms = m.period_ms;
		v->cfg.metrics.emit_id = m.emit_id;
		api_no_content(r);
	}
	free(m.metrics_path);
}

void api_get_metrics(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	char *text = metrics_prometheus(v);
	if (!text) {
		api_fault(r, 500, "out of memory");
		return;
	}
	free(r->body);
	r->status = 200;
	r->body = text;
	r->content_type = "text/plain; version=0.0.4";
}
