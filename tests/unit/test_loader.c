/* Kernel image loaders: ELF vmlinux (PVH note, virtual entry, every truncation and
 * out-of-bounds case), bzImage (uncompressed and compressed payloads, raw fallback,
 * lying headers), initrd placement, and Debian's real cloud kernel when
 * ARGON_DEBIAN_KERNEL names it. Images are built in the tests. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/layout.h"
#include "compress_fixtures.h"
#include "loader/bootproto.h"
#include "loader/loader.h"

#define RAM (64ULL << 20)
#define FILL 0xAA /* guest memory starts dirty so bss zeroing shows */
#define HDR(img, off) ((img).setup_header + (off) - BP_SETUP_HEADER_START)

struct blob {
	uint8_t *p;
	size_t len;
};

struct seg {
	uint32_t type;
	uint64_t paddr, vaddr;
	const void *data;
	uint64_t filesz, memsz;
};

struct fixture {
	struct guest_mem mem;
	struct boot_image img;
	char err[512];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || guest_mem_create_anon(&f->mem, RAM))
		return -1;
	memset(f->mem.mapping, FILL, RAM);
	f->mem.zero_filled = false; /* dirty: the loader must clear bss itself */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_destroy(&f->mem);
	free(f);
	return 0;
}

static uint8_t *gp(struct fixture *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(&f->mem, gpa, len);
	assert_non_null(p);
	return p;
}

/* ELF64 x86-64: header, program headers, then each segment's file bytes. */
static struct blob make_elf(uint64_t entry, const struct seg *segs, size_t n)
{
	size_t off = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr), total = off;
	for (size_t i = 0; i < n; i++)
		total += segs[i].filesz + 16;
	struct blob b = { .p = calloc(1, total), .len = total };
	Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			  .e_entry = entry, .e_phoff = sizeof(Elf64_Ehdr),
			  .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
			  .e_phnum = (uint16_t)n };
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(b.p, &eh, sizeof(eh));
	for (size_t i = 0; i < n; i++) {
		off = (off + 15) & ~(size_t)15;
		Elf64_Phdr ph = { .p_type = segs[i].type, .p_flags = PF_R | PF_X, .p_offset = off,
				  .p_vaddr = segs[i].vaddr, .p_paddr = segs[i].paddr,
				  .p_filesz = segs[i].filesz, .p_memsz = segs[i].memsz, .p_align = 4 };
		memcpy(b.p + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
		if (segs[i].filesz)
			memcpy(b.p + off, segs[i].data, segs[i].filesz);
		off += segs[i].filesz;
	}
	return b;
}

/* Patches program header i of an ELF blob. */
static Elf64_Phdr *phdr_at(struct blob *b, unsigned i)
{
	return (Elf64_Phdr *)(b->p + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
}

static const uint8_t text[] = "\x48\x31\xc0\xf4 startup_64 of a test kernel";
static const uint8_t data[] = "initialized data";

/* A small two-segment kernel at 2 MiB: text, then data with 8 KiB of bss. */
static struct blob small_kernel(uint64_t entry)
{
	const struct seg segs[] = {
		{ PT_LOAD, 0x200000, 0xffffffff81000000ULL, text, sizeof(text), sizeof(text) },
		{ PT_LOAD, 0x201000, 0xffffffff81001000ULL, data, sizeof(data), sizeof(data) + 8192 },
	};
	return make_elf(entry, segs, 2);
}

/* An 8-byte aligned Xen note list holding XEN_ELFNOTE_PHYS32_ENTRY. */
static size_t pvh_note(uint8_t *n, uint64_t entry, uint32_t descsz)
{
	/* An unrelated note first, as Linux has several Xen notes. */
	fx_put_le32(n, 4), fx_put_le32(n + 4, 4), fx_put_le32(n + 8, 6);
	memcpy(n + 12, "Xen\0", 4), fx_put_le32(n + 16, 0x1234);
	fx_put_le32(n + 20, 4), fx_put_le32(n + 24, descsz), fx_put_le32(n + 28, 18);
	memcpy(n + 32, "Xen\0", 4);
	fx_put_le32(n + 36, (uint32_t)entry), fx_put_le32(n + 40, (uint32_t)(entry >> 32));
	return 36 + ((descsz + 3) & ~3u);
}

static int load(struct fixture *f, const struct blob *b)
{
	return load_kernel_buffer(&f->mem, "test/vmlinux", b->p, b->len, &f->img, f->err,
				  sizeof(f->err));
}

/* Expects rc and an error line naming the image and containing what. */
static void expect_fail(struct fixture *f, const struct blob *b, int rc, const char *what)
{
	int got = load(f, b);
	if (got != rc || !strstr(f->err, what) || !strstr(f->err, "test/vmlinux"))
		fail_msg("expected %d with \"%s\", got %d: %s", rc, what, got, f->err);
	assert_null(strchr(f->err, '\n'));
}

/* --- ELF vmlinux ----------------------------------------------------------------- */

static void test_elf_minimal(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->img.entry, 0x200000);
	assert_int_equal(f->img.load_start, 0x200000);
	assert_int_equal(f->img.load_end, 0x201000 + sizeof(data) + 8192);
	assert_memory_equal(gp(f, 0x200000, sizeof(text)), text, sizeof(text));
	assert_memory_equal(gp(f, 0x201000, sizeof(data)), data, sizeof(data));
	const uint8_t *bss = gp(f, 0x201000 + sizeof(data), 8192);
	for (size_t i = 0; i < 8192; i++)
		assert_int_equal(bss[i], 0);
	assert_int_equal(*gp(f, 0x201000 + sizeof(data) + 8192, 1), FILL); /* untouched */
	assert_string_equal(f->img.compression, "none");
	assert_int_equal(f->img.protocol_version, 0);
	assert_int_equal(f->img.initrd_addr_max, 0x37FFFFFF);
	free(b.p);
}

/* The header a vmlinux gets for the zero page, like a bzImage's would read. */
static void test_elf_synthesized_setup_header(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.setup_header_len, 0x26c - 0x1f1);
	assert_int_equal(bp_le16(HDR(f->img, BP_BOOT_FLAG)), 0xAA55);
	assert_int_equal(bp_le32(HDR(f->img, BP_HEADER)), 0x53726448);
	assert_int_equal(bp_le16(HDR(f->img, BP_VERSION)), 0x020f);
	assert_int_equal(*HDR(f->img, BP_TYPE_OF_LOADER), 0xff);
	assert_int_equal(*HDR(f->img, BP_LOADFLAGS), BP_LOADED_HIGH);
	assert_int_equal(bp_le32(HDR(f->img, BP_KERNEL_ALIGNMENT)), 0x1000000);
	assert_int_equal(bp_le32(HDR(f->img, BP_INITRD_ADDR_MAX)), 0x37FFFFFF);
	assert_true(bp_le16(HDR(f->img, BP_XLOADFLAGS)) & BP_XLF_KERNEL_64);
	assert_int_equal(*HDR(f->img, BP_JUMP + 1), 0x26c - 0x202);
	free(b.p);
}

static void pvh_case(struct fixture *f, uint32_t descsz)
{
	uint8_t note[64];
	size_t nlen = pvh_note(note, 0x200003, descsz);
	const struct seg segs[] = {
		{ PT_LOAD, 0x200000, 0xffffffff81000000ULL, text, sizeof(text), sizeof(text) },
		{ PT_NOTE, 0, 0, note, nlen, nlen },
	};
	struct blob b = make_elf(0x200000, segs, 2);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_PVH);
	assert_int_equal(f->img.entry, 0x200003);
	free(b.p);
}

static void test_elf_pvh_note(void **state)
{
	pvh_case(*state, 4);
	pvh_case(*state, 8);
}

/* Notes in an 8-aligned PT_NOTE: name and desc start on 8-byte boundaries. */
static void test_elf_pvh_note_align8(void **state)
{
	struct fixture *f = *state;
	uint8_t n[64] = { 0 };
	fx_put_le32(n, 6), fx_put_le32(n + 4, 4), fx_put_le32(n + 8, 1);
	memcpy(n + 12, "Linux", 6); /* 12 + 6 = 18: desc at 24, next note at 32 */
	fx_put_le32(n + 32, 4), fx_put_le32(n + 36, 4), fx_put_le32(n + 40, 18);
	memcpy(n + 44, "Xen", 4); /* 44 + 4 = 48: desc at 48 */
	fx_put_le32(n + 48, 0x200001);
	const struct seg segs[] = {
		{ PT_LOAD, 0x200000, 0xffffffff81000000ULL, text, sizeof(text), sizeof(text) },
		{ PT_NOTE, 0, 0, n, 56, 56 },
	};
	struct blob b = make_elf(0x200000, segs, 2);
	phdr_at(&b, 1)->p_align = 8;
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_PVH);
	assert_int_equal(f->img.entry, 0x200001);
	free(b.p);
}

static void test_elf_pvh_note_malformed(void **state)
{
	struct fixture *f = *state;
	uint8_t note[64];
	size_t nlen = pvh_note(note, 0x200003, 4);
	fx_put_le32(note + 20, 0xfffffff0); /* the PVH note's namesz: runs off the segment */
	const struct seg segs[] = {
		{ PT_LOAD, 0x200000, 0xffffffff81000000ULL, text, sizeof(text), sizeof(text) },
		{ PT_NOTE, 0, 0, note, nlen, nlen },
	};
	struct blob b = make_elf(0x200000, segs, 2);
	assert_int_equal(load(f, &b), 0); /* the note is ignored, e_entry used */
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	pvh_note(note, 0x200003, 2); /* a 2-byte value: refused */
	free(b.p);
	b = make_elf(0x200000, segs, 2);
	expect_fail(f, &b, -ENOEXEC, "PVH");
	free(b.p);
}

static void test_elf_virtual_entry(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0xffffffff81000004ULL);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->img.entry, 0x200004);
	free(b.p);
	b = small_kernel(0xffffffff90000000ULL); /* virtual, but in no segment */
	expect_fail(f, &b, -ENOEXEC, "virtual entry");
	free(b.p);
	b = small_kernel(0x300000); /* physical, outside the segments */
	expect_fail(f, &b, -ENOEXEC, "outside every loaded segment");
	free(b.p);
}

static void test_elf_truncated(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	size_t full = b.len;
	b.len = 40; /* inside the ELF header */
	expect_fail(f, &b, -ENOEXEC, "truncated ELF header");
	b.len = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10; /* inside the program headers */
	expect_fail(f, &b, -ENOEXEC, "program headers past the end");
	b.len = phdr_at(&b, 1)->p_offset + 3; /* inside the second segment's bytes */
	expect_fail(f, &b, -ENOEXEC, "past the end of the image");
	b.len = full;
	phdr_at(&b, 0)->p_offset = UINT64_MAX - 4; /* offset + filesz wraps */
	expect_fail(f, &b, -ENOEXEC, "past the end of the image");
	free(b.p);
}

static void test_elf_wrong_class_or_machine(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	b.p[EI_CLASS] = ELFCLASS32;
	expect_fail(f, &b, -ENOEXEC, "not ELFCLASS64");
	b.p[EI_CLASS] = ELFCLASS64;
	((Elf64_Ehdr *)b.p)->e_machine = EM_AARCH64;
	expect_fail(f, &b, -ENOEXEC, "e_machine 183");
	((Elf64_Ehdr *)b.p)->e_machine = EM_X86_64;
	((Elf64_Ehdr *)b.p)->e_type = ET_REL;
	expect_fail(f, &b, -ENOEXEC, "ET_EXEC");
	((Elf64_Ehdr *)b.p)->e_type = ET_DYN; /* accepted */
	assert_int_equal(load(f, &b), 0);
	((Elf64_Ehdr *)b.p)->e_phnum = 0;
	expect_fail(f, &b, -ENOEXEC, "no program headers");
	free(b.p);
}

static void test_wrong_magic(void **state)
{
	struct fixture *f = *state;
	uint8_t junk[4096];
	memset(junk, 'x', sizeof(junk));
	struct blob b = { junk, sizeof(junk) };
	expect_fail(f, &b, -ENOEXEC,
		    "not a Linux bzImage or x86-64 ELF kernel (no 'HdrS' at 0x202, no ELF magic)");
	b.len = 100;
	expect_fail(f, &b, -ENOEXEC, "only 100 bytes");
	b.len = 0;
	expect_fail(f, &b, -ENOEXEC, "only 0 bytes");
	b.len = sizeof(junk);
	memcpy(junk + 0x202, "HdrS", 4); /* but no boot flag */
	expect_fail(f, &b, -ENOEXEC, "expected 0xaa55");
}

static void test_elf_segment_outside_ram(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	phdr_at(&b, 1)->p_memsz = RAM; /* runs past the end of RAM */
	expect_fail(f, &b, -EFBIG, "not inside guest RAM (64 MiB");
	phdr_at(&b, 1)->p_memsz = UINT64_MAX - 0x1000; /* wraps */
	expect_fail(f, &b, -ENOEXEC, "wraps past 2^64");
	phdr_at(&b, 1)->p_memsz = 4; /* filesz > memsz */
	expect_fail(f, &b, -ENOEXEC, "p_filesz");
	phdr_at(&b, 1)->p_memsz = sizeof(data);
	phdr_at(&b, 1)->p_paddr = 8ULL << 30; /* far beyond RAM */
	expect_fail(f, &b, -EFBIG, "not inside guest RAM");
	/* Nothing was written by the failed loads: checks come before copies. */
	assert_int_equal(*gp(f, 0x200000, 1), FILL);
	free(b.p);
}

static void test_elf_low_memory(void **state)
{
	struct fixture *f = *state;
	struct blob b = small_kernel(0x200000);
	phdr_at(&b, 1)->p_paddr = 0x7000; /* over the zero page */
	expect_fail(f, &b, -ENOEXEC, "below 1 MiB");
	phdr_at(&b, 1)->p_paddr = LAYOUT_HIMEM_START - 4; /* starts just below */
	expect_fail(f, &b, -ENOEXEC, "below 1 MiB");
	free(b.p);
}

/* --- bzImage --------------------------------------------------------------------- */

#define BZ_SETUP_SECTS 4
#define BZ_PM_OFFSET ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PAYLOAD_OFFSET 0x400 /* from the protected-mode code start */

struct bz_opts {
	uint16_t version;
	uint16_t xloadflags;
	const uint8_t *payload;
	size_t plen;
	uint64_t pref_address;
	uint32_t init_size;
};

static const struct bz_opts bz_default = {
	.version = 0x020f, .xloadflags = BP_XLF_KERNEL_64 | BP_XLF_CAN_BE_LOADED_ABOVE_4G,
	.pref_address = 0x1000000, .init_size = 0x10000,
};

/* Setup sectors with a 2.15-style header, then protected-mode code whose +0x200 is
 * a recognizable 64-bit entry, then the payload. */
static struct blob make_bzimage(const struct bz_opts *o)
{
	struct blob b = { .len = BZ_PM_OFFSET + BZ_PAYLOAD_OFFSET + o->plen };
	b.p = calloc(1, b.len);
	uint8_t *h = b.p;
	h[BP_SETUP_SECTS] = BZ_SETUP_SECTS;
	bp_put16(h + BP_BOOT_FLAG, 0xAA55);
	h[BP_JUMP] = 0xeb;
	h[BP_JUMP + 1] = 0x6a; /* header ends at 0x26c */
	bp_put32(h + BP_HEADER, 0x53726448);
	bp_put16(h + BP_VERSION, o->version);
	h[BP_LOADFLAGS] = BP_LOADED_HIGH;
	bp_put32(h + BP_CODE32_START, 0x100000);
	bp_put32(h + BP_INITRD_ADDR_MAX, 0x7fffffff);
	bp_put32(h + BP_KERNEL_ALIGNMENT, 0x200000);
	h[BP_RELOCATABLE] = 1;
	bp_put16(h + BP_XLOADFLAGS, o->xloadflags);
	bp_put32(h + BP_CMDLINE_SIZE, 2047);
	bp_put32(h + BP_PAYLOAD_OFFSET, BZ_PAYLOAD_OFFSET);
	bp_put32(h + BP_PAYLOAD_LENGTH, (uint32_t)o->plen);
	bp_put64(h + BP_PREF_ADDRESS, o->pref_address);
	bp_put32(h + BP_INIT_SIZE, o->init_size);
	memset(h + BP_SETUP_HEADER_MAX_END, 0x90, BZ_PM_OFFSET - BP_SETUP_HEADER_MAX_END);
	memset(h + BZ_PM_OFFSET, 0xcc, BZ_PAYLOAD_OFFSET);
	memcpy(h + BZ_PM_OFFSET + BP_ENTRY64_OFFSET, "ENTRY64", 7);
	if (o->plen)
		memcpy(h + BZ_PM_OFFSET + BZ_PAYLOAD_OFFSET, o->payload, o->plen);
	return b;
}

static struct blob bzimage_with(const struct blob *payload)
{
	struct bz_opts o = bz_default;
	o.payload = payload->p;
	o.plen = payload->len;
	return make_bzimage(&o);
}

static void expect_small_kernel_loaded(struct fixture *f)
{
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->img.entry, 0x200000);
	assert_int_equal(f->img.load_start, 0x200000);
	assert_memory_equal(gp(f, 0x200000, sizeof(text)), text, sizeof(text));
	assert_memory_equal(gp(f, 0x201000, sizeof(data)), data, sizeof(data));
	assert_int_equal(*gp(f, 0x201000 + sizeof(data) + 100, 1), 0);
}

static void test_bzimage_elf_payload(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000);
	struct blob b = bzimage_with(&elf);
	assert_int_equal(load(f, &b), 0);
	expect_small_kernel_loaded(f);
	assert_string_equal(f->img.compression, "none");
	assert_int_equal(f->img.protocol_version, 0x020f);
	assert_int_equal(f->img.initrd_addr_max, 0x7fffffff);
	/* The file's own setup header, byte for byte, 0x1f1 .. 0x26c. */
	assert_int_equal(f->img.setup_header_len, 0x26c - 0x1f1);
	assert_memory_equal(f->img.setup_header, b.p + 0x1f1, 0x26c - 0x1f1);
	free(b.p);
	free(elf.p);
}

/* A PVH note in a bzImage's ELF is ignored: bzImages enter at startup_64. */
static void test_bzimage_payload_pvh_note_ignored(void **state)
{
	struct fixture *f = *state;
	uint8_t note[64];
	size_t nlen = pvh_note(note, 0x200003, 4);
	const struct seg segs[] = {
		{ PT_LOAD, 0x200000, 0xffffffff81000000ULL, text, sizeof(text), sizeof(text) },
		{ PT_NOTE, 0, 0, note, nlen, nlen },
	};
	struct blob elf = make_elf(0x200000, segs, 2);
	struct blob b = bzimage_with(&elf);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->img.entry, 0x200000);
	free(b.p);
	free(elf.p);
}

static void compressed_case(struct fixture *f, const char *codec)
{
	struct blob elf = small_kernel(0x200000), payload = { 0 };
	payload.p = fx_payload(codec, elf.p, elf.len, &payload.len);
	assert_non_null(payload.p);
	struct blob b = bzimage_with(&payload);
	memset(f->mem.mapping, FILL, RAM);
	f->mem.zero_filled = false; /* dirty: the loader must clear bss itself */
	if (load(f, &b) != 0)
		fail_msg("%s: %s", codec, f->err);
	assert_string_equal(f->img.compression, codec);
	expect_small_kernel_loaded(f);
	free(b.p);
	free(payload.p);
	free(elf.p);
}

static void test_bzimage_gzip(void **state)
{
	compressed_case(*state, "gzip");
}

static void test_bzimage_xz(void **state)
{
	compressed_case(*state, "xz");
}

static void test_bzimage_zstd(void **state)
{
	compressed_case(*state, "zstd");
}

static void test_bzimage_other_codecs(void **state)
{
	compressed_case(*state, "bzip2");
	compressed_case(*state, "lzma");
	compressed_case(*state, "lzo");
	compressed_case(*state, "lz4");
}

/* LZ4 legacy with more than one 8 MiB block: a 9 MiB segment at 16 MiB. */
static void test_bzimage_lz4_multiblock(void **state)
{
	struct fixture *f = *state;
	size_t big = 9u << 20;
	uint8_t *seg = malloc(big);
	for (size_t i = 0; i < big; i++)
		seg[i] = (uint8_t)(i * 7 + (i >> 13));
	const struct seg segs[] = { { PT_LOAD, 0x1000000, 0xffffffff81000000ULL, seg, big, big } };
	struct blob elf = make_elf(0x1000000, segs, 1), payload = { 0 };
	payload.p = fx_payload("lz4", elf.p, elf.len, &payload.len);
	assert_non_null(payload.p);
	assert_true(bp_le32(payload.p + 4) < payload.len - 8); /* really several blocks */
	struct blob b = bzimage_with(&payload);
	if (load(f, &b) != 0)
		fail_msg("%s", f->err);
	assert_string_equal(f->img.compression, "lz4");
	assert_int_equal(f->img.entry, 0x1000000);
	assert_int_equal(f->img.load_end, 0x1000000 + big);
	assert_memory_equal(gp(f, 0x1000000, big), seg, big);
	free(b.p);
	free(payload.p);
	free(elf.p);
	free(seg);
}

/* argon-guest's case: no payload, so the protected-mode code itself is loaded at
 * pref_address and entered at +0x200. */
static void test_bzimage_raw_fallback(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default;
	o.pref_address = 0x100000;
	struct blob b = make_bzimage(&o);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_int_equal(f->img.entry, 0x100200);
	assert_int_equal(f->img.load_start, 0x100000);
	assert_int_equal(f->img.load_end, 0x100000 + o.init_size); /* init_size > code */
	assert_memory_equal(gp(f, 0x100200, 7), "ENTRY64", 7);
	assert_int_equal(*gp(f, 0x100000 + BZ_PAYLOAD_OFFSET + 1, 1), 0); /* zeroed to init_size */
	assert_string_equal(f->img.compression, "none");
	free(b.p);
	/* A payload that is neither ELF nor a known codec: the kernel's own entry. */
	static const uint8_t odd[] = "some future codec";
	o.payload = odd;
	o.plen = sizeof(odd);
	o.pref_address = 0;			/* falls back to code32_start */
	b = make_bzimage(&o);
	assert_int_equal(load(f, &b), 0);
	assert_int_equal(f->img.entry, 0x100200);
	assert_string_equal(f->img.compression, "unknown");
	free(b.p);
}

static void test_bzimage_raw_does_not_fit(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default;
	o.init_size = 0xfff00000; /* hostile init_size */
	struct blob b = make_bzimage(&o);
	expect_fail(f, &b, -EFBIG, "beyond guest RAM");
	free(b.p);
	o.init_size = 0x1000;
	o.pref_address = 0x8000; /* into low memory */
	b = make_bzimage(&o);
	expect_fail(f, &b, -ENOEXEC, "below 1 MiB");
	free(b.p);
	struct blob elf = small_kernel(0x200000);
	b = bzimage_with(&elf);
	bp_put32(b.p + BP_PAYLOAD_LENGTH, 0); /* raw, but the code ends before +0x200 */
	b.len = BZ_PM_OFFSET + 0x100;
	expect_fail(f, &b, -ENOEXEC, "too short for a 64-bit entry");
	free(b.p);
	free(elf.p);
}

static void test_bzimage_truncated(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000);
	struct blob b = bzimage_with(&elf);
	size_t full = b.len;
	b.len = 0x400; /* the header is there, the setup sectors are not */
	expect_fail(f, &b, -ENOEXEC, "truncated bzImage");
	b.len = BZ_PM_OFFSET + BZ_PAYLOAD_OFFSET + 100; /* payload cut short */
	expect_fail(f, &b, -ENOEXEC, "runs past the end of the file");
	b.len = full;
	b.p[BP_SETUP_SECTS] = 0xff; /* 256 sectors of setup: more than the file */
	expect_fail(f, &b, -ENOEXEC, "truncated bzImage");
	free(b.p);
	free(elf.p);
}

static void test_bzimage_protocol_too_old(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default;
	o.version = 0x0204;
	struct blob b = make_bzimage(&o);
	expect_fail(f, &b, -ENOEXEC, "boot protocol 2.04 is too old: argon needs 2.06");
	free(b.p);
}

static void test_bzimage_no_64bit_entry(void **state)
{
	struct fixture *f = *state;
	struct bz_opts o = bz_default;
	o.xloadflags = BP_XLF_CAN_BE_LOADED_ABOVE_4G;
	struct blob b = make_bzimage(&o);
	expect_fail(f, &b, -ENOEXEC, "XLF_KERNEL_64");
	free(b.p);
	o = bz_default;
	o.version = 0x0208; /* before xloadflags existed */
	b = make_bzimage(&o);
	expect_fail(f, &b, -ENOEXEC, "boot protocol 2.08) has no 64-bit entry point");
	free(b.p);
}

static void test_bzimage_lying_payload_length(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000);
	struct blob b = bzimage_with(&elf);
	bp_put32(b.p + BP_PAYLOAD_LENGTH, 0xffffffff);
	expect_fail(f, &b, -ENOEXEC, "runs past the end of the file");
	bp_put32(b.p + BP_PAYLOAD_LENGTH, (uint32_t)elf.len);
	bp_put32(b.p + BP_PAYLOAD_OFFSET, 0xfffffff0);
	expect_fail(f, &b, -ENOEXEC, "payload_offset/payload_length");
	free(b.p);
	free(elf.p);
}

/* The le32 size at the payload's end: too small, too big, absurd. */
static void test_bzimage_lying_uncompressed_size(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000), payload = { 0 };
	const char *codecs[] = { "gzip", "lz4", "xz", "zstd", "lzo", "bzip2", "lzma" };
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		payload.p = fx_payload(codecs[i], elf.p, elf.len, &payload.len);
		uint8_t *size = payload.p + payload.len - 4;
		fx_put_le32(size, (uint32_t)elf.len / 2);
		struct blob b = bzimage_with(&payload);
		expect_fail(f, &b, -ENOEXEC, "the size its last 4 bytes declare");
		free(b.p);
		fx_put_le32(size, 0x7fffffff);
		b = bzimage_with(&payload);
		expect_fail(f, &b, -EFBIG, "more than guest RAM");
		free(b.p);
		fx_put_le32(size, 3);
		b = bzimage_with(&payload);
		expect_fail(f, &b, -ENOEXEC, "too few for a kernel");
		free(b.p);
		free(payload.p);
	}
	free(elf.p);
}

static void test_bzimage_payload_not_elf(void **state)
{
	struct fixture *f = *state;
	uint8_t junk[4096];
	memset(junk, 'k', sizeof(junk));
	struct blob payload = { 0 };
	payload.p = fx_payload("zstd", junk, sizeof(junk), &payload.len);
	struct blob b = bzimage_with(&payload);
	expect_fail(f, &b, -ENOEXEC, "decompressed zstd payload (4096 bytes) is not an ELF");
	free(b.p);
	/* Half the stream, then the size trailer: a truncated zstd frame. */
	size_t half = (payload.len - 4) / 2;
	memmove(payload.p + half, payload.p + payload.len - 4, 4);
	payload.len = half + 4;
	b = bzimage_with(&payload);
	expect_fail(f, &b, -ENOEXEC, "zstd payload");
	free(b.p);
	free(payload.p);
}

/* A broken ELF inside a good compressed payload is reported as such. */
static void test_bzimage_payload_elf_broken(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000), payload = { 0 };
	phdr_at(&elf, 0)->p_paddr = 0x1000;
	payload.p = fx_payload("gzip", elf.p, elf.len, &payload.len);
	struct blob b = bzimage_with(&payload);
	expect_fail(f, &b, -ENOEXEC, "test/vmlinux (gzip payload): segment 0 at 0x1000 is below 1 MiB");
	free(b.p);
	free(payload.p);
	free(elf.p);
}

/* --- files and initrd ------------------------------------------------------------ */

/* Writes len bytes of pattern to a new temporary file; returns its malloc'd path. */
static char *temp_file(const uint8_t *p, size_t len)
{
	char *path = strdup("/tmp/argon-test-loader-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
	return path;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = malloc(len);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i ^ (i >> 8) ^ 0x5c);
	return p;
}

static void test_load_kernel_file(void **state)
{
	struct fixture *f = *state;
	struct blob elf = small_kernel(0x200000);
	char *path = temp_file(elf.p, elf.len);
	assert_int_equal(load_kernel(&f->mem, path, &f->img, f->err, sizeof(f->err)), 0);
	expect_small_kernel_loaded(f);
	unlink(path);
	assert_int_equal(load_kernel(&f->mem, path, &f->img, f->err, sizeof(f->err)), -ENOENT);
	assert_non_null(strstr(f->err, path));
	assert_non_null(strstr(f->err, "No such file"));
	assert_int_equal(load_kernel(&f->mem, "/tmp", &f->img, f->err, sizeof(f->err)), -EISDIR);
	assert_non_null(strstr(f->err, "/tmp: kernel image: Is a directory"));
	assert_int_equal(load_kernel(&f->mem, "/dev/null", &f->img, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_non_null(strstr(f->err, "not a regular file"));
	free(path);
	free(elf.p);
}

static void test_initrd_fits(void **state)
{
	struct fixture *f = *state;
	size_t len = 3 * 4096 + 123;
	uint8_t *p = pattern(len);
	char *path = temp_file(p, len);
	uint64_t gpa = 0, size = 0;
	assert_int_equal(load_initrd(&f->mem, path, 0x37FFFFFF, 0x400000, &gpa, &size, f->err,
				     sizeof(f->err)),
			 0);
	assert_int_equal(size, len);
	assert_int_equal(gpa % 4096, 0);
	assert_true(gpa + size <= RAM);	    /* RAM (64 MiB) is below initrd_addr_max */
	assert_true(gpa + size > RAM - 4096); /* as high as it goes */
	assert_memory_equal(gp(f, gpa, len), p, len);
	unlink(path);
	free(path);
	free(p);
}

static void test_initrd_respects_addr_max(void **state)
{
	struct fixture *f = *state;
	size_t len = 10000;
	uint8_t *p = pattern(len);
	char *path = temp_file(p, len);
	uint64_t gpa = 0, size = 0, max = 0x2000000 + 0x1234 - 1; /* ends at 32 MiB + 0x1234 */
	assert_int_equal(load_initrd(&f->mem, path, max, 0x400000, &gpa, &size, f->err,
				     sizeof(f->err)),
			 0);
	assert_true(gpa + size - 1 <= max);
	assert_int_equal(gpa % 4096, 0);
	assert_true(gpa + size + 4096 > max); /* still as high as allowed */
	assert_true(gpa >= 0x400000);
	unlink(path);
	free(path);
	free(p);
}

static void test_initrd_does_not_fit(void **state)
{
	struct fixture *f = *state;
	size_t len = 1 << 20;
	uint8_t *p = pattern(len);
	char *path = temp_file(p, len);
	uint64_t gpa = 0, size = 0;
	/* 1 MiB between the kernel's end and the limit, minus the page rounding. */
	int rc = load_initrd(&f->mem, path, 0x2000000 - 1, 0x1f00001, &gpa, &size, f->err,
			     sizeof(f->err));
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(f->err, "initrd is 1048576 bytes (1 MiB)"));
	assert_non_null(strstr(f->err, "only 1044480 bytes fit"));
	assert_non_null(strstr(f->err, path));
	/* A kernel that ends above the limit leaves no room at all. */
	rc = load_initrd(&f->mem, path, 0x37FFFFFF, RAM + 0x10000, &gpa, &size, f->err,
			 sizeof(f->err));
	assert_int_equal(rc, -EFBIG);
	assert_non_null(strstr(f->err, "only 0 bytes fit"));
	unlink(path);
	free(path);
	free(p);
}

static void test_initrd_bad_files(void **state)
{
	struct fixture *f = *state;
	uint64_t gpa = 0, size = 0;
	int rc = load_initrd(&f->mem, "/nonexistent/initrd", 0x37FFFFFF, 0x400000, &gpa, &size,
			     f->err, sizeof(f->err));
	assert_int_equal(rc, -ENOENT);
	assert_non_null(strstr(f->err, "/nonexistent/initrd: cannot open initrd"));
	char *path = temp_file((const uint8_t *)"", 0);
	rc = load_initrd(&f->mem, path, 0x37FFFFFF, 0x400000, &gpa, &size, f->err, sizeof(f->err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(f->err, "initrd is empty"));
	unlink(path);
	free(path);
}

/* --- Debian's stock cloud kernel (scripts/fetch-debian-kernel.sh) ---------------- */

static void test_debian_cloud_kernel(void **state)
{
	const char *path = getenv("ARGON_DEBIAN_KERNEL");
	if (!path || !*path) {
		fprintf(stderr, "\n*** SKIPPED test_debian_cloud_kernel: ARGON_DEBIAN_KERNEL is not "
				"set (ARGON_DEBIAN_KERNEL=$(scripts/fetch-debian-kernel.sh)) ***\n\n");
		skip();
	}
	struct guest_mem mem;
	struct boot_image img;
	char err[512] = "";
	assert_int_equal(guest_mem_create_anon(&mem, 512ULL << 20), 0);
	int rc = load_kernel(&mem, path, &img, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
	assert_string_equal(img.compression, "lz4"); /* Debian 12's cloud kernel */
	assert_int_equal(img.entry_kind, BOOT_ENTRY_LINUX64);
	assert_true(img.protocol_version >= 0x020c);
	assert_true(img.entry >= img.load_start && img.entry < img.load_end);
	assert_true(img.load_start >= LAYOUT_HIMEM_START);
	assert_int_equal(bp_le32(HDR(img, BP_HEADER)), 0x53726448);
	fprintf(stderr, "Debian kernel %s: protocol %u.%02u, %s, entry 0x%llx, [0x%llx, 0x%llx)\n",
		path, img.protocol_version >> 8, img.protocol_version & 0xff, img.compression,
		(unsigned long long)img.entry, (unsigned long long)img.load_start,
		(unsigned long long)img.load_end);
	guest_mem_destroy(&mem);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_elf_minimal),
		T(test_elf_synthesized_setup_header),
		T(test_elf_pvh_note),
		T(test_elf_pvh_note_align8),
		T(test_elf_pvh_note_malformed),
		T(test_elf_virtual_entry),
		T(test_elf_truncated),
		T(test_elf_wrong_class_or_machine),
		T(test_wrong_magic),
		T(test_elf_segment_outside_ram),
		T(test_elf_low_memory),
		T(test_bzimage_elf_payload),
		T(test_bzimage_payload_pvh_note_ignored),
		T(test_bzimage_gzip),
		T(test_bzimage_xz),
		T(test_bzimage_zstd),
		T(test_bzimage_other_codecs),
		T(test_bzimage_lz4_multiblock),
		T(test_bzimage_raw_fallback),
		T(test_bzimage_raw_does_not_fit),
		T(test_bzimage_truncated),
		T(test_bzimage_protocol_too_old),
		T(test_bzimage_no_64bit_entry),
		T(test_bzimage_lying_payload_length),
		T(test_bzimage_lying_uncompressed_size),
		T(test_bzimage_payload_not_elf),
		T(test_bzimage_payload_elf_broken),
		T(test_load_kernel_file),
		T(test_initrd_fits),
		T(test_initrd_respects_addr_max),
		T(test_initrd_does_not_fit),
		T(test_initrd_bad_files),
		cmocka_unit_test(test_debian_cloud_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
