/* ELF64 x86-64 kernels (a vmlinux, or the ELF inside a bzImage payload): PT_LOAD
 * segments at their physical addresses, entry from the Xen PVH note or e_entry.
 * Every header field is hostile: read through memcpy (no alignment assumed), every
 * offset and size checked against the buffer and for 64-bit wrap-around first. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "common/util.h"
#include "loader/bootproto.h"
#include "loader/loader_internal.h"

#define ELF_MAX_PHDRS 256
/* Xen's public elfnote.h: the 32-bit physical PVH entry point. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
/* __START_KERNEL_map: kernel text virtual addresses on x86-64 start here. */
#define ELF_KERNEL_VIRT_BASE 0xffffffff80000000ULL

struct elf_image {
	const char *label;
	const uint8_t *data;
	size_t len;
	Elf64_Ehdr eh;
	char *err;
	size_t errlen;
};

bool elf_detect(const uint8_t *data, size_t len)
{
	return len >= SELFMAG && memcmp(data, ELFMAG, SELFMAG) == 0;
}

static int elf_bad(struct elf_image *im, const char *what)
{
	return loader_fail(im->err, im->errlen, -ENOEXEC, "%s: not an x86-64 ELF kernel (%s)",
			   im->label, what);
}

static int elf_check_header(struct elf_image *im)
{
	if (im->len < sizeof(Elf64_Ehdr))
		return elf_bad(im, "truncated ELF header");
	memcpy(&im->eh, im->data, sizeof(im->eh));
	const Elf64_Ehdr *eh = &im->eh;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return elf_bad(im, "not ELFCLASS64");
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return elf_bad(im, "not little-endian");
	if (eh->e_machine != EM_X86_64)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: not an x86-64 ELF kernel (e_machine %u, expected %u EM_X86_64)",
				   im->label, eh->e_machine, EM_X86_64);
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return elf_bad(im, "e_type is neither ET_EXEC nor ET_DYN");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return elf_bad(im, "unexpected e_phentsize");
	if (eh->e_phnum == 0 || eh->e_phnum > ELF_MAX_PHDRS)
		return elf_bad(im, "no program headers, or too many");
	uint64_t table = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > im->len || table > im->len - eh->e_phoff)
		return elf_bad(im, "program headers past the end of the file");
	return 0;
}

static Elf64_Phdr elf_phdr(const struct elf_image *im, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, im->data + im->eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

/* A PT_LOAD segment must come from inside the file and land in guest RAM at or
 * above LAYOUT_HIMEM_START (low memory holds the zero page, page tables, ...). */
static int elf_check_load(struct elf_image *im, const struct guest_mem *mem, unsigned i,
			  const Elf64_Phdr *ph)
{
	if (ph->p_filesz > ph->p_memsz)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: segment %u: p_filesz 0x%llx > p_memsz 0x%llx", im->label, i,
				   (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
	if (ph->p_offset > im->len || ph->p_filesz > im->len - ph->p_offset)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: segment %u: file bytes [0x%llx, +0x%llx) past the end of the "
				   "image (%zu bytes): truncated?",
				   im->label, i, (unsigned long long)ph->p_offset,
				   (unsigned long long)ph->p_filesz, im->len);
	if (ph->p_memsz > UINT64_MAX - ph->p_paddr)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: segment %u: 0x%llx + 0x%llx wraps past 2^64", im->label, i,
				   (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz);
	if (ph->p_paddr < LAYOUT_HIMEM_START)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: segment %u at 0x%llx is below 1 MiB (0x%llx), which belongs "
				   "to the boot structures",
				   im->label, i, (unsigned long long)ph->p_paddr, LAYOUT_HIMEM_START);
	if (!guest_mem_contains(mem, ph->p_paddr, ph->p_memsz))
		return loader_fail(im->err, im->errlen, -EFBIG,
				   "%s: segment %u [0x%llx, 0x%llx) is not inside guest RAM (%llu MiB, "
				   "low RAM ends at 0x%llx)",
				   im->label, i, (unsigned long long)ph->p_paddr,
				   (unsigned long long)(ph->p_paddr + ph->p_memsz),
				   (unsigned long long)(mem->ram_size >> 20),
				   (unsigned long long)guest_mem_low_end(mem));
	return 0;
}

/* First pass: every PT_LOAD is checked before anything is written, and the range
 * the kernel occupies is computed. Empty segments are ignored. */
static int elf_check_segments(struct elf_image *im, const struct guest_mem *mem,
			      struct boot_image *out)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	unsigned nload = 0;
	for (unsigned i = 0; i < im->eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(im, i);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		int rc = elf_check_load(im, mem, i, &ph);
		if (rc)
			return rc;
		lo = MIN(lo, ph.p_paddr);
		hi = MAX(hi, ph.p_paddr + ph.p_memsz);
		nload++;
	}
	if (nload == 0)
		return elf_bad(im, "no PT_LOAD segment");
	out->load_start = lo;
	out->load_end = hi;
	return 0;
}

/* Second pass: file bytes to p_paddr, the rest of p_memsz (bss) zeroed unless the
 * memory is still as created (all zero). */
static void elf_copy_segments(const struct elf_image *im, struct guest_mem *mem)
{
	for (unsigned i = 0; i < im->eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(im, i);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		uint8_t *dst = guest_mem_ptr(mem, ph.p_paddr, ph.p_memsz);
		memcpy(dst, im->data + ph.p_offset, ph.p_filesz);
		if (!mem->zero_filled)
			memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	mem->zero_filled = false;
}

/* Walks one note list (Elf64_Nhdr; name and desc each start on an align boundary
 * from the segment start). Returns 1 with *entry set when the Xen PVH note is
 * there, 0 when not (a malformed list just ends the walk), -1 when the note is
 * there with a value of the wrong size. */
static int elf_note_pvh(const uint8_t *p, size_t len, size_t align, uint64_t *entry)
{
	size_t off = 0;
	while (len - off >= 12) {
		uint32_t namesz = bp_le32(p + off), descsz = bp_le32(p + off + 4);
		uint32_t type = bp_le32(p + off + 8);
		uint64_t name = off + 12, desc = ALIGN_UP(name + namesz, align);
		if (desc > len || descsz > len - desc)
			return 0;
		off = (size_t)MIN(ALIGN_UP(desc + descsz, align), (uint64_t)len);
		if (namesz != 4 || memcmp(p + name, "Xen", 4) != 0 || type != XEN_ELFNOTE_PHYS32_ENTRY)
			continue;
		if (descsz != 4 && descsz != 8)
			return -1;
		*entry = descsz == 4 ? bp_le32(p + desc) : bp_le64(p + desc);
		return 1;
	}
	return 0;
}

/* The PVH entry from any PT_NOTE segment: 1 found, 0 absent, <0 error. */
static int elf_find_pvh(struct elf_image *im, uint64_t *entry)
{
	for (unsigned i = 0; i < im->eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(im, i);
		if (ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > im->len || ph.p_filesz > im->len - ph.p_offset)
			return loader_fail(im->err, im->errlen, -ENOEXEC,
					   "%s: note segment %u past the end of the image", im->label,
					   i);
		int found = elf_note_pvh(im->data + ph.p_offset, ph.p_filesz,
					 ph.p_align == 8 ? 8 : 4, entry);
		if (found < 0)
			return elf_bad(im, "Xen PVH entry note with a value of neither 4 nor 8 bytes");
		if (found)
			return 1;
	}
	return 0;
}

/* Finds the PT_LOAD holding addr, physically or (virt) virtually; returns the
 * physical address or UINT64_MAX. Only after elf_check_segments (no wrap). */
static uint64_t elf_locate(const struct elf_image *im, uint64_t addr, bool virt)
{
	for (unsigned i = 0; i < im->eh.e_phnum; i++) {
		Elf64_Phdr ph = elf_phdr(im, i);
		uint64_t base = virt ? ph.p_vaddr : ph.p_paddr;
		if (ph.p_type == PT_LOAD && addr >= base && addr - base < ph.p_memsz)
			return ph.p_paddr + (addr - base);
	}
	return UINT64_MAX;
}

/* PVH when allowed and noted (32-bit physical entry); else e_entry, which Linux
 * links as the physical address of startup_64 but which a virtual-address build
 * gives in __START_KERNEL_map: translate that through its segment. */
static int elf_resolve_entry(struct elf_image *im, bool allow_pvh, struct boot_image *out)
{
	uint64_t entry = im->eh.e_entry;
	int found = allow_pvh ? elf_find_pvh(im, &entry) : 0;
	if (found < 0)
		return found;
	if (found && entry > UINT32_MAX)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: PVH entry 0x%llx is above 4 GiB, not a 32-bit entry point",
				   im->label, (unsigned long long)entry);
	out->entry_kind = found ? BOOT_ENTRY_PVH : BOOT_ENTRY_LINUX64;
	if (!found && entry >= ELF_KERNEL_VIRT_BASE) {
		uint64_t phys = elf_locate(im, entry, true);
		if (phys == UINT64_MAX)
			return loader_fail(im->err, im->errlen, -ENOEXEC,
					   "%s: virtual entry 0x%llx is in no PT_LOAD segment",
					   im->label, (unsigned long long)entry);
		entry = phys;
	}
	if (elf_locate(im, entry, false) == UINT64_MAX)
		return loader_fail(im->err, im->errlen, -ENOEXEC,
				   "%s: %s entry 0x%llx is outside every loaded segment", im->label,
				   found ? "PVH" : "ELF", (unsigned long long)entry);
	out->entry = entry;
	return 0;
}

int elf_load(struct guest_mem *mem, const char *label, const uint8_t *data, size_t len,
	     bool allow_pvh, struct boot_image *out, char *err, size_t errlen)
{
	struct elf_image im = { .label = label, .data = data, .len = len, .err = err,
				.errlen = errlen };
	int rc = elf_check_header(&im);
	if (rc == 0)
		rc = elf_check_segments(&im, mem, out);
	if (rc == 0)
		rc = elf_resolve_entry(&im, allow_pvh, out);
	if (rc == 0)
		elf_copy_segments(&im, mem);
	return rc;
}

#define SYNTH(h, off) ((h) + (off) - BP_SETUP_HEADER_START)

/* The fields a boot loader would find in a bzImage's header, filled the way a
 * 2.15 kernel states them (boot.rst, "Details of Header Fields"). The VMM still
 * writes the loader-owned fields (type_of_loader, cmd_line_ptr, ramdisk_*). */
void elf_synth_setup_header(struct boot_image *out)
{
	uint8_t *h = out->setup_header;
	memset(out->setup_header, 0, sizeof(out->setup_header));
	bp_put16(SYNTH(h, BP_BOOT_FLAG), BP_BOOT_FLAG_MAGIC);
	SYNTH(h, BP_JUMP)[0] = 0xeb; /* jmp short over the header, as in header.S */
	SYNTH(h, BP_JUMP)[1] = (uint8_t)(BP_SYNTH_HEADER_END - (BP_JUMP + 2));
	bp_put32(SYNTH(h, BP_HEADER), BP_HEADER_MAGIC);
	bp_put16(SYNTH(h, BP_VERSION), BP_PROTOCOL_SYNTH);
	*SYNTH(h, BP_TYPE_OF_LOADER) = BP_TYPE_OF_LOADER_UNDEFINED;
	*SYNTH(h, BP_LOADFLAGS) = BP_LOADED_HIGH;
	if (out->load_start <= UINT32_MAX)
		bp_put32(SYNTH(h, BP_CODE32_START), (uint32_t)out->load_start);
	bp_put32(SYNTH(h, BP_INITRD_ADDR_MAX), (uint32_t)BP_INITRD_ADDR_MAX_DEFAULT);
	bp_put32(SYNTH(h, BP_KERNEL_ALIGNMENT), BP_SYNTH_KERNEL_ALIGNMENT);
	bp_put16(SYNTH(h, BP_XLOADFLAGS), BP_XLF_KERNEL_64 | BP_XLF_CAN_BE_LOADED_ABOVE_4G);
	bp_put32(SYNTH(h, BP_CMDLINE_SIZE), BP_SYNTH_CMDLINE_SIZE);
	bp_put64(SYNTH(h, BP_PREF_ADDRESS), out->load_start);
	if (out->load_end - out->load_start <= UINT32_MAX)
		bp_put32(SYNTH(h, BP_INIT_SIZE), (uint32_t)(out->load_end - out->load_start));
	out->setup_header_len = BP_SYNTH_HEADER_END - BP_SETUP_HEADER_START;
	out->protocol_version = 0;
	out->initrd_addr_max = BP_INITRD_ADDR_MAX_DEFAULT;
	out->compression = "none";
}
