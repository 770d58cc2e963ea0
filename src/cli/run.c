/* argon run: build argon-vmm's command line from cloud-style options and run it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "devices/device_kind.h"
#include "vmm/config.h"
#include "vmm/vm.h"

#define MAX_VMM_ARGS 64
#define MAX_DEVICE_ARGS 40

struct run_options {
	const char *vcpus, *memory, *kernel, *initrd, *cmdline;
	bool timings, verbose;
	char *guest_command; /* joined words after "--", or NULL */
	/* Device options passed to argon-vmm as they are ("--disk", "PATH,ro", ...). */
	const char *device_args[MAX_DEVICE_ARGS];
	int ndevice_args;
};

#define STR(x) #x
#define XSTR(x) STR(x)

static void usage(FILE *out)
{
	fputs("usage: argon run [OPTIONS] [-- COMMAND ARGS...]\n"
	      "Boots a VM. With no COMMAND, the default guest (argon-guest) shows its prompt:\n"
	      "on a terminal Ctrl-] quits; from a pipe or file the commands run and the VM\n"
	      "ends with the input. With COMMAND, the guest runs it, prints its output, and\n"
	      "argon exits with its status.\n\n"
	      "  --vcpus N         vCPUs, 1.." XSTR(VM_MAX_VCPUS) " (default "
	      XSTR(CONFIG_DEFAULT_VCPUS) ")\n"
	      "  --memory SIZE     guest memory, " XSTR(VM_MIN_MEM_MIB) " MiB up to the host's "
	      "RAM (default " XSTR(CONFIG_DEFAULT_MEM_MIB) " MiB);\n"
	      "                    MiB, or with a suffix: 512M, 2G\n"
	      "  --kernel PATH     kernel image: bzImage or ELF (default: argon-guest)\n"
	      "  --initrd PATH     initial ramdisk (default: none)\n"
	      "  --cmdline STR     appended to the kernel command line \"console=ttyS0\"\n",
	      out);
	for (int k = 0; device_kinds[k]; k++) {
		const struct device_kind *kind = device_kinds[k];
		char opt[96];
		snprintf(opt, sizeof(opt), "--%s%s%s", kind->option,
			 kind->option_arg_optional ? "" : " ", kind->option_usage);
		if (kind->option_help)
			fprintf(out, "  %-17s %s\n", opt, kind->option_help);
		else
			fprintf(out, "  %s\n", opt);
	}
	fputs("                    (bw=, ops=: per second, with K, M or G; devices: none by "
	      "default)\n"
	      "  --timings         print boot timings and exit counts\n"
	      "  --verbose         log what argon-vmm does, with times and sources\n"
	      "  --help            this text\n\n"
	      "Exit status: the guest's (0 powered off, 1..63 its command's), or argon-vmm's\n"
	      "(64 bad option, 65 bad image, 66 missing file, 69 no KVM, 71 host resources,\n"
	      "80..83 the guest or KVM failed, 84 stopped by a signal); see the README.\n",
	      out);
}

static char *join_words(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = calloc(1, len);
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}


/* Keeps "--name=value" for argon-vmm to parse (one parser for both programs). */
static int add_device_arg(struct run_options *o, int c, const char *value)
{
	if (o->ndevice_args == MAX_DEVICE_ARGS) {
		log_error("too many device options (at most %d)", MAX_DEVICE_ARGS);
		return -1;
	}
	const char *name = device_kinds[c - DEVICE_OPTION(0)]->option;
	char *arg;
	if (asprintf(&arg, "--%s%s%s", name, value ? "=" : "", value ? value : "") < 0)
		return -1;
	o->device_args[o->ndevice_args++] = arg;
	return 0;
}

/* argon run's own options, then each device kind's (passed on to argon-vmm). */
static void build_options(struct option *longopts, size_t max)
{
	static const struct option own[] = {
		{ "vcpus", required_argument, NULL, 'n' },  { "memory", required_argument, NULL, 'm' },
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'a' }, { "timings", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },	    { "help", no_argument, NULL, 'h' },
	};
	size_t n = 0;
	for (; n < sizeof(own) / sizeof(own[0]); n++)
		longopts[n] = own[n];
	device_kinds_add_options(longopts, n, max);
}

/* getopt's own complaints name the program "run"; these name the option typed. */
static int bad_option(int c, char **argv)
{
	const char *typed = argv[optind - 1];
	if (c == ':')
		log_error("%s needs a value (see 'argon run --help')", typed);
	else
		log_error("unknown option '%s' (see 'argon run --help')", typed);
	return -1;
}

/* The guest command after "--", joined for argon.cmd="...". */
static int take_guest_command(struct run_options *o, int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	o->guest_command = join_words(argc - optind, argv + optind);
	if (!o->guest_command)
		return -1;
	/* The guest reads argon.cmd="..." and has no way to escape a quote. */
	if (strchr(o->guest_command, '"')) {
		log_error("guest command: '\"' cannot be passed on the kernel command line");
		return -1;
	}
	return 0;
}

/* Returns 0, -1 (a message was printed), or 1 when --help was printed. */
static int parse(int argc, char **argv, struct run_options *o)
{
	struct option longopts[32];
	build_options(longopts, sizeof(longopts) / sizeof(longopts[0]));
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': o->vcpus = optarg; break;
		case 'm': o->memory = optarg; break;
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'a': o->cmdline = optarg; break;
		case 't': o->timings = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); return 1;
		case '?':
		case ':': return bad_option(c, argv);
		default:
			if (add_device_arg(o, c, optarg))
				return -1;
			break;
		}
	}
	return take_guest_command(o, argc, argv);
}

static char *build_cmdline(const struct run_options *o)
{
	const char *extra = o->cmdline ? o->cmdline : "";
	const char *cmd = o->guest_command;
	size_t len = strlen("console=ttyS0 ") + strlen(extra) + (cmd ? strlen(cmd) : 0) + 32;
	char *s = malloc(len);
	if (!s)
		return NULL;
	if (cmd)
		snprintf(s, len, "console=ttyS0 argon.cmd=\"%s\"%s%s", cmd, *extra ? " " : "", extra);
	else
		snprintf(s, len, "console=ttyS0%s%s", *extra ? " " : "", extra);
	return s;
}

static void export_start_time(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu",
		 (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
	setenv("ARGON_START_NS", buf, 1);
}

/* argon-vmm's argv; the strings stay owned by o and the callers. */
static void build_vmm_args(const struct run_options *o, const char *vmm, const char *kernel,
			   const char *cmdline, const char *args[MAX_VMM_ARGS])
{
	int n = 0;
	args[n++] = vmm;
	/* First, so that the messages about the options that follow are for people too,
	 * unless --verbose asks for the full log lines. */
	if (o->verbose) { args[n++] = "--log-level"; args[n++] = "info"; }
	else { args[n++] = "--log-format"; args[n++] = "plain"; }
	args[n++] = "--kernel";
	args[n++] = kernel;
	args[n++] = "--cmdline";
	args[n++] = cmdline;
	if (o->vcpus) { args[n++] = "--vcpus"; args[n++] = o->vcpus; }
	if (o->memory) { args[n++] = "--memory"; args[n++] = o->memory; }
	if (o->initrd) { args[n++] = "--initrd"; args[n++] = o->initrd; }
	if (o->timings) args[n++] = "--timings";
	for (int i = 0; i < o->ndevice_args; i++)
		args[n++] = o->device_args[i];
	args[n] = NULL;
}

/* With a guest command the console is passed on as it is (Ctrl-C stops the VM); with
 * none it is the guest's prompt: a terminal goes raw, other input ends with Ctrl-D. */
static enum console_mode console_mode(const struct run_options *o)
{
	if (o->guest_command)
		return CONSOLE_PLAIN;
	return isatty(STDIN_FILENO) ? CONSOLE_RAW : CONSOLE_EOT;
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = { 0 };
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : EXIT_USAGE;
	log_set_plain(!o.verbose);
	char *vmm = cli_sibling_path("argon-vmm", "ARGON_VMM");
	char *guest = o.kernel ? NULL : cli_sibling_path("argon-guest", "ARGON_GUEST");
	char *cmdline = build_cmdline(&o);
	if (!vmm || (!o.kernel && !guest) || !cmdline)
		return EXIT_HOST_RESOURCE;
	const char *args[MAX_VMM_ARGS];
	build_vmm_args(&o, vmm, o.kernel ? o.kernel : guest, cmdline, args);
	export_start_time();
	int status = console_run((char *const *)args, console_mode(&o));
	free(vmm);
	free(guest);
	free(cmdline);
	free(o.guest_command);
	for (int i = 0; i < o.ndevice_args; i++)
		free((char *)o.device_args[i]);
	return status;
}
