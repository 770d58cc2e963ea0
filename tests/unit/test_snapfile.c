/* The snapshot state file (snapshot/snapfile.h): every field type and blobs round
 * trip; the bytes are the documented layout; a file of the previous format version
 * (tests/unit/fixtures/snapshot-v1.snap) still reads back field by field; every kind
 * of hostile or damaged file is refused before use with its own message (golden
 * strings: a changed message is a visible change); the writer's commit is atomic and
 * durable.
 *
 * The fixture is made by this file's write_v1_sample, with
 *   ARGON_WRITE_SNAPSHOT_FIXTURE=tests/unit/fixtures/snapshot-v1.snap \
 *     build/asan/tests/test_snapfile
 * When SNAP_FORMAT_VERSION moves to 2: keep snapshot-v1.snap and
 * v1_fixture_reads_back_field_by_field as they are (the previous version's sample,
 * made by the previous version's code), drop the byte-for-byte comparison below, and
 * make a snapshot-v2.snap the same way. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "snapshot/snapfile.h"

#define FIXTURE_V1 "tests/unit/fixtures/snapshot-v1.snap"

static char dir[] = "/tmp/argon-snapfile-XXXXXX";

static const char *tmp(const char *name)
{
	static char path[64][PATH_MAX]; /* enough for one test's paths held at once */
	static int next;
	char *p = path[next++ % 64];
	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- the durability events of a commit, seen by interposing libc's fsync and rename
 * (this executable's definitions win over libc's, also for the library's calls) ---- */

static char events[8][PATH_MAX + 64];
static int nevents;

static void event(const char *what, const char *path)
{
	if (nevents < 8)
		snprintf(events[nevents++], sizeof(events[0]), "%s %s", what, path);
}

int fsync(int fd);
int fsync(int fd)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	event("fsync", path);
	return (int)syscall(SYS_fsync, fd);
}

int rename(const char *from, const char *to);
int rename(const char *from, const char *to)
{
	event("rename", from);
	return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

/* ---- a file built byte by byte from the documented layout, not by the writer ---- */

struct fb {
	uint8_t b[8192];
	size_t len;
};

static void fb_bytes(struct fb *f, const void *p, size_t n)
{
	assert_true(f->len + n <= sizeof(f->b));
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static void fb_le(struct fb *f, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		f->b[f->len++] = (uint8_t)(v >> (8 * i));
}

static void fb_fix_header(struct fb *f)
{
	uint32_t c = (uint32_t)crc32(0, f->b, 20);
	for (int i = 0; i < 4; i++)
		f->b[20 + i] = (uint8_t)(c >> (8 * i));
}

static void fb_header(struct fb *f, const char *magic, uint32_t version, uint32_t arch,
		      uint32_t count)
{
	f->len = 0;
	fb_bytes(f, magic, 8);
	fb_le(f, version, 4);
	fb_le(f, arch, 4);
	fb_le(f, count, 4);
	fb_le(f, 0, 4);
	fb_fix_header(f);
}

/* A section with kind and id of the given lengths, length and crc as stated. */
static void fb_section_raw(struct fb *f, const char *kind, size_t kl, const char *id, size_t il,
			   uint32_t version, uint64_t claimed, const void *payload, size_t n,
			   uint32_t crc)
{
	fb_le(f, kl, 2);
	fb_bytes(f, kind, kl);
	fb_le(f, il, 2);
	fb_bytes(f, id, il);
	fb_le(f, version, 4);
	fb_le(f, claimed, 8);
	fb_le(f, crc, 4);
	fb_bytes(f, payload, n);
}

static void fb_section(struct fb *f, const char *kind, const char *id, uint32_t version,
		       const void *payload, size_t n)
{
	fb_section_raw(f, kind, strlen(kind), id, strlen(id), version, n, payload, n,
		       (uint32_t)crc32(0, payload, (uInt)n));
}

static void expect_refused(const struct fb *f, int rc, const char *message)
{
	struct snap_reader *r = (void *)1;
	char err[512] = "";
	assert_int_equal(snap_reader_open_buffer("t.snap", f->b, f->len, &r, err, sizeof(err)), rc);
	assert_null(r);
	assert_string_equal(err, message);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, cap);
	assert_true(n >= 0 && (size_t)n < cap);
	close(fd);
	return (size_t)n;
}

static struct snap_reader *open_ok(const char *path)
{
	struct snap_reader *r = NULL;
	char err[512] = "";
	int rc = snap_reader_open(path, &r, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	return r;
}

static void commit_ok(struct snap_writer *w)
{
	char err[512] = "";
	int rc = snap_writer_commit(w, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
}

static void finish_ok(const struct snap_cursor *c, const char *kind, const char *id)
{
	char err[256] = "";
	int rc = snap_cursor_finish(c, kind, id, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
}

/* ---- the previous version's sample ---- */

static const uint8_t v1_blob[16] = { 0, 1, 2, 3, 0xfc, 0xfd, 0xfe, 0xff,
				     'a', 'r', 'g', 'o', 'n', 0, '\n', 0x80 };

/* Every field type, an empty id, an empty payload, an id with a space. */
static int write_v1_sample(const char *path, char *err, size_t errlen)
{
	struct snap_writer *w;
	int rc = snap_writer_create(path, &w, err, errlen);
	if (rc)
		return rc;
	snap_section_begin(w, "vm", "", 1);
	snap_put_u32(w, 2);
	snap_put_u64(w, 256ULL << 20);
	snap_put_blob(w, "argon", 5);
	snap_section_end(w);
	for (uint32_t i = 0; i < 2; i++) {
		char id[8];
		snprintf(id, sizeof(id), "%u", i);
		snap_section_begin(w, "vcpu", id, 3);
		snap_put_u8(w, (uint8_t)(0xa0 + i));
		snap_put_u16(w, (uint16_t)(0xbeef + i));
		snap_put_u32(w, 0xdeadbeef + i);
		snap_put_u64(w, 0x0123456789abcdefULL + i);
		snap_put_blob(w, v1_blob, sizeof(v1_blob));
		snap_section_end(w);
	}
	snap_section_begin(w, "drives", "root fs", 1);
	snap_put_blob(w, "/var/lib/argon/rootfs.ext4", 26);
	snap_put_u8(w, 1);
	snap_section_end(w);
	snap_section_begin(w, "serial", "", 1);
	snap_section_end(w);
	return snap_writer_commit(w, err, errlen);
}

static void check_v1_vcpu(struct snap_reader *r, uint32_t i)
{
	char id[8];
	uint8_t blob[16];
	uint32_t version;
	struct snap_cursor c;
	snprintf(id, sizeof(id), "%u", i);
	assert_int_equal(snap_section_find(r, "vcpu", id, &version, &c), 0);
	assert_int_equal(version, 3);
	assert_int_equal(snap_get_u8(&c), 0xa0 + i);
	assert_int_equal(snap_get_u16(&c), 0xbeef + i);
	assert_int_equal(snap_get_u32(&c), 0xdeadbeef + i);
	assert_true(snap_get_u64(&c) == 0x0123456789abcdefULL + i);
	snap_get_blob(&c, blob, sizeof(blob));
	assert_memory_equal(blob, v1_blob, sizeof(blob));
	finish_ok(&c, "vcpu", id);
}

static void v1_fixture_reads_back_field_by_field(void **state)
{
	struct snap_reader *r = open_ok(FIXTURE_V1);
	const char *kind, *id;
	uint32_t version, len;
	struct snap_cursor c;
	assert_int_equal(snap_reader_format_version(r), 1);
	assert_int_equal(snap_section_count(r), 5);
	snap_section_at(r, 0, &kind, &id, &version, &c);
	assert_string_equal(kind, "vm");
	assert_string_equal(id, "");
	assert_int_equal(version, 1);
	assert_int_equal(snap_get_u32(&c), 2);
	assert_true(snap_get_u64(&c) == 256ULL << 20);
	const void *name = snap_get_blob_max(&c, 64, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(name, "argon", 5);
	finish_ok(&c, kind, id);
	check_v1_vcpu(r, 0);
	check_v1_vcpu(r, 1);
	snap_section_at(r, 3, &kind, &id, &version, &c);
	assert_string_equal(kind, "drives");
	assert_string_equal(id, "root fs");
	const void *path = snap_get_blob_max(&c, 4096, &len);
	assert_int_equal(len, 26);
	assert_memory_equal(path, "/var/lib/argon/rootfs.ext4", 26);
	assert_int_equal(snap_get_u8(&c), 1);
	finish_ok(&c, kind, id);
	assert_int_equal(snap_section_find(r, "serial", "", &version, &c), 0);
	assert_int_equal(c.len, 0);
	finish_ok(&c, "serial", "");
	snap_reader_close(r);
}

/* Golden bytes while the format is version 1 (see the top of this file). */
static void v1_fixture_is_what_this_writer_makes(void **state)
{
	static uint8_t made[4096], kept[4096];
	char err[512] = "";
	assert_int_equal(SNAP_FORMAT_VERSION, 1);
	assert_int_equal(write_v1_sample(tmp("v1.snap"), err, sizeof(err)), 0);
	size_t n = read_file(tmp("v1.snap"), made, sizeof(made));
	assert_int_equal(read_file(FIXTURE_V1, kept, sizeof(kept)), n);
	assert_memory_equal(made, kept, n);
	unlink(tmp("v1.snap"));
}

/* ---- round trips ---- */

static void layout_is_the_documented_bytes(void **state)
{
	static uint8_t made[256];
	struct snap_writer *w;
	char err[256];
	struct fb f;
	const uint8_t payload[] = { 4, 3, 2, 1, 2, 0, 0, 0, 'h', 'i' };
	assert_int_equal(snap_writer_create(tmp("layout.snap"), &w, err, sizeof(err)), 0);
	assert_int_equal(snap_section_begin(w, "clock", "", 0x11223344), 0);
	snap_put_u32(w, 0x01020304);
	snap_put_blob(w, "hi", 2);
	assert_int_equal(snap_section_end(w), 0);
	commit_ok(w);
	fb_header(&f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 1);
	fb_section(&f, "clock", "", 0x11223344, payload, sizeof(payload));
	assert_int_equal(read_file(tmp("layout.snap"), made, sizeof(made)), f.len);
	assert_memory_equal(made, f.b, f.len);
	unlink(tmp("layout.snap"));
}

static void every_field_type_round_trips(void **state)
{
	static uint8_t big[100000];
	uint8_t one = 0x5a, back[sizeof(big)];
	struct snap_writer *w;
	struct snap_cursor c;
	uint32_t version, len;
	char err[256];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 8));
	assert_int_equal(snap_writer_create(tmp("types.snap"), &w, err, sizeof(err)), 0);
	assert_int_equal(snap_section_begin(w, "all_types-1", "x y/z~", 0xffffffff), 0);
	snap_put_u8(w, 0);
	snap_put_u8(w, 0xff);
	snap_put_u16(w, 0xffff);
	snap_put_u32(w, 0xffffffff);
	snap_put_u64(w, UINT64_MAX);
	snap_put_u64(w, 0x8000000000000001ULL);
	snap_put_blob(w, NULL, 0);
	snap_put_blob(w, &one, 1);
	snap_put_blob(w, big, sizeof(big));
	snap_put_blob(w, big, 300);
	assert_int_equal(snap_section_end(w), 0);
	commit_ok(w);

	struct snap_reader *r = open_ok(tmp("types.snap"));
	assert_int_equal(snap_section_find(r, "all_types-1", "x y/z~", &version, &c), 0);
	assert_int_equal(version, 0xffffffff);
	assert_int_equal(snap_get_u8(&c), 0);
	assert_int_equal(snap_get_u8(&c), 0xff);
	assert_int_equal(snap_get_u16(&c), 0xffff);
	assert_int_equal(snap_get_u32(&c), 0xffffffff);
	assert_true(snap_get_u64(&c) == UINT64_MAX);
	assert_true(snap_get_u64(&c) == 0x8000000000000001ULL);
	assert_non_null(snap_get_blob_max(&c, 0, &len));
	assert_int_equal(len, 0);
	snap_get_blob(&c, back, 1);
	assert_int_equal(back[0], one);
	snap_get_blob(&c, back, sizeof(big));
	assert_memory_equal(back, big, sizeof(big));
	const void *p = snap_get_blob_max(&c, 300, &len);
	assert_int_equal(len, 300);
	assert_memory_equal(p, big, 300);
	assert_false(c.failed);
	finish_ok(&c, "all_types-1", "x y/z~");
	snap_reader_close(r);
	unlink(tmp("types.snap"));
}

static void many_sections_are_found_by_kind_and_id(void **state)
{
	enum { N = 1000 };
	struct snap_writer *w;
	struct snap_cursor c;
	const char *kind, *id;
	uint32_t version;
	char err[256], name[16];
	assert_int_equal(snap_writer_create(tmp("many.snap"), &w, err, sizeof(err)), 0);
	for (uint32_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "%u", N - 1 - i); /* file order is not sorted order */
		assert_int_equal(snap_section_begin(w, i % 2 ? "vcpu" : "drives", name, i), 0);
		snap_put_u32(w, i);
		assert_int_equal(snap_section_end(w), 0);
	}
	commit_ok(w);
	struct snap_reader *r = open_ok(tmp("many.snap"));
	assert_int_equal(snap_section_count(r), N);
	for (uint32_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "%u", N - 1 - i);
		snap_section_at(r, i, &kind, &id, &version, &c);
		assert_string_equal(kind, i % 2 ? "vcpu" : "drives");
		assert_string_equal(id, name);
		assert_int_equal(version, i);
		assert_int_equal(snap_get_u32(&c), i);
		assert_int_equal(snap_section_find(r, kind, name, &version, &c), 0);
		assert_int_equal(version, i);
		assert_int_equal(snap_get_u32(&c), i);
		finish_ok(&c, kind, id);
	}
	/* vcpu has the even ids, drives the odd: an id under the other kind, a prefix,
	 * and names no section has. */
	assert_int_equal(snap_section_find(r, "vcpu", "999", &version, &c), -ENOENT);
	assert_int_equal(snap_section_find(r, "drives", "999", &version, &c), 0);
	assert_int_equal(snap_section_find(r, "vcpu", "99", &version, &c), -ENOENT);
	assert_int_equal(snap_section_find(r, "vcpu", "", &version, &c), -ENOENT);
	assert_int_equal(snap_section_find(r, "vcp", "1", NULL, NULL), -ENOENT);
	assert_int_equal(snap_section_find(r, "vm", "", NULL, NULL), -ENOENT);
	assert_int_equal(snap_section_find(r, "an-overlong-kind-name-of-40-bytes-xxxxxx", "", NULL,
					   NULL), -ENOENT);
	/* Past the last section: empty names and a failed cursor. */
	snap_section_at(r, N, &kind, &id, &version, &c);
	assert_string_equal(kind, "");
	assert_string_equal(id, "");
	assert_true(c.failed);
	assert_int_equal(snap_get_u8(&c), 0);
	snap_reader_close(r);
	unlink(tmp("many.snap"));
}

/* ---- refusals ---- */

static void valid(struct fb *f)
{
	fb_header(f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 2);
	fb_section(f, "vm", "", 1, "\x02\0\0\0", 4);
	fb_section(f, "vcpu", "0", 1, "abcd", 4);
}

static void a_valid_file_opens(void **state)
{
	struct fb f;
	struct snap_reader *r;
	char err[256];
	valid(&f);
	assert_int_equal(snap_reader_open_buffer("t.snap", f.b, f.len, &r, err, sizeof(err)), 0);
	assert_int_equal(snap_section_count(r), 2);
	snap_reader_close(r);
	snap_reader_close(NULL);
}

static void bad_magic_is_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.b[0] = 'X';
	expect_refused(&f, -EBADMSG, "snapshot t.snap: not an argon snapshot (no \"ARGONSNP\" magic)");
	memcpy(f.b, "ELF", 4);
	f.len = 4;
	expect_refused(&f, -EBADMSG, "snapshot t.snap: not an argon snapshot (no \"ARGONSNP\" magic)");
}

static void wrong_format_version_is_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.b[8] = 7;
	fb_fix_header(&f);
	expect_refused(&f, -EPROTONOSUPPORT,
		       "snapshot t.snap: format version 7; this argon-vmm reads version 1");
	/* Named before the checksum: a later version may change the rest of the header. */
	f.b[8] = 2;
	f.b[20] ^= 1;
	expect_refused(&f, -EPROTONOSUPPORT,
		       "snapshot t.snap: format version 2; this argon-vmm reads version 1");
	f.b[8] = 0;
	fb_fix_header(&f);
	expect_refused(&f, -EPROTONOSUPPORT,
		       "snapshot t.snap: format version 0; this argon-vmm reads version 1");
}

static void wrong_architecture_is_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.b[12] = 2;
	fb_fix_header(&f);
	expect_refused(&f, -ENOEXEC, "snapshot t.snap: made on architecture 2; this host is x86_64");
}

static void header_checksum_mismatch_is_refused(void **state)
{
	struct fb f;
	char msg[256];
	valid(&f);
	uint32_t good = (uint32_t)crc32(0, f.b, 20);
	f.b[16] = 1; /* the count, changed without the checksum */
	snprintf(msg, sizeof(msg), "snapshot t.snap: header is corrupted (checksum 0x%08x, "
		 "expected 0x%08x)", good, (uint32_t)crc32(0, f.b, 20));
	expect_refused(&f, -EBADMSG, msg);
}

static void truncated_header_is_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.len = 23;
	expect_refused(&f, -EBADMSG,
		       "snapshot t.snap: header is truncated (23 bytes, a header has 24)");
	f.len = 5;
	expect_refused(&f, -EBADMSG, "snapshot t.snap: header is truncated (5 bytes, a header has 24)");
	f.len = 0;
	expect_refused(&f, -EBADMSG, "snapshot t.snap: header is truncated (0 bytes, a header has 24)");
}

static void truncated_section_is_refused(void **state)
{
	static const uint8_t payload[40];
	struct fb f;
	valid(&f);
	size_t second = SNAP_HEADER_SIZE + 2 + 2 + 2 + 16 + 4;
	f.len = second + 10; /* a file cut short: too small for the sections it counts */
	expect_refused(&f, -EBADMSG, "snapshot t.snap: truncated or corrupted: the header counts 2 "
				     "sections, the 36 bytes after it hold at most 1");
	f.len = second + 2 + 4 + 2 + 16 - 1; /* "vcpu": too short for even an empty id */
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 2 of 2 is truncated (its header has "
				     "at least 24 bytes, 23 left)");
	f.len = second + 2 + 4 + 2 + 1 + 16 - 1; /* "vcpu", id "0", one byte short */
	expect_refused(&f, -EBADMSG,
		       "snapshot t.snap: section 2 of 2 (vcpu) is truncated (its header has 25 "
		       "bytes, 24 left)");
	f.len = second + 2 + 4 + 2 + 1 + 16 + 3; /* a payload byte short */
	expect_refused(&f, -EBADMSG,
		       "snapshot t.snap: section vcpu/0 is truncated (claims 4 bytes, 3 left)");
	fb_header(&f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 2);
	fb_section(&f, "vm", "", 1, payload, sizeof(payload));
	fb_bytes(&f, "\x04\0vcpu\x01\0", 9); /* the next section's header, cut */
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 2 of 2 is truncated (a section "
				     "header has at least 21 bytes, 9 left)");
}

static void length_past_the_end_is_refused(void **state)
{
	static const uint8_t payload[100];
	struct fb f;
	fb_header(&f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 1);
	fb_section_raw(&f, "vcpu", 4, "1", 1, 1, 4096, payload, sizeof(payload), 0);
	expect_refused(&f, -EBADMSG,
		       "snapshot t.snap: section vcpu/1 is truncated (claims 4096 bytes, 100 left)");
	fb_header(&f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 1);
	fb_section_raw(&f, "vcpu", 4, "1", 1, 1, UINT64_MAX, payload, sizeof(payload), 0);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section vcpu/1 is truncated (claims "
				     "18446744073709551615 bytes, 100 left)");
}

static void section_counts_the_file_cannot_hold_are_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.b[16] = 3; /* 3 * 21 > 55 bytes */
	fb_fix_header(&f);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: truncated or corrupted: the header counts 3 "
				     "sections, the 55 bytes after it hold at most 2");
	memset(f.b + 16, 0xff, 4);
	fb_fix_header(&f);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: the header counts 4294967295 sections; at "
				     "most 65536 are allowed");
	f.b[16] = 1;
	memset(f.b + 17, 0, 3);
	fb_fix_header(&f);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: 29 bytes after the last section (the "
				     "header counts 1 section)");
}

static void payload_checksum_mismatch_is_refused(void **state)
{
	struct fb f;
	char msg[256];
	valid(&f);
	f.b[f.len - 1] = 'X';
	snprintf(msg, sizeof(msg), "snapshot t.snap: section vcpu/0 is corrupted (checksum "
		 "0x%08x, expected 0x%08x)", (uint32_t)crc32(0, (const Bytef *)"abcd", 4),
		 (uint32_t)crc32(0, (const Bytef *)"abcX", 4));
	expect_refused(&f, -EBADMSG, msg);
}

static void duplicate_section_is_refused(void **state)
{
	struct fb f;
	fb_header(&f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 4);
	fb_section(&f, "vcpu", "0", 1, "", 0);
	fb_section(&f, "vcpu", "1", 1, "", 0);
	fb_section(&f, "vm", "", 1, "", 0);
	fb_section(&f, "vcpu", "1", 2, "x", 1);
	expect_refused(&f, -EBADMSG,
		       "snapshot t.snap: section vcpu/1 appears twice (sections 2 and 4 of 4)");
}

static void one_section(struct fb *f, const char *kind, size_t kl, const char *id, size_t il)
{
	fb_header(f, SNAP_MAGIC, 1, SNAP_ARCH_X86_64, 1);
	fb_section_raw(f, kind, kl, id, il, 1, 0, "", 0, 0);
}

static void bad_kind_and_id_are_refused(void **state)
{
	static const char longer[80] = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop"
				       "qrstuvwxyz0123456789";
	struct fb f;
	one_section(&f, "vCpu", 4, "0", 1);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1: kind has byte 0x43 at 1, "
				     "expected [a-z0-9_-]");
	one_section(&f, "vc\0u", 4, "0", 1);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1: kind has byte 0x00 at 2, "
				     "expected [a-z0-9_-]");
	one_section(&f, "", 0, "0", 1);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1: kind length 0 is out of "
				     "range, expected 1..31");
	one_section(&f, longer, 32, "", 0);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1: kind length 32 is out of "
				     "range, expected 1..31");
	one_section(&f, "vcpu", 4, "a\nb", 3);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1 (vcpu): id has byte 0x0a at "
				     "1, expected printable ASCII");
	one_section(&f, "vcpu", 4, "\xff", 1);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1 (vcpu): id has byte 0xff at "
				     "0, expected printable ASCII");
	one_section(&f, "vcpu", 4, longer, 65);
	expect_refused(&f, -EBADMSG, "snapshot t.snap: section 1 of 1 (vcpu): id length 65 is out "
				     "of range, expected 0..64");
	/* The longest names are fine. */
	one_section(&f, longer, 31, longer, 64);
	struct snap_reader *r;
	char err[256];
	assert_int_equal(snap_reader_open_buffer("t.snap", f.b, f.len, &r, err, sizeof(err)), 0);
	snap_reader_close(r);
}

static void file_larger_than_the_cap_is_refused(void **state)
{
	const char *path = tmp("big.snap");
	struct snap_reader *r = (void *)1;
	char err[256], msg[PATH_MAX + 128];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SNAP_MAX_FILE_SIZE + 1), 0); /* sparse: costs nothing */
	close(fd);
	assert_int_equal(snap_reader_open(path, &r, err, sizeof(err)), -EFBIG);
	assert_null(r);
	snprintf(msg, sizeof(msg), "snapshot %s: 67108865 bytes; a snapshot state file holds at "
		 "most 67108864", path);
	assert_string_equal(err, msg);
	unlink(path);
	assert_int_equal(snap_reader_open_buffer("t.snap", "", SNAP_MAX_FILE_SIZE + 1ULL, &r, err,
						 sizeof(err)), -EFBIG);
}

static void expect_open_refused(const char *path, int rc, const char *what)
{
	struct snap_reader *r = (void *)1;
	char err[PATH_MAX + 128], msg[PATH_MAX + 128];
	assert_int_equal(snap_reader_open(path, &r, err, sizeof(err)), rc);
	assert_null(r);
	snprintf(msg, sizeof(msg), "snapshot %s: %s", path, what);
	assert_string_equal(err, msg);
}

static void missing_directory_and_special_files_are_refused(void **state)
{
	expect_open_refused(tmp("absent.snap"), -ENOENT, "cannot open: No such file or directory");
	expect_open_refused(dir, -EISDIR, "is a directory, not a snapshot file");
	assert_int_equal(mkfifo(tmp("fifo.snap"), 0600), 0); /* must not hang the open */
	expect_open_refused(tmp("fifo.snap"), -EINVAL, "is not a regular file");
	unlink(tmp("fifo.snap"));
	write_file(tmp("empty.snap"), "", 0);
	expect_open_refused(tmp("empty.snap"), -EBADMSG,
			    "header is truncated (0 bytes, a header has 24)");
	unlink(tmp("empty.snap"));
}

/* A damaged file on disk, not only in memory: the file path runs the same checks. */
static void damaged_file_on_disk_is_refused(void **state)
{
	struct fb f;
	valid(&f);
	f.len -= 1;
	write_file(tmp("cut.snap"), f.b, f.len);
	expect_open_refused(tmp("cut.snap"), -EBADMSG,
			    "section vcpu/0 is truncated (claims 4 bytes, 3 left)");
	unlink(tmp("cut.snap"));
}

/* ---- cursors ---- */

static struct snap_cursor cursor_over(const void *p, uint64_t len)
{
	return (struct snap_cursor){ .p = p, .len = len };
}

static void expect_finish(const struct snap_cursor *c, const char *message)
{
	char err[256] = "";
	assert_int_equal(snap_cursor_finish(c, "vcpu", "0", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, message);
}

static void reading_past_the_end_fails_the_cursor(void **state)
{
	const uint8_t b[6] = { 1, 2, 3, 4, 5, 6 };
	struct snap_cursor c = cursor_over(b, 4);
	assert_int_equal(snap_get_u16(&c), 0x0201);
	assert_true(snap_get_u64(&c) == 0);
	assert_true(c.failed);
	assert_int_equal(c.off, 2);
	/* Sticky: bytes are left, but a failed cursor reads nothing more. */
	assert_int_equal(snap_get_u8(&c), 0);
	assert_int_equal(snap_get_u16(&c), 0);
	assert_int_equal(snap_get_u32(&c), 0);
	assert_int_equal(c.off, 2);
	expect_finish(&c, "section vcpu/0 is truncated or malformed at byte 2 of 4");
	c = cursor_over(b, 4);
	assert_int_equal(snap_get_u32(&c), 0x04030201);
	assert_int_equal(snap_get_u8(&c), 0);
	assert_true(c.failed);
	c = cursor_over(NULL, 0); /* an empty payload */
	finish_ok(&c, "vcpu", "0");
	assert_int_equal(snap_get_u8(&c), 0);
	assert_true(c.failed);
}

static void leftover_bytes_are_reported(void **state)
{
	const uint8_t b[14] = { 0 };
	struct snap_cursor c = cursor_over(b, sizeof(b));
	snap_get_u16(&c);
	expect_finish(&c, "section vcpu/0: 12 bytes left over");
	char err[64];
	assert_int_equal(snap_cursor_finish(&c, "vm", "", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "section vm: 12 bytes left over");
}

static void blob_of_the_wrong_length_fails_the_cursor(void **state)
{
	const uint8_t b[] = { 7, 12, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	uint8_t dst[16];
	const uint8_t *p;
	uint32_t len = 99;
	struct snap_cursor c = cursor_over(b, sizeof(b));
	assert_int_equal(snap_get_u8(&c), 7);
	memset(dst, 0xee, sizeof(dst));
	snap_get_blob(&c, dst, 16); /* a 12-byte blob read as 16 */
	assert_true(c.failed);
	assert_int_equal(c.off, 1);
	for (size_t i = 0; i < sizeof(dst); i++)
		assert_int_equal(dst[i], 0);
	expect_finish(&c, "section vcpu/0 is truncated or malformed at byte 1 of 17");
	/* blob_max: longer than max, then the same blob within max. */
	c = cursor_over(b, sizeof(b));
	snap_get_u8(&c);
	assert_null(snap_get_blob_max(&c, 11, &len));
	assert_int_equal(len, 0);
	assert_true(c.failed);
	assert_int_equal(c.off, 1);
	c = cursor_over(b, sizeof(b));
	snap_get_u8(&c);
	p = snap_get_blob_max(&c, 12, &len);
	assert_int_equal(len, 12);
	assert_ptr_equal(p, b + 5);
	finish_ok(&c, "vcpu", "0");
	/* A blob claiming more than the payload holds, in both getters. */
	c = cursor_over(b + 1, 10);
	assert_null(snap_get_blob_max(&c, UINT32_MAX, &len));
	assert_true(c.failed);
	c = cursor_over(b + 1, 10);
	snap_get_blob(&c, dst, 12);
	assert_true(c.failed);
	assert_int_equal(c.off, 0);
}

/* ---- the writer ---- */

static void expect_commit_fails(struct snap_writer *w, const char *path, int rc,
				const char *what)
{
	char err[PATH_MAX + 256], msg[PATH_MAX + 256];
	assert_int_equal(snap_writer_commit(w, err, sizeof(err)), rc);
	snprintf(msg, sizeof(msg), "snapshot %s: %s", path, what);
	assert_string_equal(err, msg);
	assert_false(exists(path));
	snprintf(msg, sizeof(msg), "%s.tmp", path);
	assert_false(exists(msg));
}

static struct snap_writer *writer(const char *path)
{
	struct snap_writer *w;
	char err[256];
	assert_int_equal(snap_writer_create(path, &w, err, sizeof(err)), 0);
	return w;
}

static void writer_refuses_what_the_reader_would(void **state)
{
	const char *path = tmp("w.snap");
	struct snap_writer *w = writer(path);
	assert_int_equal(snap_section_begin(w, "Vcpu", "0", 1), -EINVAL);
	assert_int_equal(snap_section_begin(w, "vcpu", "0", 1), -EINVAL); /* the first error stays */
	expect_commit_fails(w, path, -EINVAL, "section Vcpu/0: kind has byte 0x56 at 0, expected "
					      "[a-z0-9_-]");
	w = writer(path);
	assert_int_equal(snap_section_begin(w, "vcpu", "tab\there", 1), -EINVAL);
	expect_commit_fails(w, path, -EINVAL, "section vcpu/tab\there: id has byte 0x09 at 3, "
					      "expected printable ASCII");
	w = writer(path);
	assert_int_equal(snap_section_begin(w, "", "", 1), -EINVAL);
	expect_commit_fails(w, path, -EINVAL, "section : kind length 0 is out of range, expected "
					      "1..31");
	w = writer(path);
	snap_section_begin(w, "vcpu", "0", 1);
	snap_section_end(w);
	assert_int_equal(snap_section_begin(w, "vcpu", "0", 2), -EEXIST);
	snap_put_u8(w, 1); /* ignored after the failure */
	expect_commit_fails(w, path, -EEXIST, "section vcpu/0 written twice");
	w = writer(path);
	snap_section_begin(w, "vcpu", "0", 1);
	assert_int_equal(snap_section_begin(w, "vcpu", "1", 1), -EBUSY);
	expect_commit_fails(w, path, -EBUSY, "section vcpu/1 begun inside section vcpu/0");
	w = writer(path);
	snap_put_u32(w, 1);
	assert_int_equal(snap_section_begin(w, "vcpu", "0", 1), -EINVAL);
	expect_commit_fails(w, path, -EINVAL, "a field written outside any section");
	w = writer(path);
	assert_int_equal(snap_section_end(w), -EINVAL);
	expect_commit_fails(w, path, -EINVAL, "a section ended that was never begun");
	w = writer(path);
	snap_section_begin(w, "vm", NULL, 1);
	expect_commit_fails(w, path, -EINVAL, "section vm was never ended");
}

static void writer_refuses_a_state_file_over_the_cap(void **state)
{
	const char *path = tmp("huge.snap");
	static uint8_t mib[1 << 20];
	struct snap_writer *w = writer(path);
	snap_section_begin(w, "memory-by-mistake", "", 1);
	for (int i = 0; i < 64; i++)
		snap_put_blob(w, mib, sizeof(mib));
	assert_int_equal(snap_section_end(w), -EFBIG);
	expect_commit_fails(w, path, -EFBIG, "section memory-by-mistake makes the state file "
					     "larger than 67108864 bytes");
}

static void writer_create_names_the_file(void **state)
{
	struct snap_writer *w = (void *)1;
	char err[256];
	assert_int_equal(snap_writer_create("/nonexistent-argon/vm.snap", &w, err, sizeof(err)),
			 -ENOENT);
	assert_null(w);
	assert_string_equal(err, "snapshot /nonexistent-argon/vm.snap: cannot create "
				 "/nonexistent-argon/vm.snap.tmp: No such file or directory");
}

static void abort_leaves_no_file(void **state)
{
	const char *path = tmp("abort.snap"), *tmpfile = tmp("abort.snap.tmp");
	struct snap_writer *w = writer(path);
	snap_section_begin(w, "vm", "", 1);
	snap_put_u64(w, 1);
	snap_section_end(w);
	assert_true(exists(tmpfile));
	assert_false(exists(path));
	snap_writer_abort(w);
	assert_false(exists(tmpfile));
	assert_false(exists(path));
	snap_writer_abort(NULL);
}

/* One section vm with value v, committed at path. */
static void write_value(const char *path, uint32_t v)
{
	struct snap_writer *w = writer(path);
	snap_section_begin(w, "vm", "", 1);
	snap_put_u32(w, v);
	snap_section_end(w);
	commit_ok(w);
}

static uint32_t read_value(const char *path)
{
	struct snap_reader *r = open_ok(path);
	struct snap_cursor c;
	assert_int_equal(snap_section_find(r, "vm", "", NULL, &c), 0);
	uint32_t v = snap_get_u32(&c);
	finish_ok(&c, "vm", "");
	snap_reader_close(r);
	return v;
}

/* A writer that dies before its commit (a child killed mid-snapshot) leaves path as
 * it was: absent, or the previous snapshot whole. */
static void crash_before_commit_leaves_path_as_it_was(void **state)
{
	const char *path = tmp("crash.snap");
	for (int round = 0; round < 2; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct snap_writer *w;
			char err[256];
			if (snap_writer_create(path, &w, err, sizeof(err)))
				_exit(1);
			snap_section_begin(w, "vm", "", 1);
			snap_put_u32(w, 666);
			snap_section_end(w);
			snap_section_begin(w, "vcpu", "0", 1);
			snap_put_u32(w, 1);
			raise(SIGKILL); /* mid-snapshot */
			_exit(1);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		if (round == 0)
			assert_false(exists(path));
		else
			assert_int_equal(read_value(path), 41);
		/* The dead writer's .tmp does not stop the next one. */
		assert_true(exists(tmp("crash.snap.tmp")));
		write_value(path, 41);
		assert_false(exists(tmp("crash.snap.tmp")));
	}
	write_value(path, 42); /* a commit replaces a snapshot */
	assert_int_equal(read_value(path), 42);
	unlink(path);
}

static void commit_fsyncs_the_file_then_renames_then_fsyncs_the_directory(void **state)
{
	const char *path = tmp("durable.snap");
	char want[3][PATH_MAX + 64], real[PATH_MAX];
	assert_non_null(realpath(dir, real));
	snprintf(want[0], sizeof(want[0]), "fsync %s/durable.snap.tmp", real);
	snprintf(want[1], sizeof(want[1]), "rename %s.tmp", path);
	snprintf(want[2], sizeof(want[2]), "fsync %s", real);
	nevents = 0;
	write_value(path, 7);
	assert_int_equal(nevents, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(events[i], want[i]);
	unlink(path);
}

static void commit_failure_removes_the_tmp(void **state)
{
	const char *path = tmp("taken");
	char inside[PATH_MAX + 8];
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(inside, sizeof(inside), "%s/x", path);
	write_file(inside, "x", 1); /* a directory with a file cannot be renamed over */
	struct snap_writer *w = writer(path);
	char err[PATH_MAX + 256], msg[PATH_MAX + 256];
	assert_int_equal(snap_writer_commit(w, err, sizeof(err)), -EISDIR);
	snprintf(msg, sizeof(msg), "snapshot %s: cannot rename %s.tmp over it: Is a directory", path,
		 path);
	assert_string_equal(err, msg);
	assert_false(exists(tmp("taken.tmp")));
	unlink(inside);
	rmdir(path);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	return nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const char *fixture = getenv("ARGON_WRITE_SNAPSHOT_FIXTURE");
	if (fixture) {
		char err[512] = "";
		int rc = write_v1_sample(fixture, err, sizeof(err));
		if (rc)
			fprintf(stderr, "%s\n", err);
		return rc ? 1 : 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(v1_fixture_reads_back_field_by_field),
		cmocka_unit_test(v1_fixture_is_what_this_writer_makes),
		cmocka_unit_test(layout_is_the_documented_bytes),
		cmocka_unit_test(every_field_type_round_trips),
		cmocka_unit_test(many_sections_are_found_by_kind_and_id),
		cmocka_unit_test(a_valid_file_opens),
		cmocka_unit_test(bad_magic_is_refused),
		cmocka_unit_test(wrong_format_version_is_refused),
		cmocka_unit_test(wrong_architecture_is_refused),
		cmocka_unit_test(header_checksum_mismatch_is_refused),
		cmocka_unit_test(truncated_header_is_refused),
		cmocka_unit_test(truncated_section_is_refused),
		cmocka_unit_test(length_past_the_end_is_refused),
		cmocka_unit_test(section_counts_the_file_cannot_hold_are_refused),
		cmocka_unit_test(payload_checksum_mismatch_is_refused),
		cmocka_unit_test(duplicate_section_is_refused),
		cmocka_unit_test(bad_kind_and_id_are_refused),
		cmocka_unit_test(file_larger_than_the_cap_is_refused),
		cmocka_unit_test(missing_directory_and_special_files_are_refused),
		cmocka_unit_test(damaged_file_on_disk_is_refused),
		cmocka_unit_test(reading_past_the_end_fails_the_cursor),
		cmocka_unit_test(leftover_bytes_are_reported),
		cmocka_unit_test(blob_of_the_wrong_length_fails_the_cursor),
		cmocka_unit_test(writer_refuses_what_the_reader_would),
		cmocka_unit_test(writer_refuses_a_state_file_over_the_cap),
		cmocka_unit_test(writer_create_names_the_file),
		cmocka_unit_test(abort_leaves_no_file),
		cmocka_unit_test(crash_before_commit_leaves_path_as_it_was),
		cmocka_unit_test(commit_fsyncs_the_file_then_renames_then_fsyncs_the_directory),
		cmocka_unit_test(commit_failure_removes_the_tmp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
