/* mkbzimage: wraps argon-guest's ELF as a Linux bzImage (boot protocol 2.12,
 * Documentation/arch/x86/boot.rst).
 *
 * The protected-mode part is the kernel's flat image as loaded at 1 MiB (so
 * the 64-bit entry is at its offset 0x200, XLF_KERNEL_64), followed by the
 * ELF itself as an uncompressed payload for loaders that prefer to load the
 * payload's ELF. The kernel is not relocatable. The 16-bit entry only halts:
 * argon-guest has no real-mode setup code.
 *
 * usage: mkbzimage KERNEL.elf OUT.bzImage */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR 0x100000u
#define ENTRY64_OFFSET 0x200u
#define SETUP_SECTS 1 /* the header runs past the boot sector */
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define CMDLINE_SIZE 4095 /* argon-guest copies up to 4 KiB */

struct buf {
	uint8_t *data;
	size_t len;
};

static int read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	b->len = len;
	b->data = malloc(len ? len : 1);
	if (!b->data || fread(b->data, 1, len, f) != (size_t)len) {
		fprintf(stderr, "mkbzimage: %s: cannot read\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, 8);
}

static const Elf64_Phdr *phdrs(const struct buf *elf, const char *path)
{
	const Elf64_Ehdr *eh = (const void *)elf->data;

	if (elf->len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > elf->len) {
		fprintf(stderr, "mkbzimage: %s: not an x86-64 ELF executable\n", path);
		return NULL;
	}
	if (eh->e_entry != LOAD_ADDR + ENTRY64_OFFSET) {
		fprintf(stderr, "mkbzimage: %s: entry 0x%lx, expected 0x%x\n", path,
			(unsigned long)eh->e_entry, LOAD_ADDR + ENTRY64_OFFSET);
		return NULL;
	}
	return (const void *)(elf->data + eh->e_phoff);
}

/* Lays the PT_LOAD segments out as they sit in memory from LOAD_ADDR.
 * *mem_end receives the end of the image including .bss. */
static int flatten(const struct buf *elf, const char *path, struct buf *flat, uint64_t *mem_end)
{
	const Elf64_Phdr *ph = phdrs(elf, path);
	int n = ((const Elf64_Ehdr *)elf->data)->e_phnum;

	if (!ph)
		return -1;
	flat->len = 0;
	*mem_end = LOAD_ADDR;
	for (int i = 0; i < n; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_paddr < LOAD_ADDR || ph[i].p_offset + ph[i].p_filesz > elf->len ||
		    ph[i].p_paddr + ph[i].p_memsz > 0x40000000) {
			fprintf(stderr, "mkbzimage: %s: segment %d outside [1 MiB, 1 GiB)\n", path, i);
			return -1;
		}
		if (ph[i].p_paddr + ph[i].p_filesz - LOAD_ADDR > flat->len)
			flat->len = ph[i].p_paddr + ph[i].p_filesz - LOAD_ADDR;
		if (ph[i].p_paddr + ph[i].p_memsz > *mem_end)
			*mem_end = ph[i].p_paddr + ph[i].p_memsz;
	}
	flat->data = calloc(1, flat->len + 16);
	if (!flat->data)
		return -1;
	for (int i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD)
			memcpy(flat->data + ph[i].p_paddr - LOAD_ADDR, elf->data + ph[i].p_offset,
			       ph[i].p_filesz);
	return 0;
}

static void write_header(uint8_t *s, uint32_t pm_size, uint32_t payload_off,
			 uint32_t payload_len, uint32_t init_size)
{
	s[0x1f1] = SETUP_SECTS;
	put32(s, 0x1f4, (pm_size + 15) / 16); /* syssize */
	put16(s, 0x1fe, 0xaa55);	      /* boot_flag */
	s[0x200] = 0xeb;		      /* jump to the 16-bit stub at 0x270 */
	s[0x201] = 0x270 - 0x202;
	memcpy(s + 0x202, "HdrS", 4);
	put16(s, 0x206, 0x020c);	/* protocol 2.12 */
	put16(s, 0x20e, 0x280 - 0x200); /* kernel_version string */
	s[0x211] = 0x01;		/* loadflags: LOADED_HIGH */
	put32(s, 0x214, LOAD_ADDR);	/* code32_start */
	put32(s, 0x22c, 0x7fffffff);	/* initrd_addr_max */
	put32(s, 0x230, 0x1000);	/* kernel_alignment */
	s[0x234] = 0;			/* relocatable_kernel */
	s[0x235] = 12;			/* min_alignment: 4 KiB */
	put16(s, 0x236, 0x0001);	/* xloadflags: XLF_KERNEL_64 */
	put32(s, 0x238, CMDLINE_SIZE);
	put32(s, 0x248, payload_off);
	put32(s, 0x24c, payload_len);
	put64(s, 0x258, LOAD_ADDR); /* pref_address */
	put32(s, 0x260, init_size);
	memcpy(s + 0x270, "\xfa\xf4\xeb\xfd", 4); /* cli; hlt; jmp $-3 */
	strcpy((char *)s + 0x280, "argon-guest");
}

static int write_image(const char *path, const uint8_t *setup, const struct buf *flat,
		       const struct buf *elf, size_t payload_off)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f) {
		fprintf(stderr, "mkbzimage: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ok = fwrite(setup, 1, SETUP_SIZE, f) == SETUP_SIZE &&
	     fwrite(flat->data, 1, payload_off, f) == payload_off &&
	     fwrite(elf->data, 1, elf->len, f) == elf->len;
	if (fclose(f) || !ok) {
		fprintf(stderr, "mkbzimage: %s: write failed\n", path);
		remove(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t setup[SETUP_SIZE] = { 0 };
	struct buf elf, flat;
	uint64_t mem_end, init_size;
	size_t payload_off, pm_size;

	if (argc != 3) {
		fprintf(stderr, "usage: mkbzimage KERNEL.elf OUT.bzImage\n");
		return 2;
	}
	if (read_file(argv[1], &elf) || flatten(&elf, argv[1], &flat, &mem_end))
		return 1;
	if (flat.len <= ENTRY64_OFFSET) {
		fprintf(stderr, "mkbzimage: %s: image shorter than its 64-bit entry\n", argv[1]);
		return 1;
	}
	payload_off = (flat.len + 15) & ~(size_t)15;
	pm_size = payload_off + elf.len;
	init_size = mem_end - LOAD_ADDR > pm_size ? mem_end - LOAD_ADDR : pm_size;
	init_size = (init_size + 4095) & ~4095ull;
	write_header(setup, pm_size, payload_off, elf.len, init_size);
	return write_image(argv[2], setup, &flat, &elf, payload_off) ? 1 : 0;
}
