/* The Linux/x86 boot protocol as the loaders need it: setup-header field offsets
 * (file offsets, which equal zero-page offsets), flag bits and magic values.
 * Source: Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header" and
 * "Details of Header Fields". */
#ifndef ARGON_LOADER_BOOTPROTO_H
#define ARGON_LOADER_BOOTPROTO_H

#include <stdint.h>

/* Setup header fields: offset in the bzImage file and in struct boot_params. */
#define BP_SETUP_SECTS 0x1f1	 /* u8, 0 means 4 */
#define BP_SYSSIZE 0x1f4	 /* u32, protected-mode code size in 16-byte units */
#define BP_BOOT_FLAG 0x1fe	 /* u16, 0xAA55 */
#define BP_JUMP 0x200		 /* u16, short jump; its second byte is the header length */
#define BP_HEADER 0x202		 /* u32, "HdrS" */
#define BP_VERSION 0x206	 /* u16, boot protocol version, major << 8 | minor */
#define BP_TYPE_OF_LOADER 0x210	 /* u8 */
#define BP_LOADFLAGS 0x211	 /* u8 */
#define BP_CODE32_START 0x214	 /* u32 */
#define BP_RAMDISK_IMAGE 0x218	 /* u32, written by the boot loader */
#define BP_RAMDISK_SIZE 0x21c	 /* u32, written by the boot loader */
#define BP_CMD_LINE_PTR 0x228	 /* u32, written by the boot loader (2.02+) */
#define BP_INITRD_ADDR_MAX 0x22c /* u32 (2.03+) */
#define BP_KERNEL_ALIGNMENT 0x230 /* u32 (2.05+) */
#define BP_RELOCATABLE 0x234	 /* u8 (2.05+) */
#define BP_XLOADFLAGS 0x236	 /* u16 (2.12+) */
#define BP_CMDLINE_SIZE 0x238	 /* u32 (2.06+) */
#define BP_PAYLOAD_OFFSET 0x248	 /* u32 (2.08+), from the protected-mode code start */
#define BP_PAYLOAD_LENGTH 0x24c	 /* u32 (2.08+) */
#define BP_PREF_ADDRESS 0x258	 /* u64 (2.10+) */
#define BP_INIT_SIZE 0x260	 /* u32 (2.10+) */
#define BP_HANDOVER_OFFSET 0x264 /* u32 (2.11+) */
#define BP_KERNEL_INFO_OFFSET 0x268 /* u32 (2.15+), the last field */

#define BP_SETUP_HEADER_START BP_SETUP_SECTS
#define BP_SETUP_HEADER_MAX_END 0x290 /* where struct boot_params' hdr area ends */
#define BP_SYNTH_HEADER_END 0x26c     /* end of a 2.15 header: after kernel_info_offset */
#define BP_SECTOR_SIZE 512
#define BP_DEFAULT_SETUP_SECTS 4
/* The boot sector signature: bytes 0x55 0xAA at 510, i.e. boot_flag == 0xAA55. */
#define BP_BOOT_FLAG_MAGIC 0xAA55
#define BP_HEADER_MAGIC 0x53726448 /* "HdrS" little-endian */
#define BP_TYPE_OF_LOADER_UNDEFINED 0xff

#define BP_PROTOCOL(major, minor) (((major) << 8) | (minor))
#define BP_PROTOCOL_MIN BP_PROTOCOL(2, 6)	 /* cmdline_size, our minimum */
#define BP_PROTOCOL_PAYLOAD BP_PROTOCOL(2, 8)	 /* payload_offset/length */
#define BP_PROTOCOL_PREF_ADDR BP_PROTOCOL(2, 10) /* pref_address, init_size */
#define BP_PROTOCOL_XLOADFLAGS BP_PROTOCOL(2, 12)
#define BP_PROTOCOL_SYNTH BP_PROTOCOL(2, 15) /* what a synthesized vmlinux header claims */

/* loadflags */
#define BP_LOADED_HIGH 0x01
/* xloadflags */
#define BP_XLF_KERNEL_64 0x0001
#define BP_XLF_CAN_BE_LOADED_ABOVE_4G 0x0002

/* "64-bit Boot Protocol": the 64-bit entry is 0x200 past the protected-mode start. */
#define BP_ENTRY64_OFFSET 0x200
/* initrd_addr_max for protocols that do not state it ("Details of Header Fields"). */
#define BP_INITRD_ADDR_MAX_DEFAULT 0x37FFFFFFULL
/* kernel_alignment a vmlinux gets in its synthesized header (2 MiB would do for
 * x86-64; 16 MiB is what Linux's own defconfig builds ask for). */
#define BP_SYNTH_KERNEL_ALIGNMENT 0x1000000U
/* COMMAND_LINE_SIZE of x86 Linux, minus the NUL: what a vmlinux accepts. */
#define BP_SYNTH_CMDLINE_SIZE 2047U

static inline uint16_t bp_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t bp_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t bp_le64(const uint8_t *p)
{
	return (uint64_t)bp_le32(p) | (uint64_t)bp_le32(p + 4) << 32;
}

static inline void bp_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void bp_put32(uint8_t *p, uint32_t v)
{
	bp_put16(p, (uint16_t)v);
	bp_put16(p + 2, (uint16_t)(v >> 16));
}

static inline void bp_put64(uint8_t *p, uint64_t v)
{
	bp_put32(p, (uint32_t)v);
	bp_put32(p + 4, (uint32_t)(v >> 32));
}

#endif
