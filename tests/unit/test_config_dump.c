/* GET /vm/config's JSON: what config_to_json writes, config_load_string reads back to
 * the same configuration; the logger and metrics sections parse like Firecracker's. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/log.h"
#include "devices/device_kind.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "vmm/config.h"

static void *nth(const struct vm_config *cfg, const char *section, int k)
{
	return config_device_nth(cfg, device_kind_by_section(section), k);
}
#define DRIVE(cfg, k) ((struct drive_config *)nth(cfg, "drives", k))
#define NET(cfg, k) ((struct net_config *)nth(cfg, "network-interfaces", k))

static const char *full =
	"{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": \"/i\", "
	"\"boot_args\": \"console=ttyS0 argon.cmd=\\\"info\\\"\"},"
	"\"machine-config\": {\"vcpu_count\": 3, \"mem_size_mib\": 300},"
	"\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.img\", \"is_root_device\": "
	"true, \"is_read_only\": true, \"cache_type\": \"Unsafe\", \"rate_limiter\": {\"bandwidth\": "
	"{\"size\": 1000, \"one_time_burst\": 5, \"refill_time\": 100}}}, {\"drive_id\": \"data\", "
	"\"path_on_host\": \"/d.img\"}],"
	"\"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
	"\"AA:FC:00:00:00:01\", \"tx_rate_limiter\": {\"ops\": {\"size\": 10, \"refill_time\": 1000}}}],"
	"\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"},"
	"\"balloon\": {\"amount_mib\": 16, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 1},"
	"\"entropy\": {},"
	"\"logger\": {\"log_path\": \"/tmp/l.log\", \"level\": \"Debug\", \"show_level\": false},"
	"\"metrics\": {\"metrics_path\": \"/tmp/m.json\", \"period_ms\": 500}}";

static void load(struct vm_config *cfg, const char *json)
{
	char err[256] = "";
	config_init(cfg);
	if (config_load_string(cfg, "vm.json", json, err, sizeof(err)))
		fail_msg("%s", err);
}

static char *dump(const struct vm_config *cfg)
{
	json_t *j = config_to_json(cfg);
	assert_non_null(j);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	return s;
}

static void dump_round_trips(void **state)
{
	struct vm_config a, b;
	load(&a, full);
	char *first = dump(&a);
	load(&b, first);
	char *second = dump(&b);
	assert_string_equal(first, second);
	assert_int_equal(b.vcpus, 3);
	assert_int_equal(config_device_count(&b, device_kind_by_section("drives")), 2);
	assert_true(DRIVE(&b, 0)->is_read_only);
	assert_int_equal(DRIVE(&b, 0)->cache_type, DRIVE_CACHE_UNSAFE);
	assert_int_equal(DRIVE(&b, 0)->rate_limiter.bandwidth.size, 1000);
	assert_int_equal(NET(&b, 0)->tx_rate_limiter.ops.refill_time_ms, 1000);
	assert_memory_equal(NET(&b, 0)->guest_mac, "\xAA\xFC\x00\x00\x00\x01", 6);
	assert_true(nth(&b, "vsock", 0) && nth(&b, "balloon", 0) && nth(&b, "entropy", 0));
	assert_int_equal(b.logger.level, LOG_DEBUG);
	assert_false(b.logger.show_level);
	assert_true(b.logger.show_log_origin);
	assert_int_equal(b.metrics.period_ms, 500);
	free(first);
	free(second);
	config_free(&a);
	config_free(&b);
}

static void absent_sections_stay_absent(void **state)
{
	struct vm_config a;
	load(&a, "{\"boot-source\": {\"kernel_image_path\": \"/k\"}}");
	char *s = dump(&a);
	assert_null(strstr(s, "vsock"));
	assert_null(strstr(s, "balloon"));
	assert_null(strstr(s, "metrics"));
	assert_non_null(strstr(s, "\"drives\":[]"));
	free(s);
	config_free(&a);
}

static void firecracker_nulls_are_accepted(void **state)
{
	struct vm_config a;
	load(&a, "{\"vsock\": null, \"balloon\": null, \"entropy\": null, \"logger\": null, "
		 "\"metrics\": null, \"network-interfaces\": []}");
	assert_false(nth(&a, "vsock", 0) || nth(&a, "balloon", 0) || nth(&a, "entropy", 0));
	config_free(&a);
}

static void expect_error(const char *json, const char *message)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256] = "";
	assert_int_equal(config_load_string(&cfg, "vm.json", json, err, sizeof(err)), -1);
	assert_string_equal(err, message);
	config_free(&cfg);
}

static void logger_and_metrics_mistakes(void **state)
{
	expect_error("{\"logger\": {\"level\": \"Loud\"}}",
		     "vm.json: logger.level: expected \"Error\", \"Warning\", \"Info\", \"Debug\", "
		     "\"Trace\" or \"Off\"");
	expect_error("{\"logger\": {\"module\": \"vmm\"}}",
		     "vm.json: logger.module: filtering by module is not supported");
	expect_error("{\"logger\": {\"path\": \"/x\"}}",
		     "vm.json: logger.path: unknown field (expected log_path, level, show_level, "
		     "show_log_origin)");
	expect_error("{\"metrics\": {}}", "vm.json: metrics.metrics_path: required");
	expect_error("{\"metrics\": {\"metrics_path\": \"/m\", \"period_ms\": 5}}",
		     "vm.json: metrics.period_ms: 5 is out of range, expected 100..3600000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dump_round_trips),
		cmocka_unit_test(absent_sections_stay_absent),
		cmocka_unit_test(firecracker_nulls_are_accepted),
		cmocka_unit_test(logger_and_metrics_mistakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
