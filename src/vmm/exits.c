#include "vmm/exits.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/exit_status.h"
#include "common/log.h"
#include "common/util.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

typedef int (*exit_handler)(struct vcpu *vcpu);

static const char *const reason_names[EXIT_REASON_MAX] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN",
	[KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO",
	[KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG",
	[KVM_EXIT_HLT] = "HLT",
	[KVM_EXIT_MMIO] = "MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
	[KVM_EXIT_INTR] = "INTR",
	[KVM_EXIT_SET_TPR] = "SET_TPR",
	[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	[KVM_EXIT_NMI] = "NMI",
	[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
	[KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
	[KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
};

const char *exit_reason_name(uint32_t reason)
{
	if (reason < EXIT_REASON_MAX && reason_names[reason])
		return reason_names[reason];
	return "UNKNOWN";
}

static uint64_t guest_rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;
	return ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ? 0 : regs.rip;
}

static int handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t offset = run->io.data_offset;
	/* rep ins/outs: count items of size bytes, all inside the kvm_run mapping. */
	if ((size != 1 && size != 2 && size != 4) ||
	    offset + (uint64_t)size * count > (uint64_t)vcpu->vm->vcpu_mmap_size) {
		log_error("vCPU %d: port I/O exit with size %u count %u at offset %llu",
			  vcpu->index, size, count, (unsigned long long)offset);
		return EXIT_INTERNAL;
	}
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + offset;
	for (uint32_t i = 0; i < count; i++, data += size)
		bus_access(&vcpu->vm->pio_bus, run->io.port, data, size, is_write);
	return 0;
}

static int handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_error("vCPU %d: MMIO exit of %u bytes", vcpu->index, len);
		return EXIT_INTERNAL;
	}
	bus_access(&vcpu->vm->mmio_bus, run->mmio.phys_addr, run->mmio.data, len,
		   run->mmio.is_write);
	return 0;
}

static int handle_shutdown(struct vcpu *vcpu)
{
	log_error("vCPU %d: guest triple fault (KVM_EXIT_SHUTDOWN) at RIP 0x%llx", vcpu->index,
		  (unsigned long long)guest_rip(vcpu));
	return EXIT_TRIPLE_FAULT;
}

static int handle_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char words[160] = "";
	size_t used = 0;
	uint32_t n = MIN(run->internal.ndata, 8u);
	for (uint32_t i = 0; i < n && used < sizeof(words); i++)
		used += (size_t)snprintf(words + used, sizeof(words) - used, " 0x%llx",
					 (unsigned long long)run->internal.data[i]);
	log_error("vCPU %d: KVM internal error (KVM_EXIT_INTERNAL_ERROR, suberror %u%s) at RIP "
		  "0x%llx, data:%s",
		  vcpu->index, run->internal.suberror,
		  run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? ": emulation failure" : "",
		  (unsigned long long)guest_rip(vcpu), used ? words : " none");
	return EXIT_KVM_INTERNAL;
}

static int handle_fail_entry(struct vcpu *vcpu)
{
	log_error("vCPU %d: KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx, at RIP 0x%llx",
		  vcpu->index,
		  (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason,
		  (unsigned long long)guest_rip(vcpu));
	return EXIT_KVM_FAIL_ENTRY;
}

static int handle_system_event(struct vcpu *vcpu)
{
	uint32_t type = vcpu->run->system_event.type;
	if (type == KVM_SYSTEM_EVENT_SHUTDOWN || type == KVM_SYSTEM_EVENT_RESET) {
		log_info("vCPU %d: guest %s", vcpu->index,
			 type == KVM_SYSTEM_EVENT_SHUTDOWN ? "powered off" : "reset");
		vm_request_stop(vcpu->vm, EXIT_GUEST_OK);
		return 0;
	}
	log_error("vCPU %d: unhandled system event %u at RIP 0x%llx", vcpu->index, type,
		  (unsigned long long)guest_rip(vcpu));
	return EXIT_UNHANDLED;
}

/* A signal kicked the vCPU out (stop request); the run loop checks why. */
static int handle_intr(struct vcpu *vcpu)
{
	return 0;
}

static const exit_handler handlers[EXIT_REASON_MAX] = {
	[KVM_EXIT_IO] = handle_io,
	[KVM_EXIT_MMIO] = handle_mmio,
	[KVM_EXIT_SHUTDOWN] = handle_shutdown,
	[KVM_EXIT_INTERNAL_ERROR] = handle_internal_error,
	[KVM_EXIT_FAIL_ENTRY] = handle_fail_entry,
	[KVM_EXIT_SYSTEM_EVENT] = handle_system_event,
	[KVM_EXIT_INTR] = handle_intr,
};

int exits_handle(struct vcpu *vcpu)
{
	uint32_t reason = vcpu->run->exit_reason;
	if (reason < EXIT_REASON_MAX)
		__atomic_add_fetch(&vcpu->vm->exits.by_reason[reason], 1, __ATOMIC_RELAXED);
	exit_handler handler = reason < EXIT_REASON_MAX ? handlers[reason] : NULL;
	if (!handler) {
		log_error("vCPU %d: unhandled exit %s (%u) at RIP 0x%llx", vcpu->index,
			  exit_reason_name(reason), reason, (unsigned long long)guest_rip(vcpu));
		return EXIT_UNHANDLED;
	}
	return handler(vcpu);
}

void exits_print(const struct exit_counters *c, FILE *out)
{
	fputs("exits:", out);
	bool any = false;
	for (uint32_t r = 0; r < EXIT_REASON_MAX; r++) {
		uint64_t n = __atomic_load_n(&c->by_reason[r], __ATOMIC_RELAXED);
		if (n) {
			fprintf(out, " %s=%llu", exit_reason_name(r), (unsigned long long)n);
			any = true;
		}
	}
	fputs(any ? "\n" : " none\n", out);
}
