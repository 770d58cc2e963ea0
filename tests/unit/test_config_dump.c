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

/* Firecracker's GET /vm/config shape: an absent object section is null, an absent
 * array section [], and the machine has every field with its default. */
static void absent_sections_are_null(void **state)
{
	struct vm_config a;
	load(&a, "{\"boot-source\": {\"kernel_image_path\": \"/k\"}}");
	char *s = dump(&a);
	static const char *const want[] = {
		"\"vsock\":null", "\"balloon\":null", "\"entropy\":null", "\"metrics\":null",
		"\"cpu-config\":null", "\"mmds-config\":null", "\"memory-hotplug\":null",
		"\"pmem\":[]", "\"drives\":[]", "\"network-interfaces\":[]",
		"\"initrd_path\":null",
		"\"machine-config\":{\"huge_pages\":\"None\",\"mem_size_mib\":128,\"smt\":false,"
		"\"track_dirty_pages\":false,\"vcpu_count\":1}",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(s, want[i]))
			fail_msg("%s not in %s", want[i], s);
	free(s);
	config_free(&a);
}

/* Each of Firecracker's fields argon now takes, read and written back. */
static void firecracker_fields_round_trip(void **state)
{
	struct vm_config a, b;
	load(&a, "{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": true, "
		 "\"track_dirty_pages\": true, \"huge_pages\": \"2M\", \"cpu_template\": null},"
		 "\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r\", "
		 "\"is_root_device\": true, \"partuuid\": \"0eaa91a0-01\", \"io_engine\": \"Async\", "
		 "\"socket\": null}, {\"drive_id\": \"d\", \"path_on_host\": \"/d\", "
		 "\"io_engine\": \"Sync\"}],"
		 "\"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
		 "\"mtu\": 9000}],"
		 "\"vsock\": {\"vsock_id\": \"v\", \"guest_cid\": 3, \"uds_path\": \"/v\"},"
		 "\"metrics\": {\"metrics_path\": \"/m\", \"emit_id\": true}}");
	char *first = dump(&a);
	load(&b, first);
	char *second = dump(&b);
	assert_string_equal(first, second);
	assert_true(b.smt && b.track_dirty_pages && b.metrics.emit_id);
	assert_int_equal(b.huge_pages, GUEST_MEM_PAGES_HUGETLB_2M);
	assert_string_equal(DRIVE(&b, 0)->partuuid, "0eaa91a0-01");
	assert_int_equal(DRIVE(&b, 0)->io_engine, BLOCK_ENGINE_IO_URING);
	assert_int_equal(DRIVE(&b, 1)->io_engine, BLOCK_ENGINE_THREADS);
	assert_int_equal(DRIVE(&b, 1)->cache_type, DRIVE_CACHE_UNSAFE); /* Firecracker's default */
	assert_int_equal(NET(&b, 0)->mtu, 9000);
	assert_non_null(strstr(first, "\"guest_mac\":null"));
	assert_non_null(strstr(first, "\"socket\":null"));
	assert_null(strstr(first, "vsock_id")); /* deprecated: not kept */
	free(first);
	free(second);
	config_free(&a);
	config_free(&b);
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

static void firecracker_fields_mistakes(void **state)
{
	expect_error("{\"machine-config\": {\"vcpu_count\": 3, \"mem_size_mib\": 128, \"smt\": "
		     "true}}", "vm.json: machine-config.vcpu_count: 3: with smt, 1 or an even number "
		     "of vCPUs");
	expect_error("{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 129, "
		     "\"huge_pages\": \"2M\"}}", "vm.json: machine-config.mem_size_mib: 129: with "
		     "huge_pages \"2M\", a multiple of 2 MiB");
	expect_error("{\"machine-config\": {\"huge_pages\": \"1G\"}}",
		     "vm.json: machine-config.huge_pages: expected \"None\", \"Transparent\" or \"2M\"");
	expect_error("{\"machine-config\": {\"cpu_template\": \"T2\"}}",
		     "vm.json: machine-config.cpu_template: CPU templates are not supported (only "
		     "\"None\")");
	expect_error("{\"drives\": [{\"drive_id\": \"r\", \"socket\": \"/s\"}]}",
		     "vm.json: drives[0].socket: vhost-user-blk drives are not supported (give "
		     "path_on_host for a virtio-blk drive)");
	expect_error("{\"drives\": [{\"drive_id\": \"r\", \"io_engine\": \"Fast\"}]}",
		     "vm.json: drives[0].io_engine: expected \"Sync\" or \"Async\"");
	expect_error("{\"drives\": [{\"drive_id\": \"r\", \"partuuid\": \"x y\"}]}",
		     "vm.json: drives[0].partuuid: expected a partition UUID (hex digits and dashes, "
		     "at most 36)");
	expect_error("{\"network-interfaces\": [{\"iface_id\": \"e\", \"mtu\": 67}]}",
		     "vm.json: network-interfaces[0].mtu: 67 is out of range, expected 68..65535");
	expect_error("{\"pmem\": [{}]}", "vm.json: pmem: virtio-pmem devices are not supported");
	expect_error("{\"mmds-config\": {}}",
		     "vm.json: mmds-config: the microVM metadata service (MMDS) is not supported");
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
		cmocka_unit_test(absent_sections_are_null),
		cmocka_unit_test(firecracker_fields_round_trip),
		cmocka_unit_test(firecracker_fields_mistakes),
		cmocka_unit_test(firecracker_nulls_are_accepted),
		cmocka_unit_test(logger_and_metrics_mistakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
