/* Kernel image loaders: bzImage (Linux x86 boot protocol; the compressed payload is
 * decompressed on the host and its ELF loaded directly) and ELF vmlinux (PVH entry
 * when the image carries the Xen PVH ELF note, else the 64-bit Linux entry). */
#ifndef ARGON_LOADER_LOADER_H
#define ARGON_LOADER_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

enum boot_entry_kind {
	BOOT_ENTRY_LINUX64, /* 64-bit mode, paging on, RSI = zero page */
	BOOT_ENTRY_PVH,	    /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_image {
	enum boot_entry_kind entry_kind;
	uint64_t entry;	     /* guest-physical entry point */
	uint64_t load_start; /* lowest guest-physical byte the kernel occupies */
	uint64_t load_end;   /* one past the highest */
	/* Linux boot protocol only: the setup header to copy into the zero page at
	 * offset 0x1f1 (from the bzImage, or synthesized for a vmlinux), and its length. */
	uint8_t setup_header[0x290 - 0x1f1];
	size_t setup_header_len;
	uint16_t protocol_version;   /* 0 when unknown (vmlinux) */
	uint64_t initrd_addr_max;    /* highest address an initrd may end at, inclusive */
	const char *compression;     /* "gzip", "lz4", ... or "none" */
};

/* Loads the kernel image at path into guest memory. On failure returns a negative
 * errno (-ENOENT, -EACCES: the file; -ENOEXEC: not a kernel we understand; -EFBIG:
 * does not fit in guest memory) and writes a one-line reason naming the file and
 * what was expected into err. */
int load_kernel(struct guest_mem *mem, const char *path, struct boot_image *out, char *err,
		size_t errlen);

/* Same, from a buffer already in memory (for unit tests and fuzzing); name is used
 * in messages. */
int load_kernel_buffer(struct guest_mem *mem, const char *name, const uint8_t *data, size_t len,
		       struct boot_image *out, char *err, size_t errlen);

/* Places the initrd at path as high as allowed: below min(initrd_addr_max + 1, end of
 * low RAM), page aligned, above kernel_end. Returns 0 with *gpa and *size set, or a
 * negative errno with a reason in err (-EFBIG: does not fit). */
int load_initrd(struct guest_mem *mem, const char *path, uint64_t initrd_addr_max,
		uint64_t kernel_end, uint64_t *gpa, uint64_t *size, char *err, size_t errlen);

#endif
