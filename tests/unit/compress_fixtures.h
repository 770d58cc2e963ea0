/* Test fixtures: compress a buffer the way the kernel build compresses a bzImage
 * payload (arch/x86/boot/compressed/Makefile, scripts/Makefile.lib): the codec's
 * stream, then the uncompressed size as le32 (gzip carries it as its own ISIZE).
 * Shared by test_decompress.c and test_loader.c; everything static inline. */
#ifndef ARGON_TESTS_COMPRESS_FIXTURES_H
#define ARGON_TESTS_COMPRESS_FIXTURES_H

#include <bzlib.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static inline void fx_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void fx_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline size_t fx_gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	int r = deflate(&s, Z_FINISH);
	size_t n = s.total_out;
	deflateEnd(&s);
	return r == Z_STREAM_END ? n : 0;
}

static inline size_t fx_bzip2(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	unsigned int n = (unsigned int)cap;
	if (BZ2_bzBuffToBuffCompress((char *)out, &n, (char *)in, (unsigned int)len, 9, 0, 0) != BZ_OK)
		return 0;
	return n;
}

static inline size_t fx_xz(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t pos = 0;
	if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in, len, out, &pos, cap) != LZMA_OK)
		return 0;
	return pos;
}

/* The legacy .lzma ("alone") format the kernel's "lzma -9" writes. */
static inline size_t fx_lzma(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	lzma_options_lzma opt;
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_lzma_preset(&opt, 6) || lzma_alone_encoder(&s, &opt) != LZMA_OK)
		return 0;
	s.next_in = in;
	s.avail_in = len;
	s.next_out = out;
	s.avail_out = cap;
	lzma_ret r = lzma_code(&s, LZMA_FINISH);
	size_t n = cap - s.avail_out;
	lzma_end(&s);
	return r == LZMA_STREAM_END ? n : 0;
}

static inline size_t fx_zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap, in, len, 19);
	return ZSTD_isError(n) ? 0 : n;
}

/* LZ4 legacy frame: magic, then [le32 size][block] per 8 MiB of input ("lz4 -l"). */
static inline size_t fx_lz4(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	const size_t block = 8u << 20;
	size_t pos = 4;
	if (cap < 4)
		return 0;
	fx_put_le32(out, 0x184C2102);
	for (size_t off = 0; off < len; off += block) {
		size_t chunk = len - off < block ? len - off : block;
		if (cap - pos < 4)
			return 0;
		int n = LZ4_compress_default((const char *)in + off, (char *)out + pos + 4, (int)chunk,
					     (int)(cap - pos - 4));
		if (n <= 0)
			return 0;
		fx_put_le32(out + pos, (uint32_t)n);
		pos += 4 + (size_t)n;
	}
	return pos;
}

/* lzop container (as "lzop -9" writes, version 0x1030) around lzo1x_1 blocks of
 * 256 KiB; a block that does not shrink is stored. */
static inline size_t fx_lzo(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	static const uint8_t hdr[] = { 0x89, 'L',  'Z',	 'O',  0x00, 0x0d, 0x0a, 0x1a, 0x0a,
				       0x10, 0x30, 0x20, 0xa0, 0x09, 0x40, 0x01, 0x05, /* method, level */
				       0,    0,	   0,	 0,		     /* flags */
				       0,    0,	   0x81, 0xa4,		     /* mode */
				       0,    0,	   0,	 0,    0, 0, 0, 0, /* mtime */
				       0,				     /* name length */
				       0,    0,	   0,	 0 };		     /* header checksum */
	const size_t block = 256u << 10;
	static uint8_t wrk[LZO1X_1_MEM_COMPRESS];
	size_t pos = sizeof(hdr);
	if (lzo_init() != LZO_E_OK || cap < pos)
		return 0;
	memcpy(out, hdr, sizeof(hdr));
	for (size_t off = 0; off < len; off += block) {
		size_t chunk = len - off < block ? len - off : block;
		if (cap - pos < 8 + chunk + chunk / 16 + 67)
			return 0;
		lzo_uint n = 0;
		if (lzo1x_1_compress(in + off, chunk, out + pos + 8, &n, wrk) != LZO_E_OK)
			return 0;
		if (n >= chunk) {
			memcpy(out + pos + 8, in + off, chunk);
			n = chunk;
		}
		fx_put_be32(out + pos, (uint32_t)chunk);
		fx_put_be32(out + pos + 4, (uint32_t)n);
		pos += 8 + n;
	}
	if (cap - pos < 4)
		return 0;
	fx_put_be32(out + pos, 0); /* end of stream */
	return pos + 4;
}

typedef size_t (*fx_compress_fn)(const uint8_t *, size_t, uint8_t *, size_t);

static inline fx_compress_fn fx_find(const char *codec)
{
	static const struct {
		const char *name;
		fx_compress_fn fn;
	} table[] = { { "gzip", fx_gzip }, { "bzip2", fx_bzip2 }, { "lzma", fx_lzma },
		      { "xz", fx_xz },	   { "lzo", fx_lzo },	    { "lz4", fx_lz4 },
		      { "zstd", fx_zstd } };
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, codec) == 0)
			return table[i].fn;
	return NULL;
}

/* A kernel-style payload in a new malloc'd buffer: stream + le32 size (not for
 * gzip, whose ISIZE is already its last 4 bytes). Returns NULL on failure. */
static inline uint8_t *fx_payload(const char *codec, const uint8_t *in, size_t len,
				  size_t *out_len)
{
	fx_compress_fn fn = fx_find(codec);
	size_t cap = len + len / 2 + 4096;
	uint8_t *out = malloc(cap);
	size_t n = (fn && out) ? fn(in, len, out, cap - 4) : 0;
	if (n == 0) {
		free(out);
		return NULL;
	}
	if (strcmp(codec, "gzip") != 0) {
		fx_put_le32(out + n, (uint32_t)len);
		n += 4;
	}
	*out_len = n;
	return out;
}

#endif
