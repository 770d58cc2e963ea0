/* libFuzzer target for the snapshot reader (snapshot/snapfile.h): any byte string is
 * a snapshot state file. A file snap_reader_open_buffer accepts is walked whole: every
 * section by position and by (kind, id), and its payload read with every getter in an
 * order the payload itself chooses. A crash, a sanitizer report or a broken promise
 * below (__builtin_trap) is a finding.
 *
 * Each input is tried twice: as it is, and with its header and payload checksums made
 * right, so mutations reach the names, bounds, duplicates and getters behind the CRCs.
 * A real snapshot (tests/unit/fixtures/snapshot-v1.snap) is a good seed:
 *   mkdir -p build/fuzz/corpus-snapfile
 *   cp tests/unit/fixtures/snapshot-v1.snap build/fuzz/corpus-snapfile/
 *   make fuzz-run FUZZ_SECONDS=120 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "snapshot/snapfile.h"

#define FIX_MAX (1 << 20) /* inputs up to this size also get their checksums fixed */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_crc(uint8_t *p, uint32_t c)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(c >> (8 * i));
}

/* Rewrites the header's and each section's checksum, walking the sections as far as
 * their lengths allow. */
static void fix_checksums(uint8_t *b, size_t size)
{
	if (size < SNAP_HEADER_SIZE)
		return;
	put_crc(b + 20, (uint32_t)crc32(0, b, 20));
	size_t off = SNAP_HEADER_SIZE;
	for (uint64_t n = le(b + 16, 4); n > 0; n--) {
		if (size - off < 2 || size - off - 2 < le(b + off, 2) + 2)
			return;
		off += 2 + le(b + off, 2);
		if (size - off < le(b + off, 2) + 2 + 16)
			return;
		off += 2 + le(b + off, 2);
		uint64_t len = le(b + off + 4, 8);
		if (size - off - 16 < len)
			return;
		put_crc(b + off + 12, (uint32_t)crc32(0, b + off + 16, (uInt)len));
		off += 16 + len;
	}
}

static void check_names(const char *kind, const char *id)
{
	size_t kl = strlen(kind), il = strlen(id);
	if (kl < 1 || kl > SNAP_KIND_MAX || il > SNAP_ID_MAX)
		__builtin_trap();
	if (strspn(kind, "abcdefghijklmnopqrstuvwxyz0123456789_-") != kl)
		__builtin_trap();
	for (size_t i = 0; i < il; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			__builtin_trap();
}

/* One getter chosen by the payload, and what every getter promises: a failed read
 * returns 0 (or NULL) and leaves off where it was; a read stays inside the payload. */
static void one_getter(struct snap_cursor *c, uint8_t op)
{
	static uint8_t dst[256];
	uint64_t before = c->off, v = 0;
	const uint8_t *p = NULL;
	uint32_t len = 0, max;
	switch (op % 6) {
	case 0: v = snap_get_u8(c); break;
	case 1: v = snap_get_u16(c); break;
	case 2: v = snap_get_u32(c); break;
	case 3: v = snap_get_u64(c); break;
	case 4: snap_get_blob(c, dst, op & 0x80 ? 0 : (uint32_t)(op >> 3)); break;
	default:
		max = op & 0x80 ? UINT32_MAX : (uint32_t)(op >> 3);
		p = snap_get_blob_max(c, max, &len);
		if (p && (c->failed || len > max || p + len != c->p + c->off))
			__builtin_trap();
		if (!p && (!c->failed || len))
			__builtin_trap();
		for (uint32_t i = 0; p && i < len; i++)
			v += p[i]; /* every byte readable (ASan) */
	}
	if (c->off > c->len || (c->failed && (v || c->off != before)))
		__builtin_trap();
}

static void walk_payload(struct snap_cursor *c, const char *kind, const char *id)
{
	char err[256] = "";
	while (!c->failed && c->off < c->len)
		one_getter(c, snap_get_u8(c));
	int rc = snap_cursor_finish(c, kind, id, err, sizeof(err));
	if (rc != (c->failed || c->off != c->len ? -EINVAL : 0))
		__builtin_trap();
	if (rc && (strncmp(err, "section ", 8) || strchr(err, '\n')))
		__builtin_trap();
}

/* An accepted file is tiled exactly by its header and sections, and each cursor holds
 * the very payload bytes of the input. */
static void walk(const struct snap_reader *r, const uint8_t *data, size_t size)
{
	uint32_t n = snap_section_count(r), version, found_version;
	const char *kind, *id;
	struct snap_cursor c, found;
	size_t off = SNAP_HEADER_SIZE;
	if (n > SNAP_MAX_SECTIONS || snap_reader_format_version(r) != SNAP_FORMAT_VERSION)
		__builtin_trap();
	for (uint32_t i = 0; i < n; i++) {
		snap_section_at(r, i, &kind, &id, &version, &c);
		check_names(kind, id);
		off += 2 + strlen(kind) + 2 + strlen(id) + 16;
		if (c.failed || c.off || !c.p || off > size || c.len > size - off ||
		    memcmp(c.p, data + off, c.len))
			__builtin_trap();
		off += c.len;
		/* Unique: the lookup finds this very section. */
		if (snap_section_find(r, kind, id, &found_version, &found) || found.p != c.p ||
		    found.len != c.len || found_version != version)
			__builtin_trap();
		walk_payload(&c, kind, id);
	}
	if (off != size)
		__builtin_trap();
	snap_section_at(r, n, &kind, &id, &version, &c);
	if (!c.failed || *kind || *id || snap_get_u8(&c))
		__builtin_trap();
}

static void check_one(const uint8_t *data, size_t size)
{
	struct snap_reader *r = NULL;
	char err[512] = "";
	int rc = snap_reader_open_buffer("fuzz", data, size, &r, err, sizeof(err));
	if (rc == 0) {
		walk(r, data, size);
		snap_reader_close(r);
		return;
	}
	if (r || strncmp(err, "snapshot fuzz: ", 15) || strchr(err, '\n'))
		__builtin_trap(); /* a refusal is exactly one line naming the file */
	if (rc != -EBADMSG && rc != -EPROTONOSUPPORT && rc != -ENOEXEC && rc != -ENOMEM &&
	    rc != -EFBIG)
		__builtin_trap(); /* only the documented statuses */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	if (size < SNAP_HEADER_SIZE || size > FIX_MAX)
		return 0;
	uint8_t *fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fix_checksums(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		check_one(fixed, size);
	free(fixed);
	return 0;
}
