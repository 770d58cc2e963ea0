/* libFuzzer target for the kernel image loaders: any byte string goes through
 * load_kernel_buffer() into a small guest memory. A crash, a sanitizer report or a
 * broken invariant below (__builtin_trap) is a finding.
 *
 * Build (not part of the Makefile; clang from Debian):
 *   clang-14 -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     tests/fuzz/fuzz_loader.c src/loader/{bzimage,decompress,elf,loader}.c \
 *     src/vmm/memory.c src/common/log.c \
 *     -lz -llz4 -lzstd -llzma -lbz2 -llzo2 -o build/fuzz/fuzz_loader
 * Run:
 *   build/fuzz/fuzz_loader -max_len=65536 -rss_limit_mb=4096 build/fuzz/corpus-loader
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "common/log.h"
#include "loader/loader.h"

#define FUZZ_RAM (32ULL << 20) /* small: bounds every decompression buffer too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_mem *fuzz_mem(void)
{
	static struct guest_mem mem;
	static int ready;
	if (!ready) {
		log_set_level(LOG_ERROR); /* the raw-fallback warning would flood the output */
		if (guest_mem_create_anon(&mem, FUZZ_RAM))
			abort();
		ready = 1;
	}
	return &mem;
}

/* What every successful load promises the VMM. */
static void check_image(const struct guest_mem *mem, const struct boot_image *img)
{
	if (img->load_start < LAYOUT_HIMEM_START || img->load_end <= img->load_start)
		__builtin_trap();
	if (!guest_mem_contains(mem, img->load_start, img->load_end - img->load_start))
		__builtin_trap();
	if (img->entry < img->load_start || img->entry >= img->load_end)
		__builtin_trap();
	if (img->setup_header_len > sizeof(img->setup_header) || !img->compression)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem *mem = fuzz_mem();
	struct boot_image img;
	char err[512] = "";
	int rc = load_kernel_buffer(mem, "fuzz", data, size, &img, err, sizeof(err));
	if (rc == 0)
		check_image(mem, &img);
	else if (rc > 0 || err[0] == '\0' || strchr(err, '\n'))
		__builtin_trap(); /* a failure always comes with exactly one line */
	return 0;
}
