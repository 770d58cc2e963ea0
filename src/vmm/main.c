/* argon-vmm: one process per VM. The timeline is visible here: block host signals,
 * parse the configuration, set up logging and metrics, open the API socket, then
 * build and run the VM (at once when a kernel was given, else when the API says
 * InstanceStart: vmm_state.c), wait for the guest or a signal, tear down. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "api/server.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "common/terminal.h"
#include "common/version.h"
#include "devices/device_kind.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/vm.h"
#include "vmm/vcpu.h"
#include "vmm/vmm_state.h"

struct options {
	struct vmm *vmm;
	const char *api_sock;
	char mem_source[PATH_MAX + 64]; /* what set the memory size, for messages */
};

#define STR(x) #x
#define XSTR(x) STR(x)

static void usage(FILE *out)
{
	fputs("usage: argon-vmm [--config FILE] [--kernel PATH] [--initrd PATH] [--cmdline STR]\n"
	      "                 [--vcpus N] [--memory SIZE] [--timings] [--log-level LEVEL]\n"
	      "                 [--log-format plain|full] [--api-sock PATH] [--id ID]\n"
	      "                 [--log-path PATH] [--metrics-path PATH]\n"
	      "                 [--restore SNAPSHOT --mem-file MEM]\n",
	      out);
	for (int k = 0; device_kinds[k]; k++) {
		const struct device_kind *kind = device_kinds[k];
		fprintf(out, "                 [--%s%s%s]%s\n", kind->option,
			kind->option_arg_optional ? "" : " ", kind->option_usage,
			kind->id_field ? "..." : "");
	}
	fputs("Boots one VM on /dev/kvm; the guest's serial console is stdin/stdout (a terminal\n"
	      "is put in raw mode: every key, Ctrl-C too, goes to the guest).\n"
	      "  --vcpus N         1.." XSTR(VM_MAX_VCPUS) " (default " XSTR(CONFIG_DEFAULT_VCPUS) ")\n"
	      "  --memory SIZE     " XSTR(VM_MIN_MEM_MIB) " MiB up to the host's RAM (default "
	      XSTR(CONFIG_DEFAULT_MEM_MIB) " MiB): MiB, or 512M, 2G\n"
	      "  --cmdline STR     the kernel command line (default \"" CONFIG_DEFAULT_CMDLINE "\")\n"
	      "  --log-level L     error, warn, info or debug (default warn)\n"
	      "  --log-format F    full (time, level, function; the default) or plain (for people)\n"
	      "  --id ID           1 to " XSTR(VMM_ID_MAX) " letters, digits, '-', '_' (default "
	      "anonymous-instance)\n"
	      "Options given after --config override the file's values. Rates (bw=, ops=) are\n"
	      "per second; sizes take K, M or G. With --api-sock and no kernel, argon-vmm\n"
	      "waits for its configuration and InstanceStart on the API (Firecracker's REST API).\n"
	      "--restore runs the VM of a snapshot (PUT /snapshot/create) on from where it was,\n"
	      "its memory mapped from MEM.\n",
	      out);
}

static int parse_number(const char *opt, const char *arg, long long min, long long max,
			long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno || *end || end == arg || v < min || v > max) {
		log_error("%s '%s': expected a whole number from %lld to %lld", opt, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}


static uint64_t host_mib(void)
{
	struct sysinfo si;
	return sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit >> 20 : 0;
}

/* --memory: MiB, or a size with K, M, G or T that is a whole number of MiB. */
static int parse_memory(struct options *o, const char *arg)
{
	size_t len = strlen(arg);
	bool suffixed = len && strchr("KMGTkmgt", arg[len - 1]);
	uint64_t v = 0;
	char *end;
	errno = 0;
	bool ok = suffixed ? config_arg_size(arg, &v) == 0 && v % (1 << 20) == 0
			   : (v = strtoull(arg, &end, 10), !errno && *end == '\0' && end != arg &&
			      arg[0] >= '0' && arg[0] <= '9');
	v = suffixed ? v >> 20 : v;
	if (!ok || v < VM_MIN_MEM_MIB || v > (1ULL << 30)) {
		log_error("--memory '%s': expected a size from %d MiB up to the host's memory, in "
			  "MiB or with a suffix (512M, 2G)", arg, VM_MIN_MEM_MIB);
		return -1;
	}
	o->vmm->cfg.mem_mib = v;
	snprintf(o->mem_source, sizeof(o->mem_source), "--memory '%s'", arg);
	return 0;
}

/* --config FILE: a file that cannot be read ends with 66, bad contents with 64. */
static int load_config(struct options *o, const char *path)
{
	char err[512];
	uint64_t mem = o->vmm->cfg.mem_mib;
	int rc = config_load_file(&o->vmm->cfg, path, err, sizeof(err));
	if (rc) {
		log_error("--config %s", err);
		return rc == -EINVAL ? EXIT_USAGE : EXIT_NO_FILE;
	}
	if (o->vmm->cfg.mem_mib != mem)
		snprintf(o->mem_source, sizeof(o->mem_source), "%s: machine-config.mem_size_mib",
			 path);
	return 0;
}

static int apply_device_option(struct options *o, int c, const char *arg)
{
	char err[512];
	int rc = config_arg_device(&o->vmm->cfg, device_kinds[c - DEVICE_OPTION(0)], arg, err,
				   sizeof(err));
	if (rc)
		log_error("%s", err);
	return rc;
}

/* Firecracker's --id: names the instance in GET / (letters, digits, '-', '_'). */
static int set_id(struct vmm *v, const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > VMM_ID_MAX || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
						       "QRSTUVWXYZ0123456789-_") != len) {
		log_error("--id '%s': expected 1 to %d letters, digits, '-' or '_'", id, VMM_ID_MAX);
		return -1;
	}
	memcpy(v->id, id, len + 1);
	return 0;
}

/* Returns 0, -1 (a bad value: 64), or an exit status; a message was logged. */
static int apply_option(struct options *o, int c, const char *arg)
{
	long long v;
	switch (c) {
	case 'c':
		return load_config(o, arg);
	case 'k':
		return config_set_string(&o->vmm->cfg.kernel_path, arg);
	case 'i':
		return config_set_string(&o->vmm->cfg.initrd_path, arg);
	case 'a':
		return config_set_string(&o->vmm->cfg.cmdline, arg);
	case 'n':
		if (parse_number("--vcpus", arg, 1, VM_MAX_VCPUS, &v))
			return -1;
		o->vmm->cfg.vcpus = (int)v;
		return 0;
	case 'm':
		return parse_memory(o, arg);
	case 't':
		o->vmm->print_timings = true;
		return 0;
	case 's':
		o->api_sock = arg;
		return 0;
	case 'I':
		return set_id(o->vmm, arg);
	case 'L':
		return config_set_string(&o->vmm->cfg.logger.log_path, arg);
	case 'M':
		return config_set_string(&o->vmm->cfg.metrics.metrics_path, arg);
	case 'R':
		return config_set_string(&o->vmm->restore.state_path, arg);
	case 'F':
		return config_set_string(&o->vmm->restore.mem_path, arg);
	case 'l':
		if (log_level_parse(arg) < 0) {
			log_error("--log-level '%s': expected error, warn, info or debug", arg);
			return -1;
		}
		log_set_level((enum log_level)log_level_parse(arg));
		return 0;
	case 'P':
		if (strcmp(arg, "plain") != 0 && strcmp(arg, "full") != 0) {
			log_error("--log-format '%s': expected plain or full", arg);
			return -1;
		}
		log_set_plain(strcmp(arg, "plain") == 0);
		return 0;
	default:
		return c >= DEVICE_OPTION(0) ? apply_device_option(o, c, arg) : -1;
	}
}

/* The VMM's own options, then one per device kind. */
static void build_options(struct option *longopts, size_t max)
{
	static const struct option own[] = {
		{ "config", required_argument, NULL, 'c' }, { "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' }, { "cmdline", required_argument, NULL, 'a' },
		{ "vcpus", required_argument, NULL, 'n' },  { "memory", required_argument, NULL, 'm' },
		{ "timings", no_argument, NULL, 't' },	    { "log-level", required_argument, NULL, 'l' },
		{ "api-sock", required_argument, NULL, 's' }, { "id", required_argument, NULL, 'I' },
		{ "log-path", required_argument, NULL, 'L' },
		{ "metrics-path", required_argument, NULL, 'M' },
		{ "restore", required_argument, NULL, 'R' }, { "mem-file", required_argument, NULL, 'F' },
		{ "log-format", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },	    { "version", no_argument, NULL, 'V' },
	};
	size_t n = 0;
	for (; n < sizeof(own) / sizeof(own[0]); n++)
		longopts[n] = own[n];
	device_kinds_add_options(longopts, n, max);
}

/* A restored VM is the snapshot's: nothing that builds a VM goes with it. */
static int check_restore_args(struct vmm *v)
{
	const struct vm_config *c = &v->cfg;
	if (!v->restore.state_path || !v->restore.mem_path) {
		log_error("--restore SNAPSHOT and --mem-file MEM go together");
		return -1;
	}
	if (c->kernel_path || c->initrd_path || c->cmdline || c->ndevices ||
	    c->vcpus != CONFIG_DEFAULT_VCPUS || c->mem_mib != CONFIG_DEFAULT_MEM_MIB) {
		log_error("--restore: the VM comes from the snapshot; --kernel, --initrd, --cmdline, "
			  "--vcpus, --memory and devices (or a --config giving them) do not apply");
		return -1;
	}
	v->restore.resume = true;
	return 0;
}

/* The options, in order (later ones override --config's values). Returns 0 or the
 * exit status after one message. */
static int parse_args(int argc, char **argv, struct options *o)
{
	struct option longopts[32];
	build_options(longopts, sizeof(longopts) / sizeof(longopts[0]));
	int c;
	opterr = 0; /* getopt's messages name the program by its path: ours name the option */
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == 'h' || c == 'V') {
			c == 'h' ? usage(stdout) : (void)puts("argon-vmm " ARGON_VERSION);
			exit(EXIT_GUEST_OK);
		}
		if (c == '?' || c == ':') {
			log_error(c == ':' ? "%s needs a value" : "unknown option '%s' (see --help)",
				  argv[optind - 1]);
			return EXIT_USAGE;
		}
		int rc = apply_option(o, c, optarg);
		if (rc)
			return rc < 0 ? EXIT_USAGE : rc;
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->vmm->restore.state_path || o->vmm->restore.mem_path)
		return check_restore_args(o->vmm) ? EXIT_USAGE : 0;
	if (!o->vmm->cfg.kernel_path && !o->api_sock) {
		log_error("no kernel: give --kernel PATH or boot-source.kernel_image_path in --config "
			  "(or --api-sock PATH to configure it there, or --restore SNAPSHOT)");
		return EXIT_USAGE;
	}
	uint64_t host = host_mib();
	if (host && o->vmm->cfg.mem_mib > host) {
		log_error("%s: %llu MiB is more than this host's %llu MiB",
			  o->mem_source[0] ? o->mem_source : "memory",
			  (unsigned long long)o->vmm->cfg.mem_mib, (unsigned long long)host);
		return EXIT_USAGE;
	}
	return 0;
}

static int block_host_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed console must not kill the VMM */
	return signalfd(-1, &set, SFD_CLOEXEC);
}

/* Logging and metrics as the configuration says. */
static int start_observing(struct vmm *v)
{
	char err[512];
	if (vmm_apply_logger(v, &v->cfg.logger, err, sizeof(err)) ||
	    (v->cfg.metrics.metrics_path &&
	     vmm_apply_metrics(v, &v->cfg.metrics, err, sizeof(err)))) {
		log_error("%s", err);
		return EXIT_NO_FILE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t start = timings_process_start();
	log_init("argon-vmm", LOG_WARN);
	int sigfd = block_host_signals(); /* before any thread, so all inherit the mask */
	struct vmm v;
	struct options o = { .vmm = &v };
	if (sigfd < 0 || vmm_init(&v, start)) {
		log_error("signalfd/eventfd: %s", strerror(errno));
		return EXIT_HOST_RESOURCE;
	}
	int status = parse_args(argc, argv, &o);
	if (!status && vcpu_install_kick_signal()) {
		log_error("cannot install the vCPU kick signal: %s", strerror(errno));
		status = EXIT_INTERNAL;
	}
	if (!status)
		status = start_observing(&v);
	/* Decided before the API can change the configuration: a kernel given at start-up
	 * boots at once; without one the API configures and starts the VM. */
	bool boot_now = v.cfg.kernel_path != NULL || v.restore.state_path != NULL;
	struct api_server *api = NULL;
	if (!status && o.api_sock && api_server_start(&v, o.api_sock, &api))
		status = EXIT_NO_FILE;
	/* From here lines go through the writer thread, so a slow destination never
	 * blocks a vCPU (started after the socket: clients can connect meanwhile). */
	if (!status && log_start_writer())
		log_warn("no log writer thread: lines are written directly");
	if (!status)
		status = vmm_run(&v, sigfd, boot_now);
	pthread_mutex_lock(&v.lock);
	metrics_flush(&v); /* the last line, as Firecracker writes at exit */
	pthread_mutex_unlock(&v.lock);
	api_server_stop(api);
	vmm_destroy(&v);
	terminal_restore(); /* as the console found it (raw since the VM was built) */
	close(sigfd);
	log_stop_writer();
	return status;
}
