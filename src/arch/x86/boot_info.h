/* What the kernel is told at entry: the Linux zero page (struct boot_params) or the
 * PVH struct hvm_start_info, built from the same inputs. */
#ifndef ARGON_ARCH_X86_BOOT_INFO_H
#define ARGON_ARCH_X86_BOOT_INFO_H

#include <stdint.h>

#include "loader/loader.h"
#include "vmm/memory.h"

struct boot_info_input {
	const struct boot_image *image;
	uint64_t cmdline_gpa; /* NUL-terminated, already in guest memory */
	uint32_t cmdline_len; /* without the NUL */
	uint64_t initrd_gpa;  /* 0 when there is none */
	uint64_t initrd_size;
	uint64_t rsdp_gpa;
};

/* Zero page offsets used (Documentation/arch/x86/zero-page.rst and boot.rst). */
#define ZP_ACPI_RSDP_ADDR 0x070
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_SETUP_HEADER 0x1f1
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_LOADFLAGS 0x211
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_CMD_LINE_PTR 0x228
#define ZP_E820_TABLE 0x2d0
#define ZP_E820_MAX 128

#define PVH_START_INFO_MAGIC 0x336ec578u

/* Writes the zero page at LAYOUT_ZERO_PAGE; returns its address, or 0 when guest
 * memory cannot hold it. */
uint64_t zero_page_build(struct guest_mem *mem, const struct boot_info_input *in);
/* Writes hvm_start_info (+ module list and memory map) at LAYOUT_PVH_START_INFO;
 * returns its address, or 0 when it does not fit. */
uint64_t pvh_start_info_build(struct guest_mem *mem, const struct boot_info_input *in);

#endif
