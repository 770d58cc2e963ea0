/* Host-side payload decompression; see decompress.h. One function per codec, all
 * through Debian's libraries, found by magic number through one table. */
#include "loader/decompress.h"

#include <bzlib.h>
#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <lzma.h>
#include <lzo/lzo1x.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/util.h"
#include "loader/loader_internal.h"

/* Every length handed to a library fits in its unsigned int / uInt. */
#define DECOMPRESS_MAX_LEN (1ULL << 30)
/* Dictionary memory liblzma may allocate: the kernel's xz uses 32 MiB, lzma -9 64 MiB. */
#define LZMA_MEMLIMIT (128ULL << 20)

static int too_big(size_t cap, char *why, size_t whylen)
{
	return loader_fail(why, whylen, -EFBIG, "decompresses to more than %zu bytes", cap);
}

/* gzip (RFC 1952) through zlib; 16 + MAX_WBITS selects the gzip wrapper. */
static int gzip_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			   size_t *out_len, char *why, size_t whylen)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
		return loader_fail(why, whylen, -ENOMEM, "zlib: cannot initialize inflate");
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)in_len;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	int zr = inflate(&s, Z_FINISH);
	*out_len = cap - s.avail_out;
	bool full = s.avail_out == 0;
	const char *msg = s.msg ? s.msg : "unexpected end of data";
	inflateEnd(&s);
	if (zr == Z_STREAM_END)
		return 0;
	if (zr == Z_BUF_ERROR && full)
		return too_big(cap, why, whylen);
	if (zr == Z_MEM_ERROR)
		return loader_fail(why, whylen, -ENOMEM, "zlib: out of memory");
	return loader_fail(why, whylen, -ENOEXEC, "corrupt or truncated gzip data (zlib: %s)", msg);
}

static int bzip2_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			    size_t *out_len, char *why, size_t whylen)
{
	bz_stream s;
	memset(&s, 0, sizeof(s));
	if (BZ2_bzDecompressInit(&s, 0, 0) != BZ_OK)
		return loader_fail(why, whylen, -ENOMEM, "libbz2: cannot initialize");
	s.next_in = (char *)in;
	s.avail_in = (unsigned int)in_len;
	s.next_out = (char *)out;
	s.avail_out = (unsigned int)cap;
	/* Runs until the stream ends or input or output is exhausted. */
	int r = BZ2_bzDecompress(&s);
	*out_len = cap - s.avail_out;
	bool full = s.avail_out == 0;
	BZ2_bzDecompressEnd(&s);
	if (r == BZ_STREAM_END)
		return 0;
	if (r == BZ_OK && full)
		return too_big(cap, why, whylen);
	if (r == BZ_MEM_ERROR)
		return loader_fail(why, whylen, -ENOMEM, "libbz2: out of memory");
	return loader_fail(why, whylen, -ENOEXEC, "corrupt or truncated bzip2 data (libbz2 error %d)",
			   r);
}

/* Drives an initialized liblzma decoder (xz or legacy .lzma) to the end of its stream. */
static int lzma_run(lzma_stream *s, const char *name, const uint8_t *in, size_t in_len,
		    uint8_t *out, size_t cap, size_t *out_len, char *why, size_t whylen)
{
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = cap;
	lzma_ret r = lzma_code(s, LZMA_FINISH);
	*out_len = cap - s->avail_out;
	bool full = s->avail_out == 0;
	lzma_end(s);
	if (r == LZMA_STREAM_END)
		return 0;
	if ((r == LZMA_OK || r == LZMA_BUF_ERROR) && full)
		return too_big(cap, why, whylen);
	if (r == LZMA_MEM_ERROR)
		return loader_fail(why, whylen, -ENOMEM, "liblzma: out of memory");
	if (r == LZMA_MEMLIMIT_ERROR)
		return loader_fail(why, whylen, -ENOEXEC, "%s data needs more than %llu MiB to decode",
				   name, LZMA_MEMLIMIT >> 20);
	return loader_fail(why, whylen, -ENOEXEC, "corrupt or truncated %s data (liblzma error %d)",
			   name, (int)r);
}

static int xz_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			 size_t *out_len, char *why, size_t whylen)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_stream_decoder(&s, LZMA_MEMLIMIT, 0) != LZMA_OK)
		return loader_fail(why, whylen, -ENOMEM, "liblzma: cannot initialize the xz decoder");
	return lzma_run(&s, "xz", in, in_len, out, cap, out_len, why, whylen);
}

static int lzma_alone_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
				 size_t *out_len, char *why, size_t whylen)
{
	lzma_stream s = LZMA_STREAM_INIT;
	if (lzma_alone_decoder(&s, LZMA_MEMLIMIT) != LZMA_OK)
		return loader_fail(why, whylen, -ENOMEM, "liblzma: cannot initialize the lzma decoder");
	return lzma_run(&s, "lzma", in, in_len, out, cap, out_len, why, whylen);
}

/* One zstd frame, decoded in a single pass straight into out (no window buffer). */
static int zstd_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			   size_t *out_len, char *why, size_t whylen)
{
	size_t frame = ZSTD_findFrameCompressedSize(in, in_len);
	if (ZSTD_isError(frame))
		return loader_fail(why, whylen, -ENOEXEC, "corrupt or truncated zstd frame (%s)",
				   ZSTD_getErrorName(frame));
	size_t n = ZSTD_decompress(out, cap, in, frame);
	if (ZSTD_isError(n)) {
		*out_len = 0;
		if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
			return too_big(cap, why, whylen);
		if (ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
			return loader_fail(why, whylen, -ENOMEM, "libzstd: out of memory");
		return loader_fail(why, whylen, -ENOEXEC, "corrupt zstd data (%s)",
				   ZSTD_getErrorName(n));
	}
	*out_len = n;
	return 0;
}

/* --- LZ4, legacy frame: what the kernel's "lz4 -l" produces -------------------- */

#define LZ4_LEGACY_MAGIC 0x184C2102U
#define LZ4_LEGACY_BLOCK (8U << 20) /* every block decompresses to at most 8 MiB */

/* A sequence of [le32 compressed size][block]; it ends at the end of the input, at
 * the kernel's 4-byte size trailer, or is followed by another legacy frame (the
 * magic again, as when frames are concatenated). */
static int lz4_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			  size_t *out_len, char *why, size_t whylen)
{
	size_t pos = 4, done = 0; /* past the magic */
	unsigned block = 0;
	*out_len = 0;
	while (in_len - pos > 4) {
		uint32_t csize = (uint32_t)in[pos] | (uint32_t)in[pos + 1] << 8 |
				 (uint32_t)in[pos + 2] << 16 | (uint32_t)in[pos + 3] << 24;
		pos += 4;
		if (csize == LZ4_LEGACY_MAGIC)
			continue;
		if (csize == 0 || csize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK))
			return loader_fail(why, whylen, -ENOEXEC,
					   "corrupt lz4 data: block %u claims %u compressed bytes",
					   block, csize);
		if (csize > in_len - pos)
			return loader_fail(why, whylen, -ENOEXEC,
					   "truncated lz4 data: block %u needs %u bytes, %zu left",
					   block, csize, in_len - pos);
		size_t room = MIN((size_t)LZ4_LEGACY_BLOCK, cap - done);
		int n = LZ4_decompress_safe((const char *)in + pos, (char *)out + done, (int)csize,
					    (int)room);
		if (n < 0 && room < LZ4_LEGACY_BLOCK)
			return loader_fail(why, whylen, -EFBIG,
					   "lz4 block %u is corrupt or decompresses past %zu bytes",
					   block, cap);
		if (n < 0)
			return loader_fail(why, whylen, -ENOEXEC, "corrupt lz4 data in block %u", block);
		done += (size_t)n;
		pos += csize;
		block++;
	}
	*out_len = done;
	return 0;
}

/* --- LZO, in the lzop container the kernel build writes ("lzop -9") ------------- */

#define LZOP_F_ADLER32_D 0x0001U
#define LZOP_F_ADLER32_C 0x0002U
#define LZOP_F_H_EXTRA_FIELD 0x0040U
#define LZOP_F_CRC32_D 0x0100U
#define LZOP_F_CRC32_C 0x0200U
#define LZOP_F_H_FILTER 0x0800U
#define LZOP_MAX_BLOCK (64U << 20) /* lzop's own limit on a block's size */

/* A bounds-checked big-endian reader over the input; ok turns false for good on
 * the first read past the end, and every later read returns 0. */
struct be_cursor {
	const uint8_t *p;
	size_t left;
	bool ok;
};

static uint32_t be_get(struct be_cursor *c, size_t n)
{
	uint32_t v = 0;
	if (!c->ok || c->left < n) {
		c->ok = false;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | c->p[i];
	c->p += n;
	c->left -= n;
	return v;
}

static void be_skip(struct be_cursor *c, size_t n)
{
	if (!c->ok || c->left < n) {
		c->ok = false;
		return;
	}
	c->p += n;
	c->left -= n;
}

/* The lzop file header: magic, versions, method, flags, mode, mtime, name, checksum. */
static uint32_t lzop_header(struct be_cursor *c)
{
	be_skip(c, 9); /* magic */
	uint32_t version = be_get(c, 2);
	be_skip(c, 2); /* library version */
	if (version >= 0x0940)
		be_skip(c, 2); /* version needed to extract */
	be_skip(c, 1);	       /* method */
	if (version >= 0x0940)
		be_skip(c, 1); /* level */
	uint32_t flags = be_get(c, 4);
	if (flags & LZOP_F_H_FILTER)
		be_skip(c, 4);
	be_skip(c, 8); /* mode, mtime low */
	if (version >= 0x0940)
		be_skip(c, 4); /* mtime high */
	be_skip(c, be_get(c, 1)); /* file name */
	be_skip(c, 4);		  /* header checksum */
	if (flags & LZOP_F_H_EXTRA_FIELD) {
		be_skip(c, be_get(c, 4));
		be_skip(c, 4);
	}
	return flags;
}

/* One block: [be32 out][be32 in][checksums][data]; stored raw when in == out. */
static int lzop_block(struct be_cursor *c, uint32_t flags, uint32_t dlen, uint8_t *dst,
		      size_t room, char *why, size_t whylen)
{
	uint32_t slen = be_get(c, 4);
	be_skip(c, (flags & LZOP_F_ADLER32_D ? 4 : 0) + (flags & LZOP_F_CRC32_D ? 4 : 0));
	if (slen < dlen)
		be_skip(c, (flags & LZOP_F_ADLER32_C ? 4 : 0) + (flags & LZOP_F_CRC32_C ? 4 : 0));
	if (!c->ok || slen > c->left)
		return loader_fail(why, whylen, -ENOEXEC, "truncated lzo data");
	if (dlen > LZOP_MAX_BLOCK || slen > dlen || slen == 0)
		return loader_fail(why, whylen, -ENOEXEC, "corrupt lzo block (%u -> %u bytes)", slen,
				   dlen);
	if (dlen > room)
		return too_big(room, why, whylen);
	lzo_uint n = dlen;
	if (slen == dlen)
		memcpy(dst, c->p, dlen);
	else if (lzo1x_decompress_safe(c->p, slen, dst, &n, NULL) != LZO_E_OK || n != dlen)
		return loader_fail(why, whylen, -ENOEXEC, "corrupt lzo block");
	be_skip(c, slen);
	return 0;
}

static int lzo_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
			  size_t *out_len, char *why, size_t whylen)
{
	struct be_cursor c = { .p = in, .left = in_len, .ok = true };
	size_t done = 0;
	*out_len = 0;
	if (lzo_init() != LZO_E_OK)
		return loader_fail(why, whylen, -ENOMEM, "liblzo2: cannot initialize");
	uint32_t flags = lzop_header(&c);
	for (;;) {
		uint32_t dlen = be_get(&c, 4);
		if (!c.ok)
			return loader_fail(why, whylen, -ENOEXEC, "truncated lzo data");
		if (dlen == 0) /* end of stream */
			break;
		int rc = lzop_block(&c, flags, dlen, out + done, cap - done, why, whylen);
		if (rc == -EFBIG)
			return too_big(cap, why, whylen);
		if (rc)
			return rc;
		done += dlen;
	}
	*out_len = done;
	return 0;
}

/* --- the table ------------------------------------------------------------------ */

/* Magic numbers as listed under payload_offset in boot.rst and by the codecs. */
static const struct codec codecs[] = {
	{ .name = "gzip", .magic = { 0x1f, 0x8b }, .magic_len = 2, .decompress = gzip_decompress },
	{ .name = "bzip2", .magic = { 'B', 'Z', 'h' }, .magic_len = 3, .decompress = bzip2_decompress },
	{ .name = "lzma", .magic = { 0x5d, 0x00, 0x00 }, .magic_len = 3,
	  .decompress = lzma_alone_decompress },
	{ .name = "xz", .magic = { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, .magic_len = 6,
	  .decompress = xz_decompress },
	{ .name = "lzo", .magic = { 0x89, 'L', 'Z', 'O' }, .magic_len = 4, .decompress = lzo_decompress },
	{ .name = "lz4", .magic = { 0x02, 0x21, 0x4c, 0x18 }, .magic_len = 4,
	  .decompress = lz4_decompress },
	{ .name = "zstd", .magic = { 0x28, 0xb5, 0x2f, 0xfd }, .magic_len = 4,
	  .decompress = zstd_decompress },
};

const struct codec *codec_detect(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(codecs); i++) {
		const struct codec *c = &codecs[i];
		if (len >= c->magic_len && memcmp(data, c->magic, c->magic_len) == 0)
			return c;
	}
	return NULL;
}

int codec_decompress(const struct codec *c, const uint8_t *in, size_t in_len, uint8_t *out,
		     size_t cap, size_t *out_len, char *why, size_t whylen)
{
	*out_len = 0;
	if (in_len < c->magic_len || memcmp(in, c->magic, c->magic_len) != 0)
		return loader_fail(why, whylen, -ENOEXEC, "not %s data (no %s magic)", c->name,
				   c->name);
	if (in_len > DECOMPRESS_MAX_LEN || cap > DECOMPRESS_MAX_LEN)
		return loader_fail(why, whylen, -EFBIG, "%s stream or output larger than %llu MiB",
				   c->name, DECOMPRESS_MAX_LEN >> 20);
	return c->decompress(in, in_len, out, cap, out_len, why, whylen);
}
