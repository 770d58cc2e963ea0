/* Handlers for devices: drives, network interfaces, vsock, entropy, balloon. Bodies go
 * through config_devices.c's parsers (what --config uses), into a scratch copy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "vmm/config_json.h"
#include "vmm/vmm_state.h"

/* Messages without a file prefix: "machine-config.vcpu_count: ...". */
#define PARSE_CTX(ctx, err) \
	struct parse_ctx ctx = { .name = NULL, .err = err, .errlen = sizeof(err) }
#define ID_MISMATCH "The id from the path does not match the id from the body!"
#define PATCH_DRIVE_FAILED "Unable to patch the block device: " /* Firecracker's words */

static int find_drive(const struct vm_config *cfg, const char *id)
{
	for (int i = 0; i < cfg->ndrives; i++)
		if (strcmp(cfg->drives[i].drive_id, id) == 0)
			return i;
	return -1;
}

static int find_net(const struct vm_config *cfg, const char *id)
{
	for (int i = 0; i < cfg->nnets; i++)
		if (strcmp(cfg->nets[i].iface_id, id) == 0)
			return i;
	return -1;
}

/* Checks a parsed drive against the others; 0 or -1 after a fault. */
static int check_drive(struct vmm *v, const struct api_request *req, struct drive_config *d,
		       struct api_response *r)
{
	if (strcmp(d->drive_id, req->id) != 0)
		return api_fault(r, 400, ID_MISMATCH);
	if (api_check_path(r, "drives.path_on_host", d->path_on_host, API_PATH_DRIVE,
			   d->is_read_only))
		return -1;
	for (int i = 0; i < v->cfg.ndrives; i++)
		if (d->is_root_device && v->cfg.drives[i].is_root_device &&
		    strcmp(v->cfg.drives[i].drive_id, d->drive_id) != 0)
			return api_fault(r, 400, "A root block device already exists!");
	if (find_drive(&v->cfg, d->drive_id) < 0 && v->cfg.ndrives == CONFIG_MAX_DRIVES)
		return api_fault(r, 400, "drives: at most %d drives", CONFIG_MAX_DRIVES);
	return 0;
}

void api_put_drive(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX], path[96];
	PARSE_CTX(ctx, err);
	snprintf(path, sizeof(path), "drives[%s]", req->id);
	struct drive_config d = { 0 };
	if (config_parse_drive(&ctx, path, body, &d)) {
		api_fault(r, 400, "%s", err);
	} else if (check_drive(v, req, &d, r) == 0) {
		int i = find_drive(&v->cfg, d.drive_id);
		if (i < 0)
			i = v->cfg.ndrives++;
		else
			config_drive_clear(&v->cfg.drives[i]);
		v->cfg.drives[i] = d;
		memset(&d, 0, sizeof(d));
		api_no_content(r);
	}
	config_drive_clear(&d);
	json_decref(body);
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

/* The k-th device of a kind was made from the k-th entry of that kind. */
static struct virtio_device *device_of(struct vmm *v, uint32_t device_id, int k)
{
	for (int i = 0; i < v->vm.nvirtio; i++)
		if (v->vm.virtio[i]->ops->device_id == device_id && k-- == 0)
			return v->vm.virtio[i];
	return NULL;
}

/* A rate limiter given in a PATCH body (already checked) replaces the old one; null or
 * absent keeps it, as Firecracker's optional fields do. Returns out or NULL. */
static struct rate_limiter_config *patched_limiter(json_t *body, const char *key,
						   struct rate_limiter_config *out)
{
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	json_t *value = json_object_get(body, key);
	if (!value || json_is_null(value))
		return NULL;
	memset(out, 0, sizeof(*out));
	return config_take_rate_limiter(&ctx, key, value, out) ? NULL : out;
}

/* Checks a PATCH body: its fields, its id, the device. 0, or -1 after a fault. */
static int check_patch(struct vmm *v, const struct api_request *req, struct api_response *r,
		       json_t *body, bool is_drive, int *found)
{
	static const char *const drive_fields[] = { "path_on_host", "rate_limiter", NULL };
	static const char *const net_fields[] = { "rx_rate_limiter", "tx_rate_limiter", NULL };
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	const char *id_key = is_drive ? "drive_id" : "iface_id";
	const char *id = json_string_value(json_object_get(body, id_key));
	*found = is_drive ? find_drive(&v->cfg, req->id) : find_net(&v->cfg, req->id);
	if (check_patch_fields(&ctx, body, is_drive ? "drives" : "network-interfaces", id_key,
			       is_drive ? drive_fields : net_fields,
			       is_drive ? "drive_id, path_on_host, rate_limiter"
					: "iface_id, rx_rate_limiter, tx_rate_limiter"))
		return api_fault(r, 400, "%s", err);
	if (!id || strcmp(id, req->id) != 0)
		return api_fault(r, 400, ID_MISMATCH);
	if (*found < 0)
		return api_fault(r, 400, "%s '%s' does not exist",
				 is_drive ? "drive" : "network interface", req->id);
	return 0;
}

/* Why the device refused a drive's new image (its log has the details). */
static const char *image_refusal(int err)
{
	switch (err) {
	case -EBUSY: return "locked by another process (is another VMM using this disk?)";
	case -EINVAL: return "not a regular file or block device";
	default: return strerror(-err);
	}
}

/* The device takes the change, then the stored configuration follows; 0 or -1 after a
 * fault. path (when given) has been checked as PUT /drives checks it. */
static int update_drive(struct vmm *v, int i, const char *path,
			const struct rate_limiter_config *rl, struct api_response *r)
{
	struct drive_config *d = &v->cfg.drives[i];
	struct virtio_device *dev = device_of(v, VIRTIO_ID_BLOCK, i);
	char *copy = path ? strdup(path) : NULL;
	if (path && !copy)
		return api_fault(r, 400, PATCH_DRIVE_FAILED "drive '%s': out of memory", d->drive_id);
	int err = dev ? virtio_blk_update(dev, path, rl) : -ENODEV;
	if (err) {
		free(copy);
		if (!dev)
			return api_fault(r, 400, PATCH_DRIVE_FAILED "drive '%s' has no device",
					 d->drive_id);
		return api_fault(r, 400, PATCH_DRIVE_FAILED "drive '%s': %s: %s", d->drive_id, path,
				 image_refusal(err));
	}
	if (copy) {
		free(d->path_on_host);
		d->path_on_host = copy;
	}
	if (rl)
		d->rate_limiter = *rl;
	return 0;
}

/* Firecracker's PATCH /drives/{id} after boot: a new backing file, whose capacity the
 * guest is told, and/or a new rate limiter. null or absent keeps a field. */
void api_patch_drive(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	int i;
	if (!body || check_patch(v, req, r, body, true, &i)) {
		json_decref(body);
		return;
	}
	const char *path = json_string_value(json_object_get(body, "path_on_host"));
	struct rate_limiter_config rl_cfg;
	struct rate_limiter_config *rl = patched_limiter(body, "rate_limiter", &rl_cfg);
	if (!path && !rl)
		api_fault(r, 400, PATCH_DRIVE_FAILED "drive '%s': nothing to change (expected "
				  "path_on_host and/or rate_limiter)", req->id);
	else if (path && api_check_path(r, "drives.path_on_host", path, API_PATH_DRIVE,
					v->cfg.drives[i].is_read_only))
		; /* the fault names the path */
	else if (update_drive(v, i, path, rl, r) == 0)
		api_no_content(r);
	json_decref(body);
}

/* Firecracker's PATCH /network-interfaces/{id}: new rx and/or tx rate limiters. */
void api_patch_net(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	int i;
	if (!body || check_patch(v, req, r, body, false, &i)) {
		json_decref(body);
		return;
	}
	struct rate_limiter_config rx_cfg, tx_cfg;
	struct rate_limiter_config *rx = patched_limiter(body, "rx_rate_limiter", &rx_cfg);
	struct rate_limiter_config *tx = patched_limiter(body, "tx_rate_limiter", &tx_cfg);
	struct virtio_device *dev = device_of(v, VIRTIO_ID_NET, i);
	if (!dev || virtio_net_set_rate_limiters(dev, rx, tx)) {
		api_fault(r, 400, "network interface '%s': its device refused the rate limiters",
			  req->id);
	} else {
		if (rx)
			v->cfg.nets[i].rx_rate_limiter = *rx;
		if (tx)
			v->cfg.nets[i].tx_rate_limiter = *tx;
		api_no_content(r);
	}
	json_decref(body);
}

/* A tap's name as Linux takes it (dev_valid_name): 1..15 bytes, no '/', no spaces. */
static bool tap_name_ok(const char *s)
{
	size_t len = strlen(s);
	return len > 0 && len < 16 && strcmp(s, ".") && strcmp(s, "..") && !strpbrk(s, "/: \t\n");
}

void api_put_net(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX], path[96];
	PARSE_CTX(ctx, err);
	snprintf(path, sizeof(path), "network-interfaces[%s]", req->id);
	struct net_config n = { .tap_fd = -1 };
	int i = find_net(&v->cfg, req->id);
	if (config_parse_net(&ctx, path, body, &n)) {
		api_fault(r, 400, "%s", err);
	} else if (strcmp(n.iface_id, req->id) != 0) {
		api_fault(r, 400, ID_MISMATCH);
	} else if (!tap_name_ok(n.host_dev_name)) {
		api_fault(r, 400, "%s.host_dev_name: '%s' is not a valid interface name (1 to 15 "
				  "characters, no '/', ':' or spaces)", path, n.host_dev_name);
	} else if (i < 0 && v->cfg.nnets == CONFIG_MAX_NETS) {
		api_fault(r, 400, "network-interfaces: at most %d interfaces", CONFIG_MAX_NETS);
	} else {
		if (i < 0)
			i = v->cfg.nnets++;
		else
			config_net_clear(&v->cfg.nets[i]);
		v->cfg.nets[i] = n;
		memset(&n, 0, sizeof(n));
		api_no_content(r);
	}
	config_net_clear(&n);
	json_decref(body);
}

void api_put_vsock(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	struct vsock_config vs = { 0 };
	if (config_parse_vsock(&ctx, body, &vs))
		api_fault(r, 400, "%s", err);
	else if (api_check_path(r, "vsock.uds_path", vs.uds_path, API_PATH_NEW_SOCKET, false) == 0) {
		free(v->cfg.vsock.uds_path);
		v->cfg.vsock = vs;
		vs.uds_path = NULL;
		api_no_content(r);
	}
	free(vs.uds_path);
	json_decref(body);
}

void api_put_entropy(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	struct entropy_config e = { 0 };
	if (config_parse_entropy(&ctx, body, &e)) {
		api_fault(r, 400, "%s", err);
	} else {
		v->cfg.entropy = e;
		api_no_content(r);
	}
	json_decref(body);
}

void api_put_balloon(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	struct balloon_config b = { 0 };
	if (config_parse_balloon(&ctx, body, &b)) {
		api_fault(r, 400, "%s", err);
	} else if (!json_object_get(body, "amount_mib") ||
		   !json_object_get(body, "deflate_on_oom")) {
		api_fault(r, 400, "balloon: amount_mib and deflate_on_oom are required");
	} else if (b.amount_mib > v->cfg.mem_mib) {
		api_fault(r, 400, "balloon.amount_mib: %u MiB is more than the guest's %llu MiB",
			  b.amount_mib, (unsigned long long)v->cfg.mem_mib);
	} else {
		v->cfg.balloon = b;
		api_no_content(r);
	}
	json_decref(body);
}

void api_get_balloon(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	const struct balloon_config *b = &v->cfg.balloon;
	if (!b->enabled) {
		api_fault(r, 400, "No balloon device configured.");
		return;
	}
	api_json(r, json_pack("{s:I, s:b, s:I}", "amount_mib", (json_int_t)b->amount_mib,
			      "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			      (json_int_t)b->stats_polling_interval_s));
}

static struct virtio_device *balloon_device(struct vmm *v)
{
	for (int i = 0; i < v->vm.nvirtio; i++)
		if (v->vm.virtio[i]->ops->device_id == VIRTIO_ID_BALLOON)
			return v->vm.virtio[i];
	return NULL;
}

void api_patch_balloon(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	uint64_t mib = 0;
	struct virtio_device *dev = balloon_device(v);
	json_t *amount = json_object_get(body, "amount_mib");
	if (json_object_size(body) != 1 || !amount)
		api_fault(r, 400, "balloon: expected {\"amount_mib\": N}");
	else if (config_take_uint(&ctx, "balloon.amount_mib", amount, 0, UINT32_MAX >> 12, &mib))
		api_fault(r, 400, "%s", err);
	else if (!dev)
		api_fault(r, 400, "No balloon device configured.");
	else if (virtio_balloon_set_target(dev, (uint32_t)mib))
		api_fault(r, 400, "balloon.amount_mib: %llu MiB is more than the guest's %llu MiB",
			  (unsigned long long)mib, (unsigned long long)v->cfg.mem_mib);
	else {
		v->cfg.balloon.amount_mib = (uint32_t)mib;
		api_no_content(r);
	}
	json_decref(body);
}

/* Firecracker's names for the guest's statistics (virtio 1.2, 5.5.6.3). */
static const char *const stat_names[VIRTIO_BALLOON_S_NR] = {
	[VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
	[VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
	[VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
	[VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
	[VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
	[VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
	[VIRTIO_BALLOON_S_AVAIL] = "available_memory",
	[VIRTIO_BALLOON_S_CACHES] = "disk_caches",
	[VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
	[VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
};

void api_get_balloon_stats(struct vmm *v, const struct api_request *req,
			   struct api_response *r)
{
	struct virtio_device *dev = balloon_device(v);
	struct virtio_balloon_stats s;
	if (!dev) {
		api_fault(r, 400, "No balloon device configured.");
		return;
	}
	if (!v->cfg.balloon.stats_polling_interval_s || virtio_balloon_get_stats(dev, &s)) {
		api_fault(r, 400, "Statistics are not enabled for the balloon device.");
		return;
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)s.target_pages,
			      "actual_pages", (json_int_t)s.actual_pages, "target_mib",
			      (json_int_t)(s.target_pages >> 8), "actual_mib",
			      (json_int_t)(s.actual_pages >> 8));
	for (int t = 0; o && t < VIRTIO_BALLOON_S_NR; t++)
		if (stat_names[t] && (s.valid >> t) & 1)
			json_object_set_new(o, stat_names[t], json_integer((json_int_t)s.values[t]));
	api_json(r, o);
}

void api_patch_balloon_stats(struct vmm *v, const struct api_request *req,
			     struct api_response *r)
{
	json_t *body = api_body_object(req, r);
	if (!body)
		return;
	char err[API_MSG_MAX];
	PARSE_CTX(ctx, err);
	uint64_t s = 0;
	struct virtio_device *dev = balloon_device(v);
	json_t *interval = json_object_get(body, "stats_polling_interval_s");
	if (json_object_size(body) != 1 || !interval)
		api_fault(r, 400, "balloon: expected {\"stats_polling_interval_s\": N}");
	else if (config_take_uint(&ctx, "balloon.stats_polling_interval_s", interval, 0, 3600, &s))
		api_fault(r, 400, "%s", err);
	else if (!dev)
		api_fault(r, 400, "No balloon device configured.");
	else if (virtio_balloon_set_stats_interval(dev, (uint32_t)s))
		api_fault(r, 400, "balloon.stats_polling_interval_s: statistics cannot be switched "
				  "on or off after boot (only their interval changes)");
	else {
		v->cfg.balloon.stats_polling_interval_s = (uint32_t)s;
		api_no_content(r);
	}
	json_decref(body);
}
