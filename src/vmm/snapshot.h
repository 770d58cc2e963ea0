/* Full snapshots of a VM (issue 9): a state file (snapshot/snapfile.h: the machine,
 * kvm-clock, interrupt controllers, PIT, every vCPU, the serial port and the i8042)
 * and a memory file (guest RAM, sparse). Firecracker's model: create on a paused VM,
 * load into a fresh argon-vmm, which maps the memory file private and runs on.
 *
 * Each virtio device has its own section (snapshot/virtio_section.h) holding its
 * configuration, so a restore builds the same devices from the state file alone. */
#ifndef ARGON_VMM_SNAPSHOT_H
#define ARGON_VMM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot/state_sections.h"
#include "vmm/memory.h"

struct vmm;

struct snapshot_create_stats {
	uint64_t state_ns, mem_ns; /* time to gather and write each file */
	uint64_t state_bytes;
	struct guest_mem_dump_stats mem;
};
/* Writes the paused VM's state to state_path and its memory to mem_path. Neither
 * file is left half-written: the state file appears (atomically) only once the
 * memory file is complete and synced. Returns 0, or -errno after one log_error line.
 * The vCPUs and the event loop are parked; the caller holds no lock the guest needs. */
int snapshot_create(struct vmm *v, const char *state_path, const char *mem_path,
		    struct snapshot_create_stats *st);

/* A restore, in three steps around building the VM (vmm_state.c):
 *   snapshot_load_open   reads and checks the whole state file and opens the memory
 *                        file: what to build (vCPUs, memory size) and from what fd
 *   snapshot_load_config the virtio devices' configurations, into cfg
 *   (the VM is created: vm_create_restored, platform devices, virtio devices)
 *   snapshot_load_state  puts every state in, in KVM's order
 *   snapshot_load_close
 * Each returns 0 or an exit status (enum exit_status) after one log_error line
 * naming the file, section and field at fault. */
struct snapshot_load;
int snapshot_load_open(const char *state_path, const char *mem_path, struct snapshot_load **out,
		       struct snapshot_machine *m, int *mem_fd);
struct vm_config;
int snapshot_load_config(struct snapshot_load *ld, struct vm_config *cfg);
int snapshot_load_state(struct snapshot_load *ld, struct vmm *v);
void snapshot_load_close(struct snapshot_load *ld);

#endif
