/* Between the loader's files only: format detection, the two format loaders and
 * the error helper. Everything here treats the image bytes as hostile. */
#ifndef ARGON_LOADER_LOADER_INTERNAL_H
#define ARGON_LOADER_LOADER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

/* Largest kernel file, and largest decompressed payload, we accept. */
#define LOADER_MAX_IMAGE (512ULL << 20)

/* Formats the one-line reason into err (when err is non-NULL) and returns rc. */
int loader_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

bool bzimage_detect(const uint8_t *data, size_t len);
bool elf_detect(const uint8_t *data, size_t len);

/* A bzImage: header checks, then its payload decompressed on the host and loaded as
 * an ELF, or (payload not ELF) its protected-mode code loaded for the 64-bit entry. */
int bzimage_load(struct guest_mem *mem, const char *name, const uint8_t *data, size_t len,
		 struct boot_image *out, char *err, size_t errlen);

/* Loads the PT_LOAD segments of the ELF in data at their physical addresses and sets
 * out->entry_kind/entry/load_start/load_end. With allow_pvh, a Xen PVH note selects
 * BOOT_ENTRY_PVH; otherwise the entry is e_entry (translated when virtual). label
 * names the image in messages. Leaves the other fields of out alone. */
int elf_load(struct guest_mem *mem, const char *label, const uint8_t *data, size_t len,
	     bool allow_pvh, struct boot_image *out, char *err, size_t errlen);

/* A setup header for a bare vmlinux, as a boot loader would present it
 * (boot.rst, "64-bit Boot Protocol": the kernel reads boot_params.hdr). */
void elf_synth_setup_header(struct boot_image *out);

#endif
