/* info: the facts tests parse, one "key: value" per line. */
#include "acpi.h"
#include "commands/commands.h"
#include "main.h"
#include "memmap.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"
#include "smp.h"
#include "timer.h"

static int info(int argc, char **argv)
{
	uint64_t mib = (memmap_ram_bytes() + (1 << 19)) >> 20;
	uint64_t us = tsc_to_ns(tsc_at_ready - tsc_at_boot) / 1000;

	(void)argv;
	if (argc > 1) {
		printf("info: takes no arguments\n");
		return STATUS_USAGE;
	}
	printf("cpus_online: %d\n", cpus_online);
	printf("cpus_present: %d\n", acpi.ncpus ? acpi.ncpus : 1);
	printf("memory_mib: %lu\n", mib);
	printf("mode: %s\n", pvm_mode ? "pvm" : "hardware");
	printf("tsc_khz: %lu\n", tsc_khz);
	printf("boot_ms: %lu.%03lu\n", us / 1000, us % 1000);
	return STATUS_OK;
}

const struct command cmd_info = { "info", "", "vCPUs, memory, mode, TSC, boot time", info };
