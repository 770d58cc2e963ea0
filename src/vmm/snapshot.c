/* Full snapshots: create and load (snapshot.h). The state comes from vcpu_state.c and
 * vm_state.c, its file format from snapshot/. */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/exit_status.h"
#include "common/log.h"
#include "devices/device_kind.h"
#include "snapshot/virtio_section.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm_state.h"
#include "vmm/vmm_state.h"

/* ---- create ---- */

static int write_vcpus(struct vm *vm, struct snap_writer *w)
{
	struct vcpu_state *s = vcpu_state_alloc();
	if (!s)
		return -ENOMEM;
	int err = 0;
	for (int i = 0; !err && i < vm->nvcpus; i++) {
		err = vcpu_state_save(&vm->vcpus[i], s);
		if (!err && (err = vcpu_section_write(w, i, s)) != 0)
			log_error("vCPU %d: cannot write its state: %s", i, strerror(-err));
	}
	vcpu_state_free(s);
	return err;
}

/* Every device finishes what it has half done (block I/O in flight answered, held
 * chains given back): its rings and the guest's memory are then the whole truth. */
static void quiesce_devices(struct vmm *v)
{
	for (int i = 0; i < v->devices.n; i++) {
		struct device *d = &v->devices.items[i];
		if (d->kind->quiesce)
			d->kind->quiesce(d);
	}
}

/* One section per device, in the order they were created (their MMIO slots). */
static int write_devices(struct vmm *v, struct snap_writer *w)
{
	int err = 0;
	for (int i = 0; !err && i < v->devices.n; i++) {
		struct device *d = &v->devices.items[i];
		const void *conf = config_device(&v->cfg, d->kind, d->kind->id_field ? d->id : NULL);
		err = conf ? device_section_write(w, d, conf) : -ENOENT;
		if (err)
			log_error("%s %s: cannot write its state: %s", d->kind->noun ? d->kind->noun
				  : d->kind->section, d->id, strerror(-err));
	}
	return err;
}

/* Every section of the state file, in the order a load reads them. */
static int write_state(struct vmm *v, struct snap_writer *w)
{
	struct vm *vm = &v->vm;
	struct snapshot_machine m = { .vcpus = (uint32_t)vm->nvcpus, .mem_size = vm->mem.ram_size,
				      .virtio_devices = (uint32_t)v->devices.n };
	struct vm_state vs;
	/* Writes the guest made to coalesced ports (the UART's THR, the i8042's command
	 * port, virtio's InterruptACK) are done as far as it knows: they reach the
	 * devices before their state is taken. The devices settle before the interrupt
	 * controllers are read: finishing I/O raises interrupts. */
	vm_drain_coalesced(vm);
	quiesce_devices(v);
	int err = machine_section_write(w, &m);
	if (!err && !(err = vm_state_save(vm, &vs)))
		err = vm_sections_write(w, &vs);
	if (!err)
		err = write_vcpus(vm, w);
	struct serial_state ss;
	struct i8042_state ks;
	if (!err && v->console) {
		serial_get_state(v->console, &ss);
		err = serial_section_write(w, &ss);
	}
	if (!err && v->keyboard) {
		i8042_get_state(v->keyboard, &ks);
		err = i8042_section_write(w, &ks);
	}
	return err ? err : write_devices(v, w);
}

/* The memory file must not be the one a restored VM's memory is mapped from (it
 * would be truncated under the guest), nor the state file. */
static int open_mem_file(const struct vm *vm, const char *state_path, const char *mem_path)
{
	struct stat a, b;
	if (strcmp(state_path, mem_path) == 0) {
		log_error("snapshot_path and mem_file_path are the same file, %s", mem_path);
		return -EINVAL;
	}
	if (vm->mem.file_fd >= 0 && stat(mem_path, &a) == 0 && fstat(vm->mem.file_fd, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
		log_error("%s: this VM's memory is mapped from that file; write the snapshot's "
			  "memory to another", mem_path);
		return -EINVAL;
	}
	int fd = open(mem_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		log_error("%s: %s", mem_path, strerror(errno));
	return fd < 0 ? -errno : fd;
}

static int write_memory(struct vmm *v, const char *state_path, const char *mem_path,
			struct snapshot_create_stats *st)
{
	uint64_t t0 = timings_now();
	int fd = open_mem_file(&v->vm, state_path, mem_path);
	if (fd < 0)
		return fd;
	int err = guest_mem_write_file(&v->vm.mem, fd, &st->mem);
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err) {
		log_error("%s: writing guest memory: %s", mem_path, strerror(-err));
		unlink(mem_path);
	}
	st->mem_ns = timings_now() - t0;
	return err;
}

int snapshot_create(struct vmm *v, const char *state_path, const char *mem_path,
		    struct snapshot_create_stats *st)
{
	*st = (struct snapshot_create_stats){ 0 };
	char msg[512];
	uint64_t t0 = timings_now();
	struct snap_writer *w;
	int err = snap_writer_create(state_path, &w, msg, sizeof(msg));
	if (err) {
		log_error("%s", msg);
		return err;
	}
	err = write_state(v, w);
	st->state_ns = timings_now() - t0;
	if (!err)
		err = write_memory(v, state_path, mem_path, st);
	if (err) {
		snap_writer_abort(w);
		return err;
	}
	t0 = timings_now();
	err = snap_writer_commit(w, msg, sizeof(msg)); /* last: the state names a whole memory file */
	st->state_ns += timings_now() - t0;
	if (err)
		log_error("%s", msg);
	struct stat sb;
	st->state_bytes = !err && stat(state_path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
	return err;
}

/* ---- load ---- */

struct snapshot_load {
	struct snap_reader *r;
	char *file;
	char err[512];
};

static uint64_t host_ram(void)
{
	struct sysinfo si;
	return sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 1ull << 40;
}

/* The memory file: readable, regular, exactly the guest's size. */
static int open_mem_for_load(const char *mem_path, uint64_t size, int *out)
{
	int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_error("memory file %s: %s", mem_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_NO_FILE;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		log_error("memory file %s: %s %lld bytes; the snapshot's guest has %llu", mem_path,
			  S_ISREG(st.st_mode) ? "has" : "is not a regular file, size",
			  (long long)st.st_size, (unsigned long long)size);
		close(fd);
		return EXIT_SNAPSHOT;
	}
	*out = fd;
	return 0;
}

static int status_for_open_error(int err)
{
	return err == -ENOENT || err == -EACCES || err == -EISDIR || err == -EPERM ? EXIT_NO_FILE
	       : err == -ENOMEM ? EXIT_HOST_RESOURCE : EXIT_SNAPSHOT;
}

/* Every section is one this argon reads for this machine: a snapshot with state it
 * would leave out (a device of a later version, a vCPU past vcpu_count) is refused,
 * not restored without it. */
static int check_sections(struct snapshot_load *ld, const struct snapshot_machine *m)
{
	uint32_t ndevices = 0;
	static const char *const known[] = { MACHINE_SECTION, CLOCK_SECTION, IRQCHIP_SECTION,
					     PIT_SECTION, SERIAL_SECTION, I8042_SECTION };
	for (uint32_t i = 0; i < snap_section_count(ld->r); i++) {
		const char *kind, *id;
		snap_section_at(ld->r, i, &kind, &id, NULL, NULL);
		bool ok = false;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok = ok || (strcmp(kind, known[k]) == 0 && id[0] == '\0');
		char *end;
		unsigned long n = strtoul(id, &end, 10);
		ok = ok || (strcmp(kind, VCPU_SECTION) == 0 && id[0] >= '0' && id[0] <= '9' &&
			    *end == '\0' && n < m->vcpus && (n == 0 || id[0] != '0'));
		bool device = !ok && device_kind_by_section(kind) && ndevices < m->virtio_devices;
		ndevices += device;
		if (!ok && !device) {
			snprintf(ld->err, sizeof(ld->err), "snapshot %s: section %s/%s: not one this "
				 "argon restores (a %u-vCPU VM with %u virtio devices)", ld->file,
				 kind, id, m->vcpus, m->virtio_devices);
			return -EINVAL;
		}
	}
	if (ndevices == m->virtio_devices)
		return 0;
	snprintf(ld->err, sizeof(ld->err), "snapshot %s: section vm: field virtio_devices: %u, "
		 "but the file has %u device sections", ld->file, m->virtio_devices, ndevices);
	return -EINVAL;
}

int snapshot_load_open(const char *state_path, const char *mem_path, struct snapshot_load **out,
		       struct snapshot_machine *m, int *mem_fd)
{
	struct snapshot_load *ld = calloc(1, sizeof(*ld));
	if (!ld || !(ld->file = strdup(state_path))) {
		free(ld);
		return EXIT_HOST_RESOURCE;
	}
	int err = snap_reader_open(state_path, &ld->r, ld->err, sizeof(ld->err));
	int status = err ? status_for_open_error(err) : 0;
	if (!status && (machine_section_read(ld->r, ld->file, VM_MAX_VCPUS, host_ram(), m, ld->err,
					     sizeof(ld->err)) || check_sections(ld, m)))
		status = EXIT_SNAPSHOT;
	if (status) {
		log_error("%s", ld->err);
		snapshot_load_close(ld);
		return status;
	}
	status = open_mem_for_load(mem_path, m->mem_size, mem_fd);
	if (status) {
		snapshot_load_close(ld);
		return status;
	}
	*out = ld;
	return 0;
}

/* Reads every vCPU's section (checked against this VM's MSR list) and puts it in. */
static int load_vcpus(struct snapshot_load *ld, struct vm *vm)
{
	const struct vcpu_state_host *host = vcpu_state_host(vm);
	struct vcpu_state *s = vcpu_state_alloc();
	int status = !host ? EXIT_NO_KVM : !s ? EXIT_HOST_RESOURCE : 0;
	for (int i = 0; !status && i < vm->nvcpus; i++) {
		memset(s->msrs, 0, sizeof(s->msrs));
		if (vcpu_section_read(ld->r, ld->file, i, host, s, ld->err, sizeof(ld->err))) {
			log_error("%s", ld->err);
			status = EXIT_SNAPSHOT;
		} else if (vcpu_state_restore(&vm->vcpus[i], s)) {
			status = EXIT_SNAPSHOT; /* the line is logged: KVM refused the state */
		}
	}
	vcpu_state_free(s);
	return status;
}

static int load_devices(struct snapshot_load *ld, struct vmm *v)
{
	struct serial_state ss;
	struct i8042_state ks;
	memset(&ss, 0, sizeof(ss));
	memset(&ks, 0, sizeof(ks));
	if (serial_section_read(ld->r, ld->file, &ss, ld->err, sizeof(ld->err)) ||
	    i8042_section_read(ld->r, ld->file, &ks, ld->err, sizeof(ld->err))) {
		log_error("%s", ld->err);
		return EXIT_SNAPSHOT;
	}
	if (serial_set_state(v->console, &ss) || i8042_set_state(v->keyboard, &ks)) {
		log_error("snapshot %s: the serial port's or the i8042's state is out of range",
			  ld->file);
		return EXIT_SNAPSHOT;
	}
	for (int i = 0; i < v->devices.n; i++) {
		if (device_section_read(ld->r, ld->file, &v->devices.items[i], ld->err,
					sizeof(ld->err))) {
			log_error("%s", ld->err);
			return EXIT_SNAPSHOT;
		}
	}
	return 0;
}

/* One device's configuration, appended to cfg after the devices before it. */
static int load_config(struct snapshot_load *ld, const struct device_kind *kind, const char *id,
		       struct vm_config *cfg)
{
	if (config_device_count(cfg, kind) >= kind->max) {
		snprintf(ld->err, sizeof(ld->err), "snapshot %s: section %s/%s: at most %d %s",
			 ld->file, kind->section, id, kind->max, kind->plural ? kind->plural
			 : kind->section);
		return -EINVAL;
	}
	void *conf = config_device_new(kind);
	if (!conf || config_device_append(cfg, kind, conf))
		return -ENOMEM;
	return device_section_config(ld->r, ld->file, kind, id, conf, ld->err, sizeof(ld->err));
}

int snapshot_load_config(struct snapshot_load *ld, struct vm_config *cfg)
{
	int err = 0;
	for (uint32_t i = 0; !err && i < snap_section_count(ld->r); i++) {
		const char *kind, *id;
		snap_section_at(ld->r, i, &kind, &id, NULL, NULL);
		const struct device_kind *k = device_kind_by_section(kind);
		if (k)
			err = load_config(ld, k, id, cfg);
	}
	if (err == -ENOMEM)
		log_error("snapshot %s: out of memory", ld->file);
	else if (err)
		log_error("%s", ld->err);
	return err == -ENOMEM ? EXIT_HOST_RESOURCE : err ? EXIT_SNAPSHOT : 0;
}

/* The order of vm_state.h: TSC frequency, PIT and interrupt controllers, vCPUs,
 * devices, and kvm-clock last (it runs from the moment it is set). */
int snapshot_load_state(struct snapshot_load *ld, struct vmm *v)
{
	struct vm *vm = &v->vm;
	struct vm_state vs;
	memset(&vs, 0, sizeof(vs));
	if (vm_sections_read(ld->r, ld->file, &vs, ld->err, sizeof(ld->err))) {
		log_error("%s", ld->err);
		return EXIT_SNAPSHOT;
	}
	if (vm_state_restore_tsc(vm, &vs) || vm_state_restore_irqchip(vm, &vs))
		return EXIT_SNAPSHOT;
	int status = load_vcpus(ld, vm);
	if (!status)
		status = load_devices(ld, v);
	if (!status && vm_state_restore_clock(vm, &vs))
		status = EXIT_SNAPSHOT;
	return status;
}

void snapshot_load_close(struct snapshot_load *ld)
{
	if (!ld)
		return;
	snap_reader_close(ld->r);
	free(ld->file);
	free(ld);
}
