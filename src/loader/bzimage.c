/* bzImage (boot.rst): the setup header is checked and kept for the zero page; the
 * payload is decompressed here on the host and its ELF loaded directly, because
 * under PVM's instruction emulator the kernel's own decompressor would run for
 * hours (PVM.md). A payload that is not an ELF (argon-guest's flat image) falls
 * back to the plain 64-bit boot protocol: protected-mode code at its preferred
 * address, entered 0x200 bytes in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "common/log.h"
#include "common/util.h"
#include "loader/bootproto.h"
#include "loader/decompress.h"
#include "loader/loader_internal.h"

struct bz_header {
	uint16_t version;
	uint16_t xloadflags;
	uint32_t code32_start;
	uint32_t initrd_addr_max;
	uint32_t payload_offset; /* from the protected-mode code start */
	uint32_t payload_length;
	uint32_t init_size;
	uint64_t pref_address;
	size_t hdr_end;	  /* one past the setup header: 0x202 + the byte at 0x201 */
	size_t pm_offset; /* protected-mode code start in the file */
};

/* The boot sector signature 0xAA55 at 0x1fe and "HdrS" at 0x202 ("The Real-Mode
 * Kernel Header": a protocol 2.00+ kernel). */
bool bzimage_detect(const uint8_t *data, size_t len)
{
	return len >= BP_HEADER + 4 && bp_le16(data + BP_BOOT_FLAG) == BP_BOOT_FLAG_MAGIC &&
	       bp_le32(data + BP_HEADER) == BP_HEADER_MAGIC;
}

/* Protocol version and 64-bit entry: we need 2.06 and XLF_KERNEL_64 (2.12+). */
static int bz_check_protocol(const char *name, const struct bz_header *h, char *err,
			     size_t errlen)
{
	unsigned major = h->version >> 8, minor = h->version & 0xff;
	if (h->version < BP_PROTOCOL_MIN)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: bzImage boot protocol %u.%02u is too old: argon needs 2.06 or "
				   "newer",
				   name, major, minor);
	if (h->version < BP_PROTOCOL_XLOADFLAGS || !(h->xloadflags & BP_XLF_KERNEL_64))
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: bzImage (boot protocol %u.%02u) has no 64-bit entry point: "
				   "XLF_KERNEL_64 is not set in xloadflags at 0x236",
				   name, major, minor);
	if (h->hdr_end < BP_PAYLOAD_LENGTH + 4)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: setup header length byte 0x%02zx at 0x201 ends the header at "
				   "0x%zx, before payload_length at 0x24c",
				   name, h->hdr_end - (BP_JUMP + 2), h->hdr_end);
	return 0;
}

/* "Details of Header Fields". Every read below stays under 0x290 <= pm_offset < len. */
static int bz_parse(const char *name, const uint8_t *data, size_t len, struct bz_header *h,
		    char *err, size_t errlen)
{
	unsigned sects = data[BP_SETUP_SECTS] ? data[BP_SETUP_SECTS] : BP_DEFAULT_SETUP_SECTS;
	h->pm_offset = (size_t)(sects + 1) * BP_SECTOR_SIZE;
	if (len <= h->pm_offset)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: truncated bzImage: %zu bytes, but its %u setup sectors alone "
				   "take %zu",
				   name, len, sects + 1, h->pm_offset);
	h->version = bp_le16(data + BP_VERSION);
	h->xloadflags = bp_le16(data + BP_XLOADFLAGS);
	h->code32_start = bp_le32(data + BP_CODE32_START);
	h->initrd_addr_max = bp_le32(data + BP_INITRD_ADDR_MAX);
	h->payload_offset = bp_le32(data + BP_PAYLOAD_OFFSET);
	h->payload_length = bp_le32(data + BP_PAYLOAD_LENGTH);
	h->init_size = bp_le32(data + BP_INIT_SIZE);
	h->pref_address = bp_le64(data + BP_PREF_ADDRESS);
	h->hdr_end = MIN((size_t)BP_JUMP + 2 + data[BP_JUMP + 1], (size_t)BP_SETUP_HEADER_MAX_END);
	return bz_check_protocol(name, h, err, errlen);
}

/* The setup header bytes 0x1f1 .. hdr_end go to the zero page unchanged ("The
 * Real-Mode Kernel Header"; the VMM then fills the loader-owned fields). */
static void bz_fill_image(const uint8_t *data, const struct bz_header *h, struct boot_image *out)
{
	out->setup_header_len = h->hdr_end - BP_SETUP_HEADER_START;
	memcpy(out->setup_header, data + BP_SETUP_HEADER_START, out->setup_header_len);
	out->protocol_version = h->version;
	/* initrd_addr_max exists from 2.03 on; 0 would forbid every initrd: use the default. */
	out->initrd_addr_max = h->initrd_addr_max ? h->initrd_addr_max : BP_INITRD_ADDR_MAX_DEFAULT;
}

/* 64-bit Boot Protocol without host decompression: the protected-mode code goes to
 * pref_address (2.10+, the address a relocatable kernel prefers) or code32_start,
 * with room for init_size bytes, and is entered at +0x200. */
static int bz_load_raw(struct guest_mem *mem, const char *name, const uint8_t *data, size_t len,
		       const struct bz_header *h, struct boot_image *out, char *err, size_t errlen)
{
	bool pref = h->version >= BP_PROTOCOL_PREF_ADDR && h->pref_address;
	uint64_t load = pref ? h->pref_address : h->code32_start;
	uint64_t code_len = len - h->pm_offset;
	uint64_t need = MAX(code_len, h->version >= BP_PROTOCOL_PREF_ADDR ? h->init_size : 0);
	if (code_len <= BP_ENTRY64_OFFSET)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: bzImage protected-mode code is only %llu bytes, too short for "
				   "a 64-bit entry at +0x200",
				   name, (unsigned long long)code_len);
	if (load < LAYOUT_HIMEM_START)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: bzImage wants its code at 0x%llx (%s), below 1 MiB", name,
				   (unsigned long long)load, pref ? "pref_address" : "code32_start");
	if (need > UINT64_MAX - load || !guest_mem_contains(mem, load, need))
		return loader_fail(err, errlen, -EFBIG,
				   "%s: bzImage code at 0x%llx needs 0x%llx bytes (code and init_size), "
				   "beyond guest RAM (%llu MiB, low RAM ends at 0x%llx)",
				   name, (unsigned long long)load, (unsigned long long)need,
				   (unsigned long long)(mem->ram_size >> 20),
				   (unsigned long long)guest_mem_low_end(mem));
	uint8_t *dst = guest_mem_ptr(mem, load, need);
	memcpy(dst, data + h->pm_offset, code_len);
	if (!mem->zero_filled) /* fresh memory is already zero */
		memset(dst + code_len, 0, need - code_len);
	mem->zero_filled = false;
	out->entry_kind = BOOT_ENTRY_LINUX64;
	out->entry = load + BP_ENTRY64_OFFSET;
	out->load_start = load;
	out->load_end = load + need;
	return 0;
}

/* Checks the size the kernel build appends to the payload (le32, last 4 bytes):
 * it sizes our buffer, bounded by LOADER_MAX_IMAGE and guest RAM (the ELF it
 * becomes has to fit there), and is never trusted for writes. */
static int bz_declared_size(const char *name, const struct codec *c, const uint8_t *p,
			    size_t plen, const struct guest_mem *mem, size_t *size, char *err,
			    size_t errlen)
{
	if (plen < c->magic_len + 4)
		return loader_fail(err, errlen, -ENOEXEC, "%s: %s payload of %zu bytes is truncated",
				   name, c->name, plen);
	uint32_t declared = bp_le32(p + plen - 4);
	if (declared < 64)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: %s payload declares %u uncompressed bytes (le32 at its end), "
				   "too few for a kernel",
				   name, c->name, declared);
	if (declared > LOADER_MAX_IMAGE || declared > mem->ram_size)
		return loader_fail(err, errlen, -EFBIG,
				   "%s: %s payload declares %u uncompressed bytes, more than guest RAM "
				   "(%llu MiB) or the %llu MiB limit",
				   name, c->name, declared, (unsigned long long)(mem->ram_size >> 20),
				   LOADER_MAX_IMAGE >> 20);
	*size = declared;
	return 0;
}

/* Decompresses the payload into a host buffer and loads the ELF it holds. */
static int bz_load_compressed(struct guest_mem *mem, const char *name, const struct codec *c,
			      const uint8_t *p, size_t plen, struct boot_image *out, char *err,
			      size_t errlen)
{
	size_t cap = 0, n = 0;
	int rc = bz_declared_size(name, c, p, plen, mem, &cap, err, errlen);
	if (rc)
		return rc;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return loader_fail(err, errlen, -ENOMEM, "%s: cannot allocate %zu bytes", name, cap);
	char why[160];
	rc = codec_decompress(c, p, plen, buf, cap, &n, why, sizeof(why));
	if (rc == -EFBIG)
		rc = loader_fail(err, errlen, -ENOEXEC,
				 "%s: %s payload %s, the size its last 4 bytes declare", name,
				 c->name, why);
	else if (rc)
		loader_fail(err, errlen, rc, "%s: %s payload: %s", name, c->name, why);
	else if (!elf_detect(buf, n))
		rc = loader_fail(err, errlen, -ENOEXEC,
				 "%s: decompressed %s payload (%zu bytes) is not an ELF kernel", name,
				 c->name, n);
	if (rc == 0) {
		char label[512];
		snprintf(label, sizeof(label), "%s (%s payload)", name, c->name);
		rc = elf_load(mem, label, buf, n, false, out, err, errlen);
	}
	free(buf);
	return rc;
}

/* payload_offset/payload_length (2.08+): the payload must lie inside the file. */
static int bz_payload(const char *name, size_t len, const struct bz_header *h, size_t *start,
		      char *err, size_t errlen)
{
	uint64_t first = (uint64_t)h->pm_offset + h->payload_offset;
	uint64_t end = first + h->payload_length;
	if (end > len)
		return loader_fail(err, errlen, -ENOEXEC,
				   "%s: bzImage payload [0x%llx, 0x%llx) runs past the end of the file "
				   "(%zu bytes): truncated, or lying payload_offset/payload_length",
				   name, (unsigned long long)first, (unsigned long long)end, len);
	*start = (size_t)first;
	return 0;
}

int bzimage_load(struct guest_mem *mem, const char *name, const uint8_t *data, size_t len,
		 struct boot_image *out, char *err, size_t errlen)
{
	struct bz_header h = { 0 };
	size_t start = 0;
	int rc = bz_parse(name, data, len, &h, err, errlen);
	if (rc == 0 && h.payload_length)
		rc = bz_payload(name, len, &h, &start, err, errlen);
	if (rc)
		return rc;
	bz_fill_image(data, &h, out);
	const uint8_t *p = data + start;
	const struct codec *c = h.payload_length ? codec_detect(p, h.payload_length) : NULL;
	if (c) {
		out->compression = c->name;
		return bz_load_compressed(mem, name, c, p, h.payload_length, out, err, errlen);
	}
	if (h.payload_length && elf_detect(p, h.payload_length)) {
		char label[512];
		snprintf(label, sizeof(label), "%s (ELF payload)", name);
		out->compression = "none";
		return elf_load(mem, label, p, h.payload_length, false, out, err, errlen);
	}
	/* No payload, or one we cannot read: the kernel's own entry handles it. */
	out->compression = h.payload_length ? "unknown" : "none";
	if (h.payload_length)
		log_warn("%s: bzImage payload is neither ELF nor a known compression; the kernel "
			 "will decompress itself", name);
	return bz_load_raw(mem, name, data, len, &h, out, err, errlen);
}
