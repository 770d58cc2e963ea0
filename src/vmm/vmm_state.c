#include "vmm/vmm_state.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/exit_status.h"
#include "common/log.h"
#include "common/terminal.h"
#include "devices/i8042.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "vmm/boot.h"
#include "vmm/event_loop.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu.h"

const char *vmm_state_name(enum vmm_state s)
{
	static const char *const names[] = { [VMM_NOT_STARTED] = "Not started",
					     [VMM_RUNNING] = "Running", [VMM_PAUSED] = "Paused" };
	return names[s];
}

int vmm_init(struct vmm *v, uint64_t process_start)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	config_init(&v->cfg);
	snprintf(v->id, sizeof(v->id), "anonymous-instance");
	v->process_start = process_start;
	metrics_init(&v->metrics);
	v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return v->wake_fd < 0 ? -errno : 0;
}

int vmm_apply_logger(struct vmm *v, const struct logger_config *l, char *err, size_t errlen)
{
	if (log_set_destination(l->log_path, err, errlen))
		return -1;
	log_set_off(l->level == LOGGER_LEVEL_OFF);
	if (l->level >= 0)
		log_set_level((enum log_level)l->level);
	log_set_format(l->show_level, l->show_log_origin);
	return 0;
}

int vmm_apply_metrics(struct vmm *v, const struct metrics_config *m, char *err, size_t errlen)
{
	return metrics_open(&v->metrics, m->metrics_path, m->period_ms, err, errlen) ? -1 : 0;
}

/* ---- building the VM (main thread) ---- */

/* The guest's serial console reads stdin. A terminal this process owns goes raw, as
 * Firecracker's does: every key, Ctrl-C included, is the guest's (main restores it).
 * One it does not own (argon-vmm started as a background job) is not read: reading it
 * would stop the whole VMM (SIGTTIN). Returns the fd to read, or -1. */
static int console_input(void)
{
	if (!isatty(STDIN_FILENO))
		return STDIN_FILENO;
	if (!terminal_is_ours(STDIN_FILENO)) {
		log_info("stdin is the terminal of another process group (a background job): "
			 "the guest's console takes no input");
		return -1;
	}
	int rc = terminal_raw_begin(STDIN_FILENO);
	if (rc < 0)
		log_warn("stdin: cannot put the terminal in raw mode: %s", strerror(-rc));
	return STDIN_FILENO;
}

static int create_platform(struct vmm *v)
{
	struct vm *vm = &v->vm;
	int err = serial_create(vm, console_input(), STDOUT_FILENO, &v->console);
	if (!err)
		err = i8042_create(vm, &v->keyboard);
	if (!err)
		err = acpi_pm_create(vm);
	if (!err)
		err = argon_exit_create(vm);
	if (!err)
		return 0;
	log_error("platform devices: cannot register: %s", strerror(-err));
	/* Out of file descriptors or memory is the host's limit, anything else a bug. */
	return err == -ENOMEM || err == -EMFILE || err == -ENFILE ? EXIT_HOST_RESOURCE
								  : EXIT_INTERNAL;
}

/* One device: created by its kind, then recorded with its id. A device the kind
 * added before failing is recorded too, so it is found while the VM goes away. */
static int create_device(struct vmm *v, const struct device_kind *kind, const void *conf)
{
	int before = v->vm.nvirtio;
	int err = kind->create(&v->vm, conf);
	if (v->vm.nvirtio > before) {
		int e = device_set_add(&v->devices, kind, device_kind_id(kind, conf),
				       v->vm.virtio[before]);
		err = err ? err : e;
	}
	return err;
}

/* A named file that cannot be opened as the device needs it (missing, no permission,
 * a directory, locked by another VMM) is 66; a bad value 64; the rest is the host's
 * resources (71). */
static int status_for_device_error(int err)
{
	static const int no_file[] = { ENOENT, EACCES, EPERM, EISDIR, ENOTDIR, ELOOP,
				       ENAMETOOLONG, EROFS, ETXTBSY, EBUSY, EAGAIN, EWOULDBLOCK };
	for (size_t i = 0; i < sizeof(no_file) / sizeof(no_file[0]); i++)
		if (err == -no_file[i])
			return EXIT_NO_FILE;
	return err == -EINVAL ? EXIT_USAGE : EXIT_HOST_RESOURCE;
}

/* Device backends open their files, taps and sockets here, before anything runs: kind
 * by kind in the order of device_kinds, each kind's devices in the order given. */
static int create_devices(struct vmm *v)
{
	int err = 0;
	for (int k = 0; !err && device_kinds[k]; k++) {
		const struct device_kind *kind = device_kinds[k];
		int n = config_device_count(&v->cfg, kind);
		for (int i = 0; !err && i < n; i++)
			err = create_device(v, kind, config_device_nth(&v->cfg, kind, i));
	}
	if (!err)
		return 0;
	/* The device logged what was wrong; map the cause to a status. */
	return status_for_device_error(err);
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
	int err = pthread_create(&vm->loop_thread, NULL, event_loop_thread, vm);
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

/* The visible timeline of a boot: KVM and memory, platform devices, virtio devices
 * (files, taps, sockets opened), kernel and firmware tables, then the threads.
 * Returns 0 or an exit status after one message naming what was wrong. */
static int build_vm(struct vmm *v)
{
	struct vm_options opts = { .smt = v->cfg.smt, .track_dirty_pages = v->cfg.track_dirty_pages,
				   .pages = v->cfg.huge_pages };
	int status = -vm_create_with(&v->vm, v->cfg.vcpus, v->cfg.mem_mib, &opts);
	v->vm_created = true;
	v->vm.timings.process_start = v->process_start;
	if (!status)
		status = create_platform(v);
	if (!status)
		status = create_devices(v);
	if (!status)
		status = boot_prepare(&v->vm, &v->cfg);
	if (!status && pause_init(&v->vm)) {
		log_error("pause eventfd: %s", strerror(errno));
		status = EXIT_HOST_RESOURCE;
	}
	if (!status) {
		timings_mark(&v->vm.timings.kvm_ready);
		status = start_threads(&v->vm);
	}
	if (!status) {
		v->state = VMM_RUNNING;
		log_info("VM started: %d vCPUs, %llu MiB", v->cfg.vcpus,
			 (unsigned long long)v->cfg.mem_mib);
	}
	return status;
}

/* A restored VM's threads: parked before their first instruction when the VM is to
 * stay paused (Firecracker's resume_vm false), so the guest runs not one instruction
 * until PATCH /vm Resumed. */
static int start_restored(struct vmm *v)
{
	bool paused = !v->restore.resume;
	if (paused)
		pause_request_early(&v->vm);
	timings_mark(&v->vm.timings.kvm_ready);
	int status = start_threads(&v->vm);
	char err[256];
	if (!status && paused && pause_vm(&v->vm, err, sizeof(err))) {
		log_error("%s", err);
		status = EXIT_INTERNAL;
	}
	if (!status) {
		v->state = paused ? VMM_PAUSED : VMM_RUNNING;
		log_info("VM restored from %s: %d vCPUs, %llu MiB, %s", v->restore.state_path,
			 v->cfg.vcpus, (unsigned long long)v->cfg.mem_mib,
			 paused ? "paused" : "running");
	}
	return status;
}

/* The timeline of a restore: the state file read and checked and the memory file
 * opened, the devices' configurations taken from it, KVM with that memory mapped
 * private, the platform and virtio devices (files, taps, sockets opened as at boot),
 * every state put in (snapshot.c), then the threads. Returns 0 or an exit status after one message. */
static int restore_vm(struct vmm *v)
{
	struct snapshot_load *ld = NULL;
	struct snapshot_machine m;
	int mem_fd = -1;
	int status = snapshot_load_open(v->restore.state_path, v->restore.mem_path, &ld, &m,
					&mem_fd);
	if (status)
		return status;
	v->cfg.vcpus = (int)m.vcpus;
	v->cfg.mem_mib = m.mem_size >> 20;
	status = snapshot_load_config(ld, &v->cfg);
	if (status) {
		close(mem_fd);
		snapshot_load_close(ld);
		return status;
	}
	status = -vm_create_restored(&v->vm, (int)m.vcpus, m.mem_size, mem_fd);
	v->vm_created = true;
	v->vm.timings.process_start = v->process_start;
	if (!status)
		status = create_platform(v);
	/* A disk, tap or socket the snapshot names that this host cannot give (missing,
	 * locked, refused): the device said which; the snapshot does not fit the host. */
	if (!status && create_devices(v))
		status = EXIT_SNAPSHOT;
	if (!status)
		status = snapshot_load_state(ld, v);
	snapshot_load_close(ld);
	if (!status && pause_init(&v->vm)) {
		log_error("pause eventfd: %s", strerror(errno));
		status = EXIT_HOST_RESOURCE;
	}
	return status ? status : start_restored(v);
}

static int build(struct vmm *v)
{
	return v->restore.state_path ? restore_vm(v) : build_vm(v);
}

void vmm_stop_vm(struct vmm *v)
{
	struct vm *vm = &v->vm;
	if (!v->vm_created)
		return;
	vm_request_stop(vm, EXIT_INTERNAL); /* the first status stays */
	pause_shutdown(vm);
	for (int i = 0; vm->vcpus && i < vm->nvcpus; i++)
		vcpu_stop(&vm->vcpus[i]);
	if (vm->loop_running) {
		event_loop_stop(vm->loop);
		pthread_join(vm->loop_thread, NULL);
		vm->loop_running = false;
	}
	vm_drain_coalesced(vm);
}

void vmm_destroy(struct vmm *v)
{
	if (v->vm_created) {
		vmm_stop_vm(v);
		if (v->console)
			serial_destroy(v->console);
		i8042_destroy(v->keyboard);
		v->keyboard = NULL;
		if (v->print_timings) {
			timings_print(&v->vm.timings, STDERR_FILENO);
			exits_print(&v->vm.exits, stderr);
		}
		pause_destroy(&v->vm);
		vm_destroy(&v->vm);
		device_set_clear(&v->devices);
		v->vm_created = false;
	}
	config_free(&v->cfg);
	free(v->restore.state_path);
	free(v->restore.mem_path);
	v->restore.state_path = v->restore.mem_path = NULL;
	metrics_close(&v->metrics);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	v->wake_fd = -1;
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
}

/* ---- the main thread's loop ---- */

/* Builds the VM if the API asked; returns its status (0: started or nothing asked). */
static int handle_start_request(struct vmm *v)
{
	uint64_t n;
	if (read(v->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return 0;
	pthread_mutex_lock(&v->lock);
	int status = 0;
	if (v->start_requested && !v->start_done) {
		/* Built meanwhile from --config (the request raced the boot): it stands. */
		if (!v->vm_created) {
			log_capture_begin(v->start_error, sizeof(v->start_error));
			status = build(v);
			log_capture_end();
		}
		v->start_status = status;
		v->start_done = true;
		/* In the same hold of the lock as the failure: no request that follows can
		 * act on the configuration of a VM that will never run (routes.c). */
		v->exiting = status != 0;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
	return status;
}

/* True when a host signal asks the process to end. */
static bool handle_signal(struct vmm *v, int sigfd)
{
	struct signalfd_siginfo si;
	if (read(sigfd, &si, sizeof(si)) != sizeof(si))
		return false;
	log_warn("stopped by signal %u", si.ssi_signo);
	if (v->vm_created)
		vm_request_stop(&v->vm, EXIT_SIGNAL);
	return true;
}

static int poll_timeout_ms(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	int64_t due = metrics_due_in(&v->metrics, timings_now());
	pthread_mutex_unlock(&v->lock);
	return due < 0 ? -1 : (int)((due + 999999) / 1000000);
}

static void flush_metrics_if_due(struct vmm *v)
{
	pthread_mutex_lock(&v->lock);
	if (metrics_due_in(&v->metrics, timings_now()) == 0)
		metrics_flush(v);
	pthread_mutex_unlock(&v->lock);
}

/* The loop ends: an InstanceStart waiting now, or asked from here on, is answered at
 * once, so the API thread never waits for a main thread that has gone. */
static int finish(struct vmm *v, int status)
{
	pthread_mutex_lock(&v->lock);
	v->exiting = true;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	return status;
}

int vmm_run(struct vmm *v, int sigfd, bool boot_now)
{
	if (boot_now) {
		pthread_mutex_lock(&v->lock);
		int status = build(v);
		pthread_mutex_unlock(&v->lock);
		if (status)
			return finish(v, status);
	}
	for (;;) {
		struct pollfd fds[3] = {
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = v->wake_fd, .events = POLLIN },
			{ .fd = v->vm_created ? v->vm.stop_fd : -1, .events = POLLIN },
		};
		if (poll(fds, 3, poll_timeout_ms(v)) < 0 && errno != EINTR)
			return finish(v, EXIT_INTERNAL);
		if ((fds[0].revents & POLLIN) && handle_signal(v, sigfd) && !v->vm_created)
			return finish(v, EXIT_SIGNAL);
		if (fds[1].revents & POLLIN) {
			int status = handle_start_request(v);
			if (status)
				return finish(v, status);
		}
		if (v->vm_created && vm_stop_requested(&v->vm))
			return finish(v, v->vm.stop_status);
		flush_metrics_if_due(v);
	}
}

/* ---- actions from the API thread (vmm->lock held) ---- */

bool vmm_ending(const struct vmm *v, char *why, size_t len)
{
	if (!v->exiting)
		return false;
	if (v->start_done && v->start_status)
		snprintf(why, len, "argon-vmm is ending with status %d: InstanceStart failed: %s",
			 v->start_status, v->start_error[0] ? v->start_error : "internal error");
	else
		snprintf(why, len, "argon-vmm is ending: the VM has stopped");
	return true;
}

int vmm_request_start(struct vmm *v, char *err, size_t errlen)
{
	uint64_t one = 1;
	v->start_requested = true;
	if (write(v->wake_fd, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "cannot wake the main thread: %s", strerror(errno));
		return EXIT_INTERNAL;
	}
	while (!v->start_done && !v->exiting)
		pthread_cond_wait(&v->cond, &v->lock);
	if (!v->start_done) {
		snprintf(err, errlen, "argon-vmm is shutting down");
		return EXIT_INTERNAL;
	}
	if (v->start_status)
		snprintf(err, errlen, "%s", v->start_error[0] ? v->start_error : "internal error");
	return v->start_status;
}

int vmm_pause(struct vmm *v, char *err, size_t errlen)
{
	if (v->state == VMM_PAUSED)
		return 0;
	if (pause_vm(&v->vm, err, errlen))
		return -1;
	v->state = VMM_PAUSED;
	log_info("VM paused");
	return 0;
}

int vmm_resume(struct vmm *v, char *err, size_t errlen)
{
	if (v->state != VMM_PAUSED)
		return 0;
	pause_resume(&v->vm);
	v->state = VMM_RUNNING;
	log_info("VM resumed");
	return 0;
}
