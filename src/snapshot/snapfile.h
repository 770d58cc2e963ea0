/* The snapshot state file: a versioned container of named, checksummed sections
 * that the VM, vCPU and device state code fills and reads (issue 9). Guest memory is
 * not here: it lives in a separate memory file.
 *
 * Layout, every integer little-endian, never a raw struct:
 *   header   "ARGONSNP" (8 bytes), u32 format version, u32 architecture,
 *            u32 section count, u32 CRC-32 of the 20 header bytes before it
 *   section  u16 kind length, kind (1..SNAP_KIND_MAX bytes of [a-z0-9_-]),
 *            u16 id length, id (0..SNAP_ID_MAX printable ASCII bytes),
 *            u32 section version, u64 payload length, u32 CRC-32 of the payload,
 *            then the payload; the sections follow each other to the end of the file.
 * A payload is a sequence of fields written with snap_put_* and read back in the same
 * order with snap_get_*; the types are implicit, the section's version says the layout.
 *
 * Every snapshot file is hostile: snap_reader_open validates the whole file (size,
 * header, every section's bounds, names, uniqueness and checksum) before it returns,
 * and refuses anything else with one line naming the file, the section and what was
 * expected. Nothing is allocated from a length the file claims before that length is
 * checked against the file's real size. */
#ifndef ARGON_SNAPSHOT_SNAPFILE_H
#define ARGON_SNAPSHOT_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "ARGONSNP"
#define SNAP_FORMAT_VERSION 1
#define SNAP_ARCH_X86_64 1

#define SNAP_HEADER_SIZE 24
#define SNAP_KIND_MAX 31		 /* bytes of a section kind */
#define SNAP_ID_MAX 64			 /* bytes of a section id: the API's longest resource id */
#define SNAP_MAX_FILE_SIZE (64u << 20)	 /* the whole state file */
#define SNAP_MAX_SECTIONS 65536

/* ---- writing ---- */

struct snap_writer;

/* Starts a snapshot that will appear at path only on commit: the sections go to
 * path + ".tmp" (created mode 0600, truncated if a crashed run left one). Returns 0,
 * or -errno with a message in err. */
int snap_writer_create(const char *path, struct snap_writer **out, char *err, size_t errlen);

/* Opens a section; kind and id as in the layout above, (kind, id) unique in the file.
 * Returns 0, or -EINVAL (bad kind or id), -EEXIST (a duplicate), -EBUSY (a section is
 * still open), -ENOSPC (too many sections). The first failure of any writer call is
 * kept and makes snap_writer_commit fail with its message, so a caller may check only
 * the commit. */
int snap_section_begin(struct snap_writer *w, const char *kind, const char *id, uint32_t version);
/* Append one field to the open section (outside a section: the writer fails). */
void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_blob(struct snap_writer *w, const void *p, uint32_t len); /* u32 length, bytes */
/* Closes the section and writes it out. Returns 0, or the writer's first error
 * (-EFBIG: the file would pass SNAP_MAX_FILE_SIZE; -ENOMEM; a write's -errno). */
int snap_section_end(struct snap_writer *w);
/* Writes the header, fsyncs the file, renames it over path and fsyncs the directory:
 * path holds either its old content or the whole new snapshot, never a part. Frees w
 * whatever happens; on failure the .tmp is removed. Returns 0, or -errno with a
 * message naming path in err. */
int snap_writer_commit(struct snap_writer *w, char *err, size_t errlen);
/* Gives up: removes the .tmp and frees w (NULL is fine). path is untouched. */
void snap_writer_abort(struct snap_writer *w);

/* ---- reading ---- */

struct snap_reader;

/* Reads path in one go and validates all of it. Returns 0, or one of these with one
 * line in err ("snapshot PATH: ..."), so a caller can map the refusal to an exit status:
 *   -errno of open/read (-ENOENT, -EACCES, -EIO, ...)  the file cannot be read
 *   -EISDIR            path is a directory
 *   -EINVAL            path is not a regular file (a FIFO, a device)
 *   -EFBIG             the file is larger than SNAP_MAX_FILE_SIZE
 *   -EBADMSG           not a snapshot, or damaged: magic, checksums, truncation,
 *                      lengths or counts past the end, bad names, duplicate sections,
 *                      bytes after the last section
 *   -EPROTONOSUPPORT   a format version this reader does not read
 *   -ENOEXEC           made on another architecture
 *   -ENOMEM */
int snap_reader_open(const char *path, struct snap_reader **out, char *err, size_t errlen);
/* The same on len bytes in memory (copied), named name in messages: for tests and
 * fuzzing. */
int snap_reader_open_buffer(const char *name, const void *buf, size_t len,
			    struct snap_reader **out, char *err, size_t errlen);
void snap_reader_close(struct snap_reader *r); /* NULL is fine */
/* The file's format version: SNAP_FORMAT_VERSION or an older one this reader accepts. */
uint32_t snap_reader_format_version(const struct snap_reader *r);
uint32_t snap_section_count(const struct snap_reader *r);

/* A reader's position in one section's payload. A read past the end, or a blob of
 * the wrong length, returns 0 (or NULL), leaves off where it was and sets failed;
 * every later read on a failed cursor fails too, so a caller reads all its fields and
 * checks once, with snap_cursor_finish. */
struct snap_cursor {
	const uint8_t *p;
	uint64_t len, off;
	bool failed;
};

/* The i-th section in file order (i < snap_section_count): its kind, id (valid until
 * snap_reader_close), version, and a cursor over its payload. Any out parameter may
 * be NULL. An i out of range gives "", "", 0 and a failed, empty cursor. */
void snap_section_at(const struct snap_reader *r, uint32_t i, const char **kind, const char **id,
		     uint32_t *version, struct snap_cursor *c);
/* The section kind/id: 0, or -ENOENT (version and c untouched). */
int snap_section_find(const struct snap_reader *r, const char *kind, const char *id,
		      uint32_t *version, struct snap_cursor *c);

uint8_t snap_get_u8(struct snap_cursor *c); /* past the end: 0 and c->failed */
uint16_t snap_get_u16(struct snap_cursor *c);
uint32_t snap_get_u32(struct snap_cursor *c);
uint64_t snap_get_u64(struct snap_cursor *c);
/* A blob of exactly len bytes into dst (a blob of another length fails the cursor and
 * zeroes dst). */
void snap_get_blob(struct snap_cursor *c, void *dst, uint32_t len);
/* A blob of at most max bytes: its bytes in place (unaligned, valid until
 * snap_reader_close) and its length; NULL, *len 0 and failed when longer or past the
 * end. A blob of 0 bytes gives a non-NULL pointer. */
const void *snap_get_blob_max(struct snap_cursor *c, uint32_t max, uint32_t *len);
/* 0 when the cursor read its whole payload without failing; else -EINVAL and one line
 * naming the section in err ("section vcpu/0: 12 bytes left over", "section vcpu/0 is
 * truncated or malformed at byte 40 of 48"). The cursor does not know the file: a
 * caller prefixes "snapshot PATH: ". */
int snap_cursor_finish(const struct snap_cursor *c, const char *kind, const char *id, char *err,
		       size_t errlen);

#endif
