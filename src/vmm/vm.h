/* A VM: the KVM file descriptors, guest memory, vCPUs, buses and devices, and the
 * one place a VM is asked to stop. Passed explicitly everywhere: no globals. */
#ifndef ARGON_VMM_VM_H
#define ARGON_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/exits.h"
#include "vmm/memory.h"
#include "vmm/pause.h"
#include "vmm/timings.h"

struct event_loop;
struct kvm_coalesced_mmio_ring;
struct vcpu;
struct vcpu_state_host;
struct virtio_device;

#define VM_MAX_VCPUS 32
#define VM_MIN_MEM_MIB 16
#define VM_MAX_VIRTIO_DEVICES 16

/* Firecracker's machine-config beyond vCPUs and memory: what the guest's CPUs look
 * like and how its memory is backed and watched. Zeroed: Firecracker's defaults. */
struct vm_options {
	bool smt;		  /* two hyperthreads per core in CPUID, else one */
	bool track_dirty_pages;	  /* KVM_MEM_LOG_DIRTY_PAGES on every memory slot */
	enum guest_mem_pages pages;
};

struct vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	struct guest_mem mem;
	int nvcpus;
	struct vm_options opts;
	struct vcpu *vcpus;
	struct bus pio_bus;
	struct bus mmio_bus;
	struct event_loop *loop;
	pthread_t loop_thread;
	bool loop_running;
	/* KVM's coalesced-I/O ring (in the first vCPU's kvm_run mapping): writes the
	 * guest makes to coalesced ports land here without an exit. */
	struct kvm_coalesced_mmio_ring *coalesced_ring;
	pthread_mutex_t coalesced_lock;
	/* The stop request: the first status wins; the main thread waits on stop_fd. */
	int stop_fd;
	int stop_status;
	bool stop_requested;
	pthread_mutex_t stop_lock;
	/* virtio-mmio devices in slot order: the firmware tables and the command line
	 * describe them from here. */
	struct virtio_device *virtio[VM_MAX_VIRTIO_DEVICES];
	int nvirtio;
	struct timings timings;
	struct exit_counters exits;
	struct vm_pause pause; /* vmm/pause.c */
	/* What this host's KVM keeps of a vCPU (vcpu_state.h): probed at the first
	 * snapshot or restore, freed with the VM. */
	struct vcpu_state_host *state_host;
};

/* Opens /dev/kvm, checks the API version and the capabilities argon needs, creates
 * the VM with an in-kernel irqchip and PIT, and maps ram_mib of guest memory.
 * On failure returns a negative exit status (enum exit_status) after printing one
 * clear message. */
int vm_create(struct vm *vm, int nvcpus, uint64_t ram_mib);
/* The same with opts (NULL: the defaults). */
int vm_create_with(struct vm *vm, int nvcpus, uint64_t ram_mib, const struct vm_options *opts);
/* The same for a snapshot's VM: ram_size bytes from mem_fd, the snapshot's memory
 * file, mapped private (guest_mem_create_private; the VM owns mem_fd from here, also
 * on failure). */
/* Whether this host can give what opts ask for ram_mib of memory: 0, or -1 with a
 * message naming the machine-config field in err. */
int vm_options_check_host(const struct vm_options *o, uint64_t ram_mib, char *err, size_t len);
int vm_create_restored(struct vm *vm, int nvcpus, uint64_t ram_size, int mem_fd);
void vm_destroy(struct vm *vm);

/* Asks the VM to stop with status (enum exit_status); the first request wins.
 * Safe from any thread, including vCPU threads and device callbacks. */
void vm_request_stop(struct vm *vm, int status);
bool vm_stop_requested(struct vm *vm);

/* Raises or lowers an interrupt line (GSI) on the in-kernel irqchip. */
int vm_set_irq_line(struct vm *vm, uint32_t gsi, int level);
/* An edge: raise then lower. */
int vm_pulse_irq(struct vm *vm, uint32_t gsi);

/* Takes the guest's pending coalesced writes out of the ring and hands them to the
 * buses, in order. Called before every exit is handled and from a timer, so the
 * guest's writes are never reordered against an exit. */
void vm_drain_coalesced(struct vm *vm);
/* Starts or stops coalescing guest writes to port [port, port + len). */
int vm_coalesce_pio(struct vm *vm, uint16_t port, uint32_t len, bool enable);
/* Coalesces guest writes to MMIO [addr, addr + len) for the VM's life. Returns 0, or
 * -errno (then the writes keep exiting, which is always correct). */
int vm_coalesce_mmio(struct vm *vm, uint64_t addr, uint32_t len);

#endif
