/* Command-line device options (--disk, --net, ...: each kind parses its own), shared by
 * argon-vmm and argon run, and the pieces of their syntax the kinds share:
 * comma-separated items, sizes with K/M/G, and id=, bw=, ops=. A rate of N per second
 * is a bucket of N tokens refilled in 1000 ms. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_args.h"

#include "devices/device_kind.h"
#include "vmm/config_json.h"

/* Splits "a,b=c" in place; returns the next item or NULL. */
char *config_arg_next(char **cursor)
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

int config_arg_fail(char *err, size_t errlen, const char *opt, const char *item, const char *what)
{
	snprintf(err, errlen, "%s: '%s': %s", opt, item, what);
	return -1;
}

/* Parses 10M, 512K, 1G, 1T (either case) or a plain number. */
int config_arg_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s < '0' || *s > '9')
		return -1;
	static const char units[] = "KMGT";
	const char *unit = *end && (*end & ~0x20) ? strchr(units, *end & ~0x20) : NULL;
	unsigned shift = unit ? 10 * (unsigned)(unit - units + 1) : 0;
	if (shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int config_arg_rate(const char *value, struct token_bucket_config *b)
{
	if (config_arg_size(value, &b->size) || b->size == 0)
		return -1;
	b->refill_time_ms = 1000;
	return 0;
}

/* Items every device accepts: id=, bw=, ops=. Returns 1 when item was one of them. */
int config_arg_common(char *item, char **id, struct rate_limiter_config *rl, int *bad)
{
	*bad = 0;
	if (strncmp(item, "id=", 3) == 0) {
		*bad = config_set_string(id, item + 3);
		return 1;
	}
	if (strncmp(item, "bw=", 3) == 0) {
		*bad = config_arg_rate(item + 3, &rl->bandwidth);
		return 1;
	}
	if (strncmp(item, "ops=", 4) == 0) {
		*bad = config_arg_rate(item + 4, &rl->ops);
		return 1;
	}
	return 0;
}

int config_arg_device(struct vm_config *cfg, const struct device_kind *kind, const char *arg,
		      char *err, size_t errlen)
{
	int index = config_device_count(cfg, kind);
	/* The one device of its kind is set over what came before (--config, an earlier
	 * option); a kind with ids gets a new device. */
	void *conf = kind->id_field ? NULL : config_device(cfg, kind, NULL);
	bool added = !conf;
	if (!conf && !(conf = config_device_new(kind))) {
		snprintf(err, errlen, "--%s: out of memory", kind->option);
		return -1;
	}
	if (kind->parse_option(conf, arg, index, err, errlen)) {
		if (added)
			config_device_free(kind, conf);
		return -1;
	}
	if (added && config_device_append(cfg, kind, conf)) {
		snprintf(err, errlen, "--%s: '%s': too many devices", kind->option, arg);
		return -1;
	}
	return 0;
}
