/* argon-vmm: one process per VM. The timeline is visible here: parse the
 * configuration, open /dev/kvm and build the VM, attach devices, load the kernel,
 * start the event loop and the vCPUs, wait for the guest or a signal, tear down. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/exit_status.h"
#include "common/log.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "devices/virtio_devices.h"
#include "vmm/boot.h"
#include "vmm/config.h"
#include "vmm/config_args.h"
#include "vmm/event_loop.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define ARGON_VERSION "0.1.0"

struct options {
	struct vm_config cfg;
	bool timings;
};

static void usage(FILE *out)
{
	fputs("usage: argon-vmm [--config FILE] [--kernel PATH] [--initrd PATH] [--cmdline STR]\n"
	      "                 [--vcpus N] [--memory MIB] [--timings] [--log-level LEVEL]\n"
	      "                 [--disk PATH[,ro][,id=NAME][,cache=writeback|unsafe][,bw=N][,ops=N]]...\n"
	      "                 [--net tap=NAME[,mac=MAC][,id=NAME][,bw=N][,ops=N]]...\n"
	      "                 [--vsock cid=N,uds=PATH] [--balloon MIB[,deflate-on-oom][,stats=S]]\n"
	      "                 [--rng[=bw=N]]\n"
	      "Boots one VM on /dev/kvm; the guest's serial console is stdin/stdout.\n"
	      "Options given after --config override the file's values. Rates (bw=, ops=) are\n"
	      "per second; sizes take K, M or G.\n",
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

static int apply_device_option(struct options *o, int c, const char *arg)
{
	char err[512];
	int rc = c == 'D' ? config_arg_disk(&o->cfg, arg, err, sizeof(err))
		 : c == 'N' ? config_arg_net(&o->cfg, arg, err, sizeof(err))
		 : c == 'S' ? config_arg_vsock(&o->cfg, arg, err, sizeof(err))
		 : c == 'B' ? config_arg_balloon(&o->cfg, arg, err, sizeof(err))
			    : config_arg_rng(&o->cfg, arg, err, sizeof(err));
	if (rc)
		log_error("%s", err);
	return rc;
}

static int apply_option(struct options *o, int c, const char *arg)
{
	char err[512];
	long long v;
	switch (c) {
	case 'c':
		if (config_load_file(&o->cfg, arg, err, sizeof(err)) == 0)
			return 0;
		log_error("%s", err);
		return -1;
	case 'k':
		return config_set_string(&o->cfg.kernel_path, arg);
	case 'i':
		return config_set_string(&o->cfg.initrd_path, arg);
	case 'a':
		return config_set_string(&o->cfg.cmdline, arg);
	case 'n':
		if (parse_number("--vcpus", arg, 1, VM_MAX_VCPUS, &v))
			return -1;
		o->cfg.vcpus = (int)v;
		return 0;
	case 'm':
		if (parse_number("--memory", arg, VM_MIN_MEM_MIB, 1LL << 30, &v))
			return -1;
		o->cfg.mem_mib = (uint64_t)v;
		return 0;
	case 't':
		o->timings = true;
		return 0;
	case 'D':
	case 'N':
	case 'S':
	case 'B':
	case 'R':
		return apply_device_option(o, c, arg);
	case 'l':
		if (log_level_parse(arg) < 0) {
			log_error("--log-level '%s': expected error, warn, info or debug", arg);
			return -1;
		}
		log_set_level((enum log_level)log_level_parse(arg));
		return 0;
	default:
		return -1;
	}
}

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' }, { "cmdline", required_argument, NULL, 'a' },
		{ "vcpus", required_argument, NULL, 'n' },  { "memory", required_argument, NULL, 'm' },
		{ "timings", no_argument, NULL, 't' },	    { "log-level", required_argument, NULL, 'l' },
		{ "disk", required_argument, NULL, 'D' },   { "net", required_argument, NULL, 'N' },
		{ "vsock", required_argument, NULL, 'S' },  { "balloon", required_argument, NULL, 'B' },
		{ "rng", optional_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },	    { "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'h' || c == 'V') {
			c == 'h' ? usage(stdout) : (void)puts("argon-vmm " ARGON_VERSION);
			exit(EXIT_GUEST_OK);
		}
		if (c == '?' || apply_option(o, c, optarg)) {
			if (c == '?')
				usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->cfg.kernel_path) {
		log_error("no kernel: give --kernel PATH or boot-source.kernel_image_path in --config");
		return -1;
	}
	return 0;
}

static void *event_loop_thread(void *arg)
{
	struct vm *vm = arg;
	pthread_setname_np(pthread_self(), "event-loop");
	if (event_loop_run(vm->loop) < 0)
		vm_request_stop(vm, EXIT_INTERNAL);
	return NULL;
}

static int start_threads(struct vm *vm)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	int err = pthread_create(&vm->loop_thread, NULL, event_loop_thread, vm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_error("event loop thread: %s", strerror(err));
		return EXIT_HOST_RESOURCE;
	}
	vm->loop_running = true;
	for (int i = 0; i < vm->nvcpus; i++) {
		if (vcpu_start(&vm->vcpus[i])) {
			log_error("vCPU %d thread: %s", i, strerror(errno));
			return EXIT_HOST_RESOURCE;
		}
	}
	return 0;
}

/* Blocks until the guest or a device asks to stop, or a host signal arrives. */
static void wait_for_stop(struct vm *vm, int sigfd)
{
	struct pollfd fds[2] = { { .fd = vm->stop_fd, .events = POLLIN },
				 { .fd = sigfd, .events = POLLIN } };
	while (!vm_stop_requested(vm)) {
		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				log_warn("stopped by signal %u", si.ssi_signo);
				vm_request_stop(vm, EXIT_SIGNAL);
			}
		}
	}
}

static void stop_threads(struct vm *vm)
{
	for (int i = 0; vm->vcpus && i < vm->nvcpus; i++)
		vcpu_stop(&vm->vcpus[i]);
	if (vm->loop_running) {
		event_loop_stop(vm->loop);
		pthread_join(vm->loop_thread, NULL);
		vm->loop_running = false;
	}
	vm_drain_coalesced(vm);
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

/* Device backends open their files, taps and sockets here, before anything runs. */
static int create_devices(struct vm *vm, const struct vm_config *cfg)
{
	int err = 0;
	for (int i = 0; !err && i < cfg->ndrives; i++)
		err = virtio_blk_create(vm, &cfg->drives[i]);
	for (int i = 0; !err && i < cfg->nnets; i++)
		err = virtio_net_create(vm, &cfg->nets[i]);
	if (!err && cfg->vsock.enabled)
		err = virtio_vsock_create(vm, &cfg->vsock);
	if (!err && cfg->entropy.enabled)
		err = virtio_rng_create(vm, &cfg->entropy);
	if (!err && cfg->balloon.enabled)
		err = virtio_balloon_create(vm, &cfg->balloon);
	if (!err)
		return 0;
	/* The device logged what was wrong; map the cause to a status. */
	return err == -ENOENT || err == -EACCES || err == -EBUSY || err == -EAGAIN ||
			       err == -EWOULDBLOCK
		       ? EXIT_NO_FILE
		       : err == -EINVAL ? EXIT_USAGE : EXIT_HOST_RESOURCE;
}

static int run_vm(struct options *o, uint64_t start)
{
	struct vm vm;
	struct serial *console = NULL;
	int status = -vm_create(&vm, o->cfg.vcpus, o->cfg.mem_mib);
	vm.timings.process_start = start;
	if (!status && (serial_create(&vm, STDIN_FILENO, STDOUT_FILENO, &console) ||
			i8042_create(&vm) || acpi_pm_create(&vm) || argon_exit_create(&vm))) {
		log_error("platform devices: cannot register");
		status = EXIT_INTERNAL;
	}
	if (!status)
		status = create_devices(&vm, &o->cfg);
	if (!status)
		status = boot_prepare(&vm, &o->cfg);
	int sigfd = status ? -1 : block_host_signals();
	if (!status) {
		timings_mark(&vm.timings.kvm_ready);
		status = start_threads(&vm);
		if (status)
			vm_request_stop(&vm, status);
		wait_for_stop(&vm, sigfd);
		status = vm.stop_status;
	}
	stop_threads(&vm);
	if (console)
		serial_destroy(console);
	if (o->timings) {
		timings_print(&vm.timings, STDERR_FILENO);
		exits_print(&vm.exits, stderr);
	}
	vm_destroy(&vm);
	if (sigfd >= 0)
		close(sigfd);
	return status;
}

int main(int argc, char **argv)
{
	uint64_t start = timings_process_start();
	log_init("argon-vmm", LOG_WARN);
	struct options o = { 0 };
	config_init(&o.cfg);
	if (parse_args(argc, argv, &o)) {
		config_free(&o.cfg);
		return EXIT_USAGE;
	}
	if (vcpu_install_kick_signal()) {
		log_error("cannot install the vCPU kick signal: %s", strerror(errno));
		return EXIT_INTERNAL;
	}
	int status = run_vm(&o, start);
	config_free(&o.cfg);
	return status;
}
