/* Device sections of the JSON configuration and the command-line device options:
 * Firecracker's names, and one message naming the field for each mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/device_kind.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "vmm/config.h"
#include "vmm/config_args.h"

/* A kind's k-th device's settings, found the way the VMM finds them. */
static void *nth(const struct vm_config *cfg, const char *section, int k)
{
	return config_device_nth(cfg, device_kind_by_section(section), k);
}
#define DRIVE(cfg, k) ((struct drive_config *)nth(cfg, "drives", k))
#define NET(cfg, k) ((struct net_config *)nth(cfg, "network-interfaces", k))
#define VSOCK(cfg) ((struct vsock_config *)nth(cfg, "vsock", 0))
#define BALLOON(cfg) ((struct balloon_config *)nth(cfg, "balloon", 0))
#define ENTROPY(cfg) ((struct entropy_config *)nth(cfg, "entropy", 0))

static int count(const struct vm_config *cfg, const char *section)
{
	return config_device_count(cfg, device_kind_by_section(section));
}

/* --OPTION ARG, as argon-vmm's command line gives it. */
static int arg(struct vm_config *cfg, const char *option, const char *value, char *err,
	       size_t errlen)
{
	return config_arg_device(cfg, device_kind_by_option(option), value, err, errlen);
}

static void drives_and_interfaces_are_read(void **state)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256] = "";
	const char *json =
		"{\"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/img\", "
		"\"is_root_device\": true, \"is_read_only\": true, \"cache_type\": \"Unsafe\", "
		"\"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 1000}, "
		"\"ops\": {\"size\": 100, \"one_time_burst\": 50, \"refill_time\": 100}}}], "
		"\"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
		"\"guest_mac\": \"AA:FC:00:00:00:01\"}], "
		"\"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\"}, "
		"\"balloon\": {\"amount_mib\": 64, \"deflate_on_oom\": true, "
		"\"stats_polling_interval_s\": 1}, \"entropy\": {}}";
	assert_int_equal(config_load_string(&cfg, "vm.json", json, err, sizeof(err)), 0);
	assert_int_equal(count(&cfg, "drives"), 1);
	assert_string_equal(DRIVE(&cfg, 0)->drive_id, "rootfs");
	assert_true(DRIVE(&cfg, 0)->is_read_only);
	assert_int_equal(DRIVE(&cfg, 0)->cache_type, DRIVE_CACHE_UNSAFE);
	assert_int_equal(DRIVE(&cfg, 0)->rate_limiter.bandwidth.size, 1048576);
	assert_int_equal(DRIVE(&cfg, 0)->rate_limiter.ops.one_time_burst, 50);
	assert_int_equal(count(&cfg, "network-interfaces"), 1);
	assert_string_equal(NET(&cfg, 0)->host_dev_name, "tap0");
	assert_true(NET(&cfg, 0)->has_guest_mac);
	assert_int_equal(NET(&cfg, 0)->guest_mac[1], 0xfc);
	assert_int_equal(NET(&cfg, 0)->tap_fd, -1);
	assert_non_null(VSOCK(&cfg));
	assert_int_equal(VSOCK(&cfg)->guest_cid, 3);
	assert_non_null(BALLOON(&cfg));
	assert_int_equal(BALLOON(&cfg)->amount_mib, 64);
	assert_non_null(ENTROPY(&cfg));
	config_free(&cfg);
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

static void device_mistakes_name_the_field(void **state)
{
	expect_error("{\"drives\": {}}", "vm.json: drives: expected an array");
	expect_error("{\"drives\": [{\"drive_id\": \"a\"}]}",
		     "vm.json: drives[0]: drive_id and path_on_host are required");
	expect_error("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
		     "\"cache_type\": \"Fast\"}]}",
		     "vm.json: drives[0].cache_type: expected \"Writeback\" or \"Unsafe\"");
	expect_error("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
		     "\"rate_limiter\": {\"bandwidth\": {\"size\": -1}}}]}",
		     "vm.json: drives[0].rate_limiter.bandwidth.size: -1 is out of range, "
		     "expected 0..9223372036854775807");
	expect_error("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/x\", "
		     "\"rate_limiter\": {\"bandwidth\": {\"size\": 10}}}]}",
		     "vm.json: drives[0].rate_limiter.bandwidth.refill_time: must be above 0 "
		     "when size is set");
	expect_error("{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t\", "
		     "\"guest_mac\": \"zz\"}]}",
		     "vm.json: network-interfaces[0].guest_mac: expected a MAC address like "
		     "\"AA:FC:00:00:00:01\"");
	expect_error("{\"network-interfaces\": [{\"iface_id\": \"e\", \"host_dev_name\": \"t\", "
		     "\"guest_mac\": \"01:00:00:00:00:01\"}]}",
		     "vm.json: network-interfaces[0].guest_mac: a multicast address cannot be a "
		     "guest's MAC");
	expect_error("{\"vsock\": {\"guest_cid\": 2, \"uds_path\": \"/v\"}}",
		     "vm.json: vsock.guest_cid: 2 is out of range, expected 3..4294967294");
	expect_error("{\"vsock\": {\"guest_cid\": 3}}",
		     "vm.json: vsock: guest_cid and uds_path are required");
	expect_error("{\"balloon\": {\"amount\": 3}}",
		     "vm.json: balloon.amount: unknown field (expected amount_mib, deflate_on_oom, "
		     "stats_polling_interval_s)");
}

static void command_line_devices(void **state)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256] = "";
	assert_int_equal(arg(&cfg, "disk", "/img/a.raw,ro,bw=10M,ops=500", err, sizeof(err)), 0);
	assert_int_equal(arg(&cfg, "disk", "/img/b.raw,id=data,cache=unsafe", err, sizeof(err)), 0);
	assert_string_equal(DRIVE(&cfg, 0)->drive_id, "disk0");
	assert_true(DRIVE(&cfg, 0)->is_root_device);
	assert_true(DRIVE(&cfg, 0)->is_read_only);
	assert_int_equal(DRIVE(&cfg, 0)->rate_limiter.bandwidth.size, 10 << 20);
	assert_int_equal(DRIVE(&cfg, 0)->rate_limiter.bandwidth.refill_time_ms, 1000);
	assert_string_equal(DRIVE(&cfg, 1)->drive_id, "data");
	assert_false(DRIVE(&cfg, 1)->is_root_device);
	assert_int_equal(DRIVE(&cfg, 1)->cache_type, DRIVE_CACHE_UNSAFE);
	assert_int_equal(arg(&cfg, "net", "tap=argon0,mac=AA:FC:00:00:00:02", err, sizeof(err)), 0);
	assert_string_equal(NET(&cfg, 0)->iface_id, "eth0");
	assert_int_equal(NET(&cfg, 0)->guest_mac[5], 2);
	assert_int_equal(arg(&cfg, "vsock", "cid=7,uds=/tmp/v", err, sizeof(err)), 0);
	assert_int_equal(VSOCK(&cfg)->guest_cid, 7);
	assert_int_equal(arg(&cfg, "balloon", "256,deflate-on-oom,stats=2", err, sizeof(err)), 0);
	assert_int_equal(BALLOON(&cfg)->amount_mib, 256);
	assert_int_equal(BALLOON(&cfg)->stats_polling_interval_s, 2);
	assert_int_equal(arg(&cfg, "rng", NULL, err, sizeof(err)), 0);
	assert_non_null(ENTROPY(&cfg));
	config_free(&cfg);
}

static void command_line_mistakes(void **state)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256] = "";
	assert_int_equal(arg(&cfg, "disk", "/a,rw", err, sizeof(err)), -1);
	assert_string_equal(err, "--disk: 'rw': expected ro, id=NAME, cache=writeback|unsafe, "
				 "bw=N or ops=N");
	assert_int_equal(arg(&cfg, "disk", "/a,bw=fast", err, sizeof(err)), -1);
	assert_string_equal(err, "--disk: 'bw=fast': expected a positive size");
	assert_int_equal(arg(&cfg, "net", "mac=AA:FC:00:00:00:02", err, sizeof(err)), -1);
	assert_string_equal(err, "--net: 'mac=AA:FC:00:00:00:02': tap=NAME is required");
	assert_int_equal(arg(&cfg, "vsock", "cid=2,uds=/v", err, sizeof(err)), -1);
	assert_string_equal(err, "--vsock: 'cid=2': expected cid=N (3 or more) or uds=PATH");
	assert_int_equal(arg(&cfg, "balloon", "lots", err, sizeof(err)), -1);
	assert_string_equal(err, "--balloon: 'lots': expected MIB[,deflate-on-oom][,stats=S]");
	assert_int_equal(count(&cfg, "drives"), 0);
	assert_int_equal(count(&cfg, "network-interfaces"), 0);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(drives_and_interfaces_are_read),
		cmocka_unit_test(device_mistakes_name_the_field),
		cmocka_unit_test(command_line_devices),
		cmocka_unit_test(command_line_mistakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
