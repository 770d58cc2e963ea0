/* Command-line forms of the device options, shared by argon-vmm and argon run:
 *   --disk PATH[,ro][,id=NAME][,cache=writeback|unsafe][,bw=BYTES_PER_S][,ops=OPS_PER_S]
 *   --net tap=NAME[,mac=MAC][,id=NAME][,bw=BYTES_PER_S][,ops=OPS_PER_S]
 *   --vsock cid=N,uds=PATH
 *   --balloon MIB[,deflate-on-oom][,stats=SECONDS]
 *   --rng[=bw=BYTES_PER_S]
 * A rate of N per second is a bucket of N tokens refilled in 1000 ms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_args.h"
#include "vmm/config_json.h"

/* Splits "a,b=c" in place; returns the next item or NULL. */
static char *next_item(char **cursor)
{
	char *item = *cursor;
	if (!item || !*item)
		return NULL;
	char *comma = strchr(item, ',');
	if (comma) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	return item;
}

static int fail(char *err, size_t errlen, const char *opt, const char *item, const char *what)
{
	snprintf(err, errlen, "%s: '%s': %s", opt, item, what);
	return -1;
}

/* Parses 10M, 512K, 1G or a plain number. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int take_rate(const char *value, struct token_bucket_config *b)
{
	if (parse_size(value, &b->size) || b->size == 0)
		return -1;
	b->refill_time_ms = 1000;
	return 0;
}

/* Items every device accepts: id=, bw=, ops=. Returns 1 when item was one of them. */
static int take_common(char *item, char **id, struct rate_limiter_config *rl, int *bad)
{
	*bad = 0;
	if (strncmp(item, "id=", 3) == 0) {
		*bad = config_set_string(id, item + 3);
		return 1;
	}
	if (strncmp(item, "bw=", 3) == 0) {
		*bad = take_rate(item + 3, &rl->bandwidth);
		return 1;
	}
	if (strncmp(item, "ops=", 4) == 0) {
		*bad = take_rate(item + 4, &rl->ops);
		return 1;
	}
	return 0;
}

int config_arg_disk(struct vm_config *cfg, const char *arg, char *err, size_t errlen)
{
	if (cfg->ndrives == CONFIG_MAX_DRIVES)
		return fail(err, errlen, "--disk", arg, "too many disks");
	struct drive_config d = { 0 };
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = 0, bad;
	if (!copy || config_set_string(&d.path_on_host, next_item(&cursor)))
		rc = fail(err, errlen, "--disk", arg, "expected PATH[,ro][,id=NAME]...");
	while (!rc && (item = next_item(&cursor))) {
		if (take_common(item, &d.drive_id, &d.rate_limiter, &bad))
			rc = bad ? fail(err, errlen, "--disk", item, "expected a positive size") : 0;
		else if (strcmp(item, "ro") == 0)
			d.is_read_only = true;
		else if (strcmp(item, "cache=writeback") == 0)
			d.cache_type = DRIVE_CACHE_WRITEBACK;
		else if (strcmp(item, "cache=unsafe") == 0)
			d.cache_type = DRIVE_CACHE_UNSAFE;
		else
			rc = fail(err, errlen, "--disk", item,
				  "expected ro, id=NAME, cache=writeback|unsafe, bw=N or ops=N");
	}
	if (!rc && !d.drive_id) {
		char name[16];
		snprintf(name, sizeof(name), "disk%d", cfg->ndrives);
		rc = config_set_string(&d.drive_id, name);
	}
	d.is_root_device = !rc && cfg->ndrives == 0;
	free(copy);
	if (rc) {
		free(d.path_on_host);
		free(d.drive_id);
		return -1;
	}
	cfg->drives[cfg->ndrives++] = d;
	return 0;
}

int config_arg_net(struct vm_config *cfg, const char *arg, char *err, size_t errlen)
{
	if (cfg->nnets == CONFIG_MAX_NETS)
		return fail(err, errlen, "--net", arg, "too many interfaces");
	struct net_config n = { .tap_fd = -1 };
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = copy ? 0 : -1, bad;
	while (!rc && (item = next_item(&cursor))) {
		if (take_common(item, &n.iface_id, &n.tx_rate_limiter, &bad)) {
			n.rx_rate_limiter = n.tx_rate_limiter;
			rc = bad ? fail(err, errlen, "--net", item, "expected a positive size") : 0;
		} else if (strncmp(item, "tap=", 4) == 0) {
			rc = config_set_string(&n.host_dev_name, item + 4);
		} else if (strncmp(item, "mac=", 4) == 0) {
			rc = config_parse_mac(item + 4, n.guest_mac) || (n.guest_mac[0] & 1)
				     ? fail(err, errlen, "--net", item, "expected a unicast MAC "
									"like AA:FC:00:00:00:01")
				     : 0;
			n.has_guest_mac = true;
		} else {
			rc = fail(err, errlen, "--net", item, "expected tap=NAME, mac=MAC, id=NAME, "
							      "bw=N or ops=N");
		}
	}
	if (!rc && !n.host_dev_name)
		rc = fail(err, errlen, "--net", arg, "tap=NAME is required");
	if (!rc && !n.iface_id) {
		char name[16];
		snprintf(name, sizeof(name), "eth%d", cfg->nnets);
		rc = config_set_string(&n.iface_id, name);
	}
	free(copy);
	if (rc) {
		free(n.host_dev_name);
		free(n.iface_id);
		return -1;
	}
	cfg->nets[cfg->nnets++] = n;
	return 0;
}

int config_arg_vsock(struct vm_config *cfg, const char *arg, char *err, size_t errlen)
{
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = copy ? 0 : -1;
	while (!rc && (item = next_item(&cursor))) {
		uint64_t cid;
		if (strncmp(item, "cid=", 4) == 0 && !parse_size(item + 4, &cid) && cid >= 3 &&
		    cid < UINT32_MAX)
			cfg->vsock.guest_cid = (uint32_t)cid;
		else if (strncmp(item, "uds=", 4) == 0 && item[4])
			rc = config_set_string(&cfg->vsock.uds_path, item + 4);
		else
			rc = fail(err, errlen, "--vsock", item, "expected cid=N (3 or more) or uds=PATH");
	}
	free(copy);
	if (!rc && (!cfg->vsock.guest_cid || !cfg->vsock.uds_path))
		rc = fail(err, errlen, "--vsock", arg, "both cid=N and uds=PATH are required");
	cfg->vsock.enabled = rc == 0;
	return rc;
}

int config_arg_balloon(struct vm_config *cfg, const char *arg, char *err, size_t errlen)
{
	char *copy = strdup(arg), *cursor = copy, *item = next_item(&cursor);
	uint64_t v;
	int rc = copy && item && !parse_size(item, &v) && v <= (UINT32_MAX >> 12)
			 ? 0
			 : fail(err, errlen, "--balloon", arg, "expected MIB[,deflate-on-oom][,stats=S]");
	cfg->balloon.amount_mib = rc ? 0 : (uint32_t)v;
	while (!rc && (item = next_item(&cursor))) {
		if (strcmp(item, "deflate-on-oom") == 0)
			cfg->balloon.deflate_on_oom = true;
		else if (strncmp(item, "stats=", 6) == 0 && !parse_size(item + 6, &v) && v <= 3600)
			cfg->balloon.stats_polling_interval_s = (uint32_t)v;
		else
			rc = fail(err, errlen, "--balloon", item, "expected deflate-on-oom or stats=SECONDS");
	}
	free(copy);
	cfg->balloon.enabled = rc == 0;
	return rc;
}

int config_arg_rng(struct vm_config *cfg, const char *arg, char *err, size_t errlen)
{
	cfg->entropy.enabled = true;
	if (!arg || !*arg)
		return 0;
	if (strncmp(arg, "bw=", 3) || take_rate(arg + 3, &cfg->entropy.rate_limiter.bandwidth))
		return fail(err, errlen, "--rng", arg, "expected bw=BYTES_PER_SECOND");
	return 0;
}
