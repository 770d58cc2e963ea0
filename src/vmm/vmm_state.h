/* The VMM's state machine and everything one argon-vmm process owns besides the VM:
 * Not started -> Running <-> Paused. One struct vm_config is filled by --config, the
 * command line and API PUTs through the same parse functions (config*.c); the VM is
 * built from it by InstanceStart (or at once when a kernel was given at start-up).
 *
 * Threads: the main thread builds, runs and tears down the VM (vmm_run); the API
 * thread handles requests with vmm->lock held; vCPU and event-loop threads never
 * take vmm->lock, so the guest never waits for the API. */
#ifndef ARGON_VMM_VMM_STATE_H
#define ARGON_VMM_VMM_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/device_kind.h"
#include "vmm/config.h"
#include "vmm/metrics.h"
#include "vmm/vm.h"

struct i8042;
struct serial;

enum vmm_state { VMM_NOT_STARTED, VMM_RUNNING, VMM_PAUSED };

#define VMM_ID_MAX 64

struct vmm {
	pthread_mutex_t lock; /* everything below; held by every API request */
	pthread_cond_t cond;  /* start_done changed */
	enum vmm_state state;
	struct vm_config cfg;
	char id[VMM_ID_MAX + 1]; /* instance id (GET /), Firecracker's --id */
	uint64_t process_start;
	bool print_timings;

	/* The VM: valid once vm_created (even when building it failed half-way). */
	struct vm vm;
	bool vm_created;
	struct serial *console;
	struct i8042 *keyboard; /* SendCtrlAltDel types on it */
	struct device_set devices; /* the configured devices, found by kind and id */
	/* A restore instead of a boot (--restore, PUT /snapshot/load): the VM is built
	 * from these files when state_path is set (snapshot.h). */
	struct {
		char *state_path, *mem_path;
		bool resume; /* run at once; else stay Paused */
	} restore;

	/* InstanceStart asked by the API thread, done by the main thread. */
	int wake_fd; /* eventfd the main thread polls */
	bool start_requested, start_done;
	bool exiting; /* the main loop has ended: nothing will be built any more */
	int start_status;
	char start_error[512];

	struct metrics metrics;
};

/* Sets up an empty VMM (no VM); config defaults. Returns 0 or -errno. */
int vmm_init(struct vmm *v, uint64_t process_start);
/* Tears down the VM if one was built, and frees everything. */
void vmm_destroy(struct vmm *v);

/* Applies the logger and metrics sections of v->cfg (destination, level, format,
 * metrics file). Returns 0, or -1 with a message in err. Lock held (or no API yet). */
int vmm_apply_logger(struct vmm *v, const struct logger_config *l, char *err, size_t errlen);
int vmm_apply_metrics(struct vmm *v, const struct metrics_config *m, char *err, size_t errlen);

/* The main thread's loop: builds the VM at once when boot_now, else when the API asks
 * (InstanceStart, or PUT /snapshot/load); a VM is restored from a snapshot instead
 * of booted when restore.state_path is set; flushes metrics on their period; returns the process's exit status
 * when the guest stops, a host signal arrives on sigfd, or building the VM fails. */
int vmm_run(struct vmm *v, int sigfd, bool boot_now);
/* Stops the vCPUs and the event loop (releasing a pause first). */
void vmm_stop_vm(struct vmm *v);

/* API thread, lock held: asks the main thread to build and start the VM and waits.
 * Returns 0, or an exit status with the reason in err; the process then ends with
 * that status once the answer is sent (a half-built VM cannot be reused), and every
 * request after it is refused (vmm_ending). */
int vmm_request_start(struct vmm *v, char *err, size_t errlen);
/* Lock held. True once the process is ending (the VM stopped, or InstanceStart
 * failed), with why in why: every request is refused from then on. */
bool vmm_ending(const struct vmm *v, char *why, size_t len);
/* Lock held. Pausing a paused VM and resuming a running one succeed and do nothing.
 * Return 0, or -1 with a message in err. */
int vmm_pause(struct vmm *v, char *err, size_t errlen);
int vmm_resume(struct vmm *v, char *err, size_t errlen);

/* "Not started", "Running", "Paused" (Firecracker's words). */
const char *vmm_state_name(enum vmm_state s);

#endif
