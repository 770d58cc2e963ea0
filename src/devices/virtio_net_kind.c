/* virtio-net as the rest of the VMM sees it: Firecracker's network-interfaces[]
 * entries, the --net option, PUT and PATCH /network-interfaces/{id}, and the network
 * metrics. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device_kind.h"
#include "devices/tap.h"
#include "devices/virtio_net.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/config_json.h"
#include "vmm/metrics.h"

extern const struct device_kind virtio_net_kind;

static void net_config_init(void *conf)
{
	((struct net_config *)conf)->tap_fd = -1;
}

static void net_config_clear(void *conf)
{
	struct net_config *n = conf;
	free(n->iface_id);
	free(n->host_dev_name);
	memset(n, 0, sizeof(*n));
	n->tap_fd = -1;
}

static const char *net_id(const void *conf)
{
	return ((const struct net_config *)conf)->iface_id;
}

static int take_mac(struct parse_ctx *ctx, const char *path, json_t *v, struct net_config *n)
{
	if (json_is_null(v)) { /* Firecracker's: none given, the device derives one */
		n->has_guest_mac = false;
		return 0;
	}
	if (config_parse_mac(json_string_value(v), n->guest_mac))
		return config_fail(ctx, "%s: expected a MAC address like \"AA:FC:00:00:00:01\"", path);
	if (n->guest_mac[0] & 1)
		return config_fail(ctx, "%s: a multicast address cannot be a guest's MAC", path);
	n->has_guest_mac = true;
	return 0;
}

/* Firecracker's bounds (its swagger: 68..65535); null is none. */
static int take_mtu(struct parse_ctx *ctx, const char *path, json_t *v, struct net_config *n)
{
	uint64_t mtu = 0;
	if (!json_is_null(v) && config_take_uint(ctx, path, v, 68, 65535, &mtu))
		return -1;
	n->mtu = (uint16_t)mtu;
	return 0;
}

static int take_field(struct parse_ctx *ctx, const char *p, const char *key, json_t *v,
		      struct net_config *n)
{
	if (strcmp(key, "iface_id") == 0)
		return config_take_string(ctx, p, v, &n->iface_id);
	if (strcmp(key, "host_dev_name") == 0)
		return config_take_string(ctx, p, v, &n->host_dev_name);
	if (strcmp(key, "guest_mac") == 0)
		return take_mac(ctx, p, v, n);
	if (strcmp(key, "mtu") == 0)
		return take_mtu(ctx, p, v, n);
	if (strcmp(key, "rx_rate_limiter") == 0)
		return config_take_rate_limiter(ctx, p, v, &n->rx_rate_limiter);
	if (strcmp(key, "tx_rate_limiter") == 0)
		return config_take_rate_limiter(ctx, p, v, &n->tx_rate_limiter);
	return config_unknown_field(ctx, p, "iface_id, host_dev_name, guest_mac, "
					    "rx_rate_limiter, tx_rate_limiter");
}

static int net_parse_json(struct parse_ctx *ctx, const char *path, json_t *obj, void *conf)
{
	struct net_config *n = conf;
	if (!json_is_object(obj))
		return config_fail(ctx, "%s: expected an object", path);
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		char p[128];
		snprintf(p, sizeof(p), "%s.%s", path, key);
		if (take_field(ctx, p, key, v, n))
			return -1;
	}
	if (!n->iface_id || !n->host_dev_name)
		return config_fail(ctx, "%s: iface_id and host_dev_name are required", path);
	return 0;
}

static void mac_text(const uint8_t m[6], char out[18])
{
	snprintf(out, 18, "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* Firecracker's shape: guest_mac and mtu null when not given. */
static json_t *net_to_json(const void *conf)
{
	const struct net_config *n = conf;
	char mac[18];
	mac_text(n->guest_mac, mac);
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "iface_id", n->iface_id,
			 "host_dev_name", n->host_dev_name, "guest_mac",
			 n->has_guest_mac ? json_string(mac) : json_null(), "mtu",
			 n->mtu ? json_integer(n->mtu) : json_null(), "rx_rate_limiter",
			 config_rate_limiter_json(&n->rx_rate_limiter), "tx_rate_limiter",
			 config_rate_limiter_json(&n->tx_rate_limiter));
}

/* --net tap=NAME[,mac=MAC][,id=NAME][,bw=N][,ops=N]: one rate for both directions; an
 * interface without id= is eth<index>. */
static int net_parse_option(void *conf, const char *arg, int index, char *err, size_t errlen)
{
	struct net_config *n = conf;
	if (index == VIRTIO_NET_MAX_IFACES)
		return config_arg_fail(err, errlen, "--net", arg, "too many interfaces");
	char *copy = strdup(arg), *cursor = copy, *item;
	int rc = copy ? 0 : -1, bad;
	while (!rc && (item = config_arg_next(&cursor))) {
		if (config_arg_common(item, &n->iface_id, &n->tx_rate_limiter, &bad)) {
			n->rx_rate_limiter = n->tx_rate_limiter;
			rc = bad ? config_arg_fail(err, errlen, "--net", item,
						   "expected a positive size") : 0;
		} else if (strncmp(item, "tap=", 4) == 0) {
			rc = config_set_string(&n->host_dev_name, item + 4);
		} else if (strncmp(item, "mac=", 4) == 0) {
			rc = config_parse_mac(item + 4, n->guest_mac) || (n->guest_mac[0] & 1)
				     ? config_arg_fail(err, errlen, "--net", item, "expected a unicast "
						       "MAC like AA:FC:00:00:00:01")
				     : 0;
			n->has_guest_mac = true;
		} else {
			rc = config_arg_fail(err, errlen, "--net", item, "expected tap=NAME, mac=MAC, "
					     "id=NAME, bw=N or ops=N");
		}
	}
	if (!rc && !n->host_dev_name)
		rc = config_arg_fail(err, errlen, "--net", arg, "tap=NAME is required");
	if (!rc && !n->iface_id) {
		char name[16];
		snprintf(name, sizeof(name), "eth%d", index);
		rc = config_set_string(&n->iface_id, name);
	}
	free(copy);
	return rc ? -1 : 0;
}

static int net_create(struct vm *vm, const void *conf)
{
	return virtio_net_create(vm, conf);
}

/* A tap's name as Linux takes it (dev_valid_name): 1..15 bytes, no '/', no spaces. */
static bool tap_name_ok(const char *s)
{
	size_t len = strlen(s);
	return len > 0 && len < 16 && strcmp(s, ".") && strcmp(s, "..") && !strpbrk(s, "/: \t\n");
}

/* What Firecracker refuses at PUT time because it opens the tap then: a guest MAC
 * another interface has, a tap another interface names, a tap another process holds. */
static int check_others(struct device_request *rq, const struct net_config *n)
{
	int count = config_device_count(rq->cfg, &virtio_net_kind);
	for (int i = 0; i < count; i++) {
		const struct net_config *o = config_device_nth(rq->cfg, &virtio_net_kind, i);
		if (strcmp(o->iface_id, n->iface_id) == 0)
			continue; /* the one this PUT replaces */
		char mac[18];
		mac_text(n->guest_mac, mac);
		if (n->has_guest_mac && o->has_guest_mac && !memcmp(o->guest_mac, n->guest_mac, 6))
			return rq->fail(rq, "The MAC address is already in use: %s (network "
					"interface '%s')", mac, o->iface_id);
		if (strcmp(o->host_dev_name, n->host_dev_name) == 0)
			return rq->fail(rq, "Could not create the network device: tap '%s' is in "
					"use by network interface '%s'", n->host_dev_name,
					o->iface_id);
	}
	if (tap_check_free(n->host_dev_name) == -EBUSY)
		return rq->fail(rq, "Could not create the network device: tap '%s' is in use "
				"(busy: another process has it open)", n->host_dev_name);
	return 0;
}

static int net_check_put(struct device_request *rq, const void *conf)
{
	const struct net_config *n = conf;
	if (!tap_name_ok(n->host_dev_name))
		return rq->fail(rq, "%s.host_dev_name: '%s' is not a valid interface name (1 to "
				"15 characters, no '/', ':' or spaces)", rq->path, n->host_dev_name);
	return check_others(rq, n);
}

/* Firecracker's PATCH /network-interfaces/{id}: new rx and/or tx rate limiters. */
static int net_patch(struct device_request *rq, struct virtio_device *dev, void *conf)
{
	struct net_config *n = conf;
	struct rate_limiter_config rx_cfg, tx_cfg;
	struct rate_limiter_config *rx = config_patched_limiter(rq->body, "rx_rate_limiter", &rx_cfg);
	struct rate_limiter_config *tx = config_patched_limiter(rq->body, "tx_rate_limiter", &tx_cfg);
	if (!dev || virtio_net_set_rate_limiters(dev, rx, tx))
		return rq->fail(rq, "network interface '%s': its device refused the rate limiters",
				rq->id);
	if (rx)
		n->rx_rate_limiter = *rx;
	if (tx)
		n->tx_rate_limiter = *tx;
	return 0;
}

static const struct metric_family net_families[] = {
	METRIC_FAMILY("argon_net_bytes_total", "counter", "Bytes per interface and direction",
		      "iface", "direction", false),
	METRIC_FAMILY("argon_net_packets_total", "counter", "Frames per interface and direction",
		      "iface", "direction", false),
	METRIC_FAMILY("argon_net_dropped_total", "counter", "Frames dropped",
		      "iface", "direction", false),
	METRIC_FAMILY("argon_net_errors_total", "counter", "Malformed chains and tap errors",
		      "iface", "direction", false),
};

static void net_stats(const struct device *d, struct metrics_sink *sink)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(d->virtio, &s);
	const char *iface = d->label + strlen("net:"); /* as long as the label holds */
	const uint64_t values[][2] = { { s.rx_bytes, s.tx_bytes }, { s.rx_packets, s.tx_packets },
				       { s.rx_dropped, s.tx_dropped }, { s.rx_errors, s.tx_errors } };
	for (int f = 0; f < 4; f++) {
		metrics_add(sink, &net_families[f], iface, "rx", values[f][0]);
		metrics_add(sink, &net_families[f], iface, "tx", values[f][1]);
	}
	char label[DEVICE_LABEL_MAX + 4]; /* cut to 63 bytes by metrics_add, as before */
	snprintf(label, sizeof(label), "%s:rx", d->label);
	metrics_add(sink, metrics_throttled, label, NULL, s.rx_throttled);
	snprintf(label, sizeof(label), "%s:tx", d->label);
	metrics_add(sink, metrics_throttled, label, NULL, s.tx_throttled);
}

static const char *const net_patch_fields[] = { "rx_rate_limiter", "tx_rate_limiter", NULL };

static void net_quiesce(struct device *d)
{
	virtio_net_quiesce(d->virtio);
}

static void net_save(const struct device *d, struct snap_writer *w)
{
	virtio_net_save(d->virtio, w);
}

static int net_restore(struct device *d, struct section_in *in)
{
	return virtio_net_restore(d->virtio, in);
}

const struct device_kind virtio_net_kind = {
	.name = "virtio-net",
	.section = "network-interfaces",
	.id_field = "iface_id",
	.max = VIRTIO_NET_MAX_IFACES,
	.plural = "interfaces",
	.noun = "network interface",
	.config_size = sizeof(struct net_config),
	.config_init = net_config_init,
	.config_clear = net_config_clear,
	.id = net_id,
	.parse_json = net_parse_json,
	.to_json = net_to_json,
	.option = "net",
	.option_usage = "tap=NAME[,mac=MAC][,id=NAME][,bw=N][,ops=N]",
	.parse_option = net_parse_option,
	.create = net_create,
	.check_put = net_check_put,
	.patch_fields = net_patch_fields,
	.patch_expected = "iface_id, rx_rate_limiter, tx_rate_limiter",
	.patch = net_patch,
	.metrics_label = "net",
	.families = net_families,
	.nfamilies = sizeof(net_families) / sizeof(net_families[0]),
	.stats = net_stats,
	.quiesce = net_quiesce,
	.save = net_save,
	.restore = net_restore,
};
