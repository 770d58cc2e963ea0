/* The Linux boot protocol's zero page (struct boot_params). */
#include <string.h>

#include "arch/x86/boot_info.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

#define LOADFLAGS_LOADED_HIGH 0x01
#define LOADER_TYPE_UNDEFINED 0xff /* boot.rst: "0xFF: undefined"; we have no assigned id */

static void put32(uint8_t *zp, uint32_t offset, uint32_t v)
{
	memcpy(zp + offset, &v, sizeof(v));
}

static void put64(uint8_t *zp, uint32_t offset, uint64_t v)
{
	memcpy(zp + offset, &v, sizeof(v));
}

uint64_t zero_page_build(struct guest_mem *mem, const struct boot_info_input *in)
{
	uint8_t *zp = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, 4096);
	if (!zp)
		return 0;
	memset(zp, 0, 4096);
	const struct boot_image *img = in->image;
	size_t hdr_len = img->setup_header_len;
	if (hdr_len > sizeof(img->setup_header))
		hdr_len = sizeof(img->setup_header);
	memcpy(zp + ZP_SETUP_HEADER, img->setup_header, hdr_len);
	zp[ZP_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
	zp[ZP_LOADFLAGS] |= LOADFLAGS_LOADED_HIGH;
	put32(zp, ZP_CMD_LINE_PTR, (uint32_t)in->cmdline_gpa);
	put32(zp, ZP_EXT_CMD_LINE_PTR, (uint32_t)(in->cmdline_gpa >> 32));
	put32(zp, ZP_RAMDISK_IMAGE, (uint32_t)in->initrd_gpa);
	put32(zp, ZP_RAMDISK_SIZE, (uint32_t)in->initrd_size);
	put32(zp, ZP_EXT_RAMDISK_IMAGE, (uint32_t)(in->initrd_gpa >> 32));
	put32(zp, ZP_EXT_RAMDISK_SIZE, (uint32_t)(in->initrd_size >> 32));
	put64(zp, ZP_ACPI_RSDP_ADDR, in->rsdp_gpa);
	struct e820_entry map[ZP_E820_MAX];
	int n = e820_build(mem, map, ZP_E820_MAX);
	if (n < 0)
		return 0;
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + ZP_E820_TABLE, map, (size_t)n * sizeof(map[0]));
	return LAYOUT_ZERO_PAGE;
}
