/* The JSON configuration: Firecracker's field names, and one clear message per
 * mistake naming the file and field (golden strings: a changed message is a
 * visible change). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/config.h"

static void firecracker_fields_are_read(void **state)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256] = "";
	const char *json = "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"initrd_path\": "
			   "\"/i\", \"boot_args\": \"console=ttyS0\"}, \"machine-config\": "
			   "{\"vcpu_count\": 4, \"mem_size_mib\": 2048, \"smt\": false}}";
	assert_int_equal(config_load_string(&cfg, "vm.json", json, err, sizeof(err)), 0);
	assert_string_equal(cfg.kernel_path, "/k");
	assert_string_equal(cfg.initrd_path, "/i");
	assert_string_equal(cfg.cmdline, "console=ttyS0");
	assert_int_equal(cfg.vcpus, 4);
	assert_int_equal(cfg.mem_mib, 2048);
	config_free(&cfg);
}

static void defaults_hold_when_fields_are_absent(void **state)
{
	struct vm_config cfg;
	config_init(&cfg);
	char err[256];
	assert_int_equal(config_load_string(&cfg, "vm.json", "{}", err, sizeof(err)), 0);
	assert_int_equal(cfg.vcpus, CONFIG_DEFAULT_VCPUS);
	assert_int_equal(cfg.mem_mib, CONFIG_DEFAULT_MEM_MIB);
	assert_null(cfg.kernel_path);
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

static void mistakes_name_the_file_and_field(void **state)
{
	expect_error("{\"machine-config\": {\"vcpu_count\": 0}}",
		     "vm.json: machine-config.vcpu_count: 0 is out of range, expected 1..32");
	expect_error("{\"machine-config\": {\"vcpu_count\": -2}}",
		     "vm.json: machine-config.vcpu_count: -2 is out of range, expected 1..32");
	expect_error("{\"machine-config\": {\"mem_size_mib\": 0}}",
		     "vm.json: machine-config.mem_size_mib: 0 is out of range, expected "
		     "16..1073741824");
	expect_error("{\"machine-config\": {\"vcpu_count\": \"2\"}}",
		     "vm.json: machine-config.vcpu_count: expected an integer");
	expect_error("{\"machine-config\": {\"cpus\": 2}}",
		     "vm.json: machine-config.cpus: unknown field (expected vcpu_count, "
		     "mem_size_mib)");
	expect_error("{\"boot-source\": {\"kernel_image_path\": 7}}",
		     "vm.json: boot-source.kernel_image_path: expected a string");
	expect_error("{\"boot-source\": {\"kernel\": \"/k\"}}",
		     "vm.json: boot-source.kernel: unknown field (expected kernel_image_path, "
		     "initrd_path, boot_args)");
	expect_error("{\"dtives\": []}",
		     "vm.json: dtives: unknown section (expected boot-source, machine-config, drives, "
		     "network-interfaces, vsock, entropy, balloon, logger, metrics)");
	expect_error("[]", "vm.json: expected a JSON object at the top level");
	expect_error("{\"boot-source\": 1}", "vm.json: boot-source: expected an object");
}

static void broken_json_reports_line_and_column(void **state)
{
	expect_error("{\n  \"boot-source\": {,}\n}",
		     "vm.json: line 2 column 19: string or '}' expected near ','");
	expect_error("{\"a\": 1, \"a\": 2}", "vm.json: line 1 column 12: duplicate object key near '\"a\"'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(firecracker_fields_are_read),
		cmocka_unit_test(defaults_hold_when_fields_are_absent),
		cmocka_unit_test(mistakes_name_the_file_and_field),
		cmocka_unit_test(broken_json_reports_line_and_column),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
