/* virtio-balloon's own endpoints beside PUT /balloon (which every kind has):
 * Firecracker's GET and PATCH /balloon and /balloon/statistics. The balloon is found
 * by its kind, as every device is. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "devices/device_kind.h"
#include "devices/virtio_balloon.h"
#include "vmm/config_json.h"
#include "vmm/vmm_state.h"


extern const struct device_kind virtio_balloon_kind;

static struct balloon_config *balloon_config(struct vmm *v)
{
	return config_device(&v->cfg, &virtio_balloon_kind, NULL);
}

void api_get_balloon(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	const struct balloon_config *b = balloon_config(v);
	if (!b) {
		api_fault(r, 400, "No balloon device configured.");
		return;
	}
	api_json(r, json_pack("{s:I, s:b, s:I}", "amount_mib", (json_int_t)b->amount_mib,
			      "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			      (json_int_t)b->stats_polling_interval_s));
}

static struct virtio_device *balloon_device(struct vmm *v)
{
	struct device *d = device_set_find(&v->devices, &virtio_balloon_kind, NULL);
	return d ? d->virtio : NULL;
}

void api_patch_balloon(struct vmm *v, const struct api_request *req, struct api_response *r)
{
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
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
		balloon_config(v)->amount_mib = (uint32_t)mib; /* there: its device is */
		api_no_content(r);
	}
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
	if (!balloon_config(v)->stats_polling_interval_s || virtio_balloon_get_stats(dev, &s)) {
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
	json_t *body = req->json;
	char err[API_MSG_MAX];
	API_PARSE_CTX(ctx, err);
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
		balloon_config(v)->stats_polling_interval_s = (uint32_t)s;
		api_no_content(r);
	}
}
