#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "common/util.h"
#include "devices/virtio/virtio.h"
#include "vmm/event_loop.h"
#include "vmm/vcpu.h"

/* What argon cannot run without; each check names the capability in its message. */
static const struct {
	int cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (in-kernel interrupt controllers)" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2 (in-kernel PIT)" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
};

/* Errors that say the host ran out of something (memory, file descriptors), which
 * the exit statuses tell apart from KVM missing or refusing (71, not 69). */
static bool host_short_of(int err)
{
	return err == ENOMEM || err == EMFILE || err == ENFILE || err == EAGAIN;
}

static int open_kvm(struct vm *vm)
{
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = errno;
		if (host_short_of(err)) { /* not KVM's fault: the host's limits (71) */
			log_error("/dev/kvm: %s", strerror(err));
			return -EXIT_HOST_RESOURCE;
		}
		log_error("/dev/kvm: %s (%s)", strerror(err),
			  err == ENOENT ? "KVM is not available on this host: load kvm and a vendor "
					  "module (kvm_intel, kvm_amd or kvm_pvm)"
					: "run as root or add this user to the kvm group");
		return -EXIT_NO_KVM;
	}
	int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_error("/dev/kvm: API version %d, expected %d", version, KVM_API_VERSION);
		return -EXIT_NO_KVM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			log_error("/dev/kvm: missing %s", required_caps[i].name);
			return -EXIT_NO_KVM;
		}
	}
	return 0;
}

static int check_vcpu_count(struct vm *vm, int nvcpus)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4; /* KVM's documented default when neither capability answers */
	if (nvcpus < 1 || nvcpus > VM_MAX_VCPUS || nvcpus > max) {
		log_error("vcpu_count %d: expected 1..%d", nvcpus, MIN(VM_MAX_VCPUS, max));
		return -EXIT_USAGE;
	}
	return 0;
}

/* The first line of a small sysfs or procfs file into buf; false when unreadable. */
static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok = f && fgets(buf, (int)len, f);
	if (f)
		fclose(f);
	return ok;
}

/* Whether the host can give what opts ask: SMT that is there, transparent huge pages
 * not turned off, enough free 2 MiB pages. Firecracker refuses SMT where the host has
 * none; argon also refuses a huge-page setting the host would silently ignore. */
int vm_options_check_host(const struct vm_options *o, uint64_t ram_mib, char *err, size_t len)
{
	char line[128] = "";
	if (o->smt && (!read_line("/sys/devices/system/cpu/smt/active", line, sizeof(line)) ||
		       line[0] != '1'))
		return snprintf(err, len, "machine-config.smt: this host has no simultaneous "
				"multithreading (/sys/devices/system/cpu/smt/active is not 1)"), -1;
	if (o->pages == GUEST_MEM_PAGES_THP &&
	    (!read_line("/sys/kernel/mm/transparent_hugepage/enabled", line, sizeof(line)) ||
	     strstr(line, "[never]")))
		return snprintf(err, len, "machine-config.huge_pages: \"Transparent\": transparent "
				"huge pages are off on this host (/sys/kernel/mm/"
				"transparent_hugepage/enabled is never)"), -1;
	long free_pages = o->pages == GUEST_MEM_PAGES_HUGETLB_2M ? guest_mem_huge_pages_free() : 0;
	if (o->pages == GUEST_MEM_PAGES_HUGETLB_2M && (free_pages < 0 || (uint64_t)free_pages < ram_mib / 2))
		return snprintf(err, len, "machine-config.huge_pages: \"2M\": %llu MiB needs %llu "
				"free 2 MiB huge pages, this host has %ld (HugePages_Free in "
				"/proc/meminfo; reserve them in /proc/sys/vm/nr_hugepages)",
				(unsigned long long)ram_mib, (unsigned long long)ram_mib / 2,
				free_pages < 0 ? 0 : free_pages), -1;
	return 0;
}

static int check_options(const struct vm *vm, uint64_t ram_size)
{
	char err[256];
	if (vm_options_check_host(&vm->opts, ram_size >> 20, err, sizeof(err)) == 0)
		return 0;
	log_error("%s", err);
	return -EXIT_HOST_RESOURCE;
}

static int create_vm_fd(struct vm *vm)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		int err = errno;
		log_error("KVM_CREATE_VM: %s", strerror(err));
		return host_short_of(err) ? -EXIT_HOST_RESOURCE : -EXIT_NO_KVM;
	}
	/* Intel needs a TSS and an identity-map page below 4 GiB for real mode; both sit
	 * in the MMIO hole, away from RAM. Other backends ignore or refuse them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s (not needed on this backend)", strerror(errno));
	uint64_t identity = 0xfffbc000ULL;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	return 0;
}

/* After the memory slots: once the irqchip exists, every slot change waits for an
 * SRCU grace period (measured: 7-11 ms per slot on a PVM host, 0.1 ms before). */
static int create_irqchip(struct vm *vm)
{
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -EXIT_NO_KVM;
	}
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		return -EXIT_NO_KVM;
	}
	return 0;
}

static int check_memory_size(uint64_t ram_mib)
{
	struct sysinfo si;
	uint64_t host_mib = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit >> 20 : 0;
	if (ram_mib < VM_MIN_MEM_MIB || (host_mib && ram_mib > host_mib)) {
		log_error("mem_size_mib %llu: expected %d..%llu (this host has %llu MiB)",
			  (unsigned long long)ram_mib, VM_MIN_MEM_MIB,
			  (unsigned long long)host_mib, (unsigned long long)host_mib);
		return -EXIT_USAGE;
	}
	return 0;
}

static int register_slots(struct vm *vm)
{
	for (int i = 0; i < vm->mem.nregions; i++) {
		struct guest_mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
			/* machine-config.track_dirty_pages: KVM_GET_DIRTY_LOG then answers
			 * for diff snapshots and migration. */
			.flags = vm->opts.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			log_error("KVM_SET_USER_MEMORY_REGION slot %d (%llu MiB at 0x%llx): %s", i,
				  (unsigned long long)(r->size >> 20), (unsigned long long)r->gpa,
				  strerror(errno));
			return -EXIT_HOST_RESOURCE;
		}
	}
	return 0;
}

static void log_memory_error(const struct vm *vm, uint64_t ram_size, int err)
{
	unsigned long long mib = ram_size >> 20;
	long free_pages = guest_mem_huge_pages_free();
	if (vm->opts.pages == GUEST_MEM_PAGES_HUGETLB_2M && err == -ENOMEM)
		log_error("guest memory of %llu MiB in 2 MiB huge pages: the host has %ld free, the "
			  "guest needs %llu (reserve more in /proc/sys/vm/nr_hugepages)", mib,
			  free_pages < 0 ? 0 : free_pages, mib / 2);
	else
		log_error("guest memory of %llu MiB: %s", mib, strerror(-err));
}

/* Fresh memory (mem_fd < 0: a memfd of ram_size bytes) or a snapshot's memory file
 * mapped private. */
static int map_memory(struct vm *vm, uint64_t ram_size, int mem_fd)
{
	int status = check_memory_size(ram_size >> 20);
	int err = status ? 0
			 : mem_fd < 0 ? guest_mem_create_pages(&vm->mem, ram_size, vm->opts.pages)
				      : guest_mem_create_private(&vm->mem, ram_size, mem_fd);
	if ((status || err) && mem_fd >= 0)
		close(mem_fd); /* not taken by the guest memory */
	if (status)
		return status;
	if (err) {
		log_memory_error(vm, ram_size, err);
		return -EXIT_HOST_RESOURCE;
	}
	return register_slots(vm);
}

static int create_vcpus(struct vm *vm)
{
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0) {
		log_error("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EXIT_NO_KVM;
	}
	vm->vcpus = calloc((size_t)vm->nvcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -EXIT_HOST_RESOURCE;
	for (int i = 0; i < vm->nvcpus; i++) {
		int err = vcpu_create(vm, &vm->vcpus[i], i);
		if (err) {
			log_error("vCPU %d: %s", i, strerror(-err));
			return host_short_of(-err) ? -EXIT_HOST_RESOURCE : -EXIT_NO_KVM;
		}
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO) > 0)
		vm->coalesced_ring = (void *)((uint8_t *)vm->vcpus[0].run +
					      KVM_COALESCED_MMIO_PAGE_OFFSET * 4096);
	return 0;
}

/* The device loop's largest polling window (event_loop.h). Long enough to bridge a
 * guest's think time between requests of a busy queue (a few to tens of
 * microseconds), short enough that a guest going quiet costs little. ARGON_POLL_US
 * sets another (0: never poll), for measurements. */
#define VM_POLL_MAX_NS 50000ULL
_Static_assert(EVENT_LOOP_MAX_POLLERS >= VM_MAX_VIRTIO_DEVICES, "a poller per virtio device");

static uint64_t poll_max_ns(void)
{
	const char *env = getenv("ARGON_POLL_US");
	char *end;
	unsigned long long us = env ? strtoull(env, &end, 10) : 0;
	if (!env || !*env || *end || us > 1000000) {
		if (env)
			log_warn("ARGON_POLL_US=%s: expected microseconds (0..1000000); using %llu",
				 env, VM_POLL_MAX_NS / 1000);
		return VM_POLL_MAX_NS;
	}
	return us * 1000;
}

static int create(struct vm *vm, int nvcpus, uint64_t ram_size, int mem_fd,
		  const struct vm_options *opts)
{
	memset(vm, 0, sizeof(*vm));
	if (opts)
		vm->opts = *opts;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	vm->mem.memfd = vm->mem.file_fd = -1;
	vm->nvcpus = nvcpus;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->coalesced_lock, NULL);
	bus_init(&vm->pio_bus, "pio");
	bus_init(&vm->mmio_bus, "mmio");
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (vm->stop_fd < 0 || event_loop_create(&vm->loop) < 0) {
		log_error("eventfd/epoll: %s", strerror(errno));
		if (mem_fd >= 0)
			close(mem_fd);
		return -EXIT_HOST_RESOURCE;
	}
	event_loop_set_poll_max(vm->loop, poll_max_ns());
	int err = open_kvm(vm);
	if (!err)
		err = check_vcpu_count(vm, nvcpus);
	if (!err && mem_fd < 0)
		err = check_options(vm, ram_size);
	if (!err)
		err = create_vm_fd(vm);
	if (!err)
		err = map_memory(vm, ram_size, mem_fd);
	else if (mem_fd >= 0)
		close(mem_fd);
	if (!err)
		err = create_irqchip(vm);
	log_debug("guest memory registered, irqchip and PIT created");
	if (!err)
		err = create_vcpus(vm);
	log_debug("VM with %d vCPUs and %llu MiB: %s", nvcpus,
		  (unsigned long long)(ram_size >> 20), err ? "failed" : "ready");
	return err;
}

int vm_create(struct vm *vm, int nvcpus, uint64_t ram_mib)
{
	return create(vm, nvcpus, ram_mib << 20, -1, NULL);
}

int vm_create_with(struct vm *vm, int nvcpus, uint64_t ram_mib, const struct vm_options *opts)
{
	return create(vm, nvcpus, ram_mib << 20, -1, opts);
}

int vm_create_restored(struct vm *vm, int nvcpus, uint64_t ram_size, int mem_fd)
{
	return create(vm, nvcpus, ram_size, mem_fd, NULL);
}

void vm_destroy(struct vm *vm)
{
	for (int i = 0; i < vm->nvirtio; i++)
		virtio_mmio_destroy(vm->virtio[i]);
	vm->nvirtio = 0;
	for (int i = 0; vm->vcpus && i < vm->nvcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	free(vm->state_host);
	vm->state_host = NULL;
	event_loop_destroy(vm->loop);
	vm->loop = NULL;
	guest_mem_destroy(&vm->mem);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->vm_fd = vm->kvm_fd = vm->stop_fd = -1;
}

void vm_request_stop(struct vm *vm, int status)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->stop_requested) {
		vm->stop_requested = true;
		vm->stop_status = status;
		timings_mark(&vm->timings.exit);
		uint64_t one = 1;
		/* No eventfd yet: vm_create failed before it, and nobody waits on it. */
		if (vm->stop_fd >= 0 && write(vm->stop_fd, &one, sizeof(one)) < 0)
			log_warn("stop eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

bool vm_stop_requested(struct vm *vm)
{
	pthread_mutex_lock(&vm->stop_lock);
	bool stop = vm->stop_requested;
	pthread_mutex_unlock(&vm->stop_lock);
	return stop;
}

int vm_set_irq_line(struct vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

int vm_pulse_irq(struct vm *vm, uint32_t gsi)
{
	int err = vm_set_irq_line(vm, gsi, 1);
	return err ? err : vm_set_irq_line(vm, gsi, 0);
}
