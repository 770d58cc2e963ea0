/* Host-side decompression of a bzImage payload, with Debian's libraries, for every
 * codec the x86 kernel build can use (boot.rst, "Details of Header Fields",
 * payload_offset: "the format ... should be determined using the standard magic
 * numbers"). Input and output are plain host buffers; nothing here touches guest
 * memory. The input is hostile: a codec never writes past cap, and a stream that
 * needs more room fails with -EFBIG instead of growing the buffer. */
#ifndef ARGON_LOADER_DECOMPRESS_H
#define ARGON_LOADER_DECOMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 with *out_len set; -ENOEXEC for corrupt or truncated data, -EFBIG when
 * the output does not fit in cap, -ENOMEM when the library cannot allocate; the
 * reason (without file name) goes to why. Trailing bytes after the end of the
 * compressed stream (the kernel's le32 size trailer) are ignored. */
typedef int (*decompress_fn)(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			     size_t *out_len, char *why, size_t whylen);

struct codec {
	const char *name; /* "gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd" */
	uint8_t magic[6];
	size_t magic_len;
	decompress_fn decompress;
};

/* The codec whose magic number starts data, or NULL. */
const struct codec *codec_detect(const uint8_t *data, size_t len);

/* Runs codec c over in; see decompress_fn. Rejects inputs or capacities above
 * 1 GiB (no library call ever sees a length that does not fit its types). */
int codec_decompress(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len, char *why, size_t whylen);

#endif
