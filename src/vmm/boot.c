#include "vmm/boot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot_info.h"
#include "arch/x86/boot_regs.h"
#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "devices/device_kind.h"
#include "devices/virtio/virtio.h"
#include "loader/loader.h"
#include "vmm/vcpu.h"

static int status_for_load_error(int err)
{
	switch (err) {
	case -ENOENT:
	case -EACCES:
	case -EISDIR:
		return EXIT_NO_FILE;
	case -ENOMEM:
	case -EMFILE:
	case -ENFILE:
		return EXIT_HOST_RESOURCE;
	default:
		return EXIT_IMAGE; /* -ENOEXEC, -EFBIG, -EINVAL: the image itself */
	}
}

static int write_cmdline(struct vm *vm, const char *cmdline, struct boot_info_input *in)
{
	size_t len = strlen(cmdline);
	if (len + 1 > LAYOUT_CMDLINE_MAX) {
		log_error("boot_args: %zu bytes, at most %llu", len,
			  (unsigned long long)LAYOUT_CMDLINE_MAX - 1);
		return EXIT_USAGE;
	}
	char *dst = guest_mem_ptr(&vm->mem, LAYOUT_CMDLINE, len + 1);
	if (!dst) {
		log_error("guest memory too small for the command line");
		return EXIT_USAGE;
	}
	memcpy(dst, cmdline, len + 1);
	log_info("kernel command line: %s", cmdline);
	in->cmdline_gpa = LAYOUT_CMDLINE;
	in->cmdline_len = (uint32_t)len;
	return 0;
}

/* Appends " virtio_mmio.device=4K@0xd0000000:5" per device: the form Linux's
 * virtio_mmio driver reads (and argon-guest too) when it does not use ACPI. */
static char *cmdline_with_devices(struct vm *vm, const char *cmdline)
{
	size_t len = strlen(cmdline) + 1 + (size_t)vm->nvirtio * 48;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t used = (size_t)snprintf(s, len, "%s", cmdline);
	for (int i = 0; i < vm->nvirtio && used < len; i++)
		used += (size_t)snprintf(s + used, len - used, " virtio_mmio.device=%lluK@0x%llx:%u",
					 (unsigned long long)(LAYOUT_VIRTIO_MMIO_SIZE >> 10),
					 (unsigned long long)vm->virtio[i]->mmio_base,
					 vm->virtio[i]->gsi);
	return s;
}

/* What the devices add to the command line (a drive's root=), each kind asked once. */
static void device_args(const struct vm_config *cfg, const char *cmdline, char *out, size_t len)
{
	out[0] = '\0';
	for (int k = 0; device_kinds[k]; k++)
		if (device_kinds[k]->kernel_args)
			device_kinds[k]->kernel_args(cfg, cmdline, out, len);
}

static int place_cmdline(struct vm *vm, const struct vm_config *cfg, struct boot_info_input *in)
{
	const char *user = cfg->cmdline ? cfg->cmdline : CONFIG_DEFAULT_CMDLINE;
	char root[32];
	device_args(cfg, user, root, sizeof(root));
	char *with_root = malloc(strlen(user) + sizeof(root));
	if (!with_root)
		return EXIT_HOST_RESOURCE;
	strcpy(with_root, user);
	strcat(with_root, root);
	char *cmdline = cmdline_with_devices(vm, with_root);
	free(with_root);
	if (!cmdline)
		return EXIT_HOST_RESOURCE;
	int status = write_cmdline(vm, cmdline, in);
	free(cmdline);
	return status;
}

static int load_images(struct vm *vm, const struct vm_config *cfg, struct boot_image *img,
		       struct boot_info_input *in)
{
	char msg[512];
	int err = load_kernel(&vm->mem, cfg->kernel_path, img, msg, sizeof(msg));
	if (err) {
		log_error("%s", msg);
		return status_for_load_error(err);
	}
	log_info("%s: %s entry at 0x%llx, loaded 0x%llx-0x%llx, compression %s",
		 cfg->kernel_path, img->entry_kind == BOOT_ENTRY_PVH ? "PVH" : "64-bit Linux",
		 (unsigned long long)img->entry, (unsigned long long)img->load_start,
		 (unsigned long long)img->load_end, img->compression ? img->compression : "none");
	if (!cfg->initrd_path)
		return 0;
	err = load_initrd(&vm->mem, cfg->initrd_path, img->initrd_addr_max, img->load_end,
			  &in->initrd_gpa, &in->initrd_size, msg, sizeof(msg));
	if (err) {
		log_error("%s", msg);
		return status_for_load_error(err);
	}
	log_info("%s: initrd at 0x%llx-0x%llx (%llu bytes)", cfg->initrd_path,
		 (unsigned long long)in->initrd_gpa,
		 (unsigned long long)(in->initrd_gpa + in->initrd_size - 1),
		 (unsigned long long)in->initrd_size);
	return 0;
}

static int build_firmware(struct vm *vm, struct boot_info_input *in)
{
	struct acpi_mmio_device devices[VM_MAX_VIRTIO_DEVICES];
	for (int i = 0; i < vm->nvirtio; i++)
		devices[i] = (struct acpi_mmio_device){ .base = vm->virtio[i]->mmio_base,
							 .size = LAYOUT_VIRTIO_MMIO_SIZE,
							 .irq = vm->virtio[i]->gsi };
	struct acpi_config acpi = { .ncpus = vm->nvcpus, .mmio_devices = devices,
				    .nmmio_devices = vm->nvirtio };
	int err = acpi_build(&vm->mem, &acpi, &in->rsdp_gpa);
	if (err) {
		log_error("ACPI tables: %s", strerror(-err));
		return EXIT_INTERNAL;
	}
	err = mptable_build(&vm->mem, vm->nvcpus);
	if (err) {
		log_error("MP table: %s", strerror(-err));
		return EXIT_INTERNAL;
	}
	return 0;
}

int boot_prepare(struct vm *vm, const struct vm_config *cfg)
{
	struct boot_image img;
	struct boot_info_input in = { .image = &img };
	memset(&img, 0, sizeof(img));
	int status = load_images(vm, cfg, &img, &in);
	if (!status)
		status = place_cmdline(vm, cfg, &in);
	if (!status)
		status = build_firmware(vm, &in);
	if (status)
		return status;
	uint64_t info = img.entry_kind == BOOT_ENTRY_PVH ? pvh_start_info_build(&vm->mem, &in)
							: zero_page_build(&vm->mem, &in);
	if (!info) {
		log_error("guest memory too small for the boot information");
		return EXIT_USAGE;
	}
	int err = boot_regs_setup(&vm->mem, vm->vcpus[0].fd, img.entry_kind, img.entry, info);
	if (err) {
		log_error("boot vCPU registers: %s", strerror(-err));
		return EXIT_NO_KVM;
	}
	return 0;
}
