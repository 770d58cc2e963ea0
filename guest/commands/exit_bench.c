/* exit-bench [N]: the cost of one round trip to the VMM for port I/O, MMIO
 * and a hypercall, N of each. The probe port and page are never emulated by
 * anything (src/arch/x86/layout.h), so each access is a full exit to user
 * space; the hypercall has no handler, so it is the cheapest kernel exit. */
#include <stdbool.h>

#include "commands/commands.h"
#include "cpu.h"
#include "idt.h"
#include "power.h"
#include "printf.h"
#include "pvm.h"
#include "string.h"
#include "timer.h"

#define PORT_EXIT_PROBE 0x612	      /* LAYOUT_PORT_EXIT_PROBE */
#define MMIO_EXIT_PROBE 0xcffff000ull /* LAYOUT_EXIT_PROBE_MMIO */
#define KVM_HC_UNKNOWN 0x7fff
#define DEFAULT_N 1000

typedef bool (*probe_fn)(void);

static bool probe_pio(void)
{
	inb(PORT_EXIT_PROBE);
	return true;
}

static bool probe_mmio(void)
{
	mmio_read32(MMIO_EXIT_PROBE);
	return true;
}

static bool probe_pvm_hypercall(void)
{
	pvm_hypercall(PVM_HC_UNKNOWN, 0, 0);
	return true;
}

/* KVM patches vmcall <-> vmmcall for the wrong vendor, but a non-KVM host
 * may raise #UD: the fixup turns that into "not available". */
static bool probe_vmcall(void)
{
	long nr = KVM_HC_UNKNOWN;
	int err = 0;

	__asm__ volatile("1: vmcall\n2:\n" FIXUP_ENTRY("1b", "3f") ".pushsection .text.fixup, \"ax\"\n"
			 "3: movl $-1, %1\njmp 2b\n.popsection\n"
			 : "+a"(nr), "+r"(err) : : "memory");
	return !err;
}

static bool probe_vmmcall(void)
{
	long nr = KVM_HC_UNKNOWN;
	int err = 0;

	__asm__ volatile("1: vmmcall\n2:\n" FIXUP_ENTRY("1b", "3f") ".pushsection .text.fixup, \"ax\"\n"
			 "3: movl $-1, %1\njmp 2b\n.popsection\n"
			 : "+a"(nr), "+r"(err) : : "memory");
	return !err;
}

static probe_fn hypercall_probe(void)
{
	uint32_t r[4];

	if (pvm_mode)
		return probe_pvm_hypercall;
	if (!hypervisor_is_kvm())
		return 0;
	guest_cpuid(0, 0, r);
	return !memcmp(&r[1], "Genu", 4) ? probe_vmcall : probe_vmmcall;
}

/* Average ns per call in tenths, or -1 when the probe is unavailable. */
static int64_t time_probe(probe_fn fn, uint64_t n)
{
	uint64_t t0;

	if (!fn || !fn())
		return -1;
	t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++)
		fn();
	return tsc_to_ns((rdtsc() - t0) * 10 / n);
}

static void print_ns(const char *key, int64_t v10)
{
	printf(" %s ", key);
	if (v10 < 0)
		printf("n/a");
	else
		print_tenths(v10);
}

static int exit_bench(int argc, char **argv)
{
	int64_t pio, mmio, hc;
	uint64_t n;

	if (arg_count(argc, argv, 1, DEFAULT_N, 10000000, &n))
		return STATUS_USAGE;
	pio = time_probe(probe_pio, n);
	mmio = time_probe(probe_mmio, n);
	hc = time_probe(hypercall_probe(), n);
	printf("exit-bench:");
	print_ns("pio_ns", pio);
	print_ns("mmio_ns", mmio);
	print_ns("hypercall_ns", hc);
	printf("\n");
	return STATUS_OK;
}

const struct command cmd_exit_bench = { "exit-bench", "[N]", "cost of PIO, MMIO, hypercall exits",
					exit_bench };
