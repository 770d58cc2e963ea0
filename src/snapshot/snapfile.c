/* The snapshot state file (snapfile.h): a writer that streams sections into a .tmp
 * and renames it into place, and a reader that validates a whole file before anyone
 * uses it. The layout is written and read byte by byte, little-endian, in the only
 * two places that know it: write_section_header/write_header and
 * parse_section/parse_header. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "snapshot/snapfile.h"

/* u16 kind length + 1-byte kind + u16 id length + u32 version + u64 length + u32 crc */
#define SECTION_HEADER_MIN (2 + 1 + 2 + 4 + 8 + 4)
#define SECTION_HEADER_MAX (2 + SNAP_KIND_MAX + 2 + SNAP_ID_MAX + 4 + 8 + 4)
#define SECTION_NAME_MAX (SNAP_KIND_MAX + 1 + SNAP_ID_MAX + 1) /* "kind/id" */

/* The format versions this reader reads, newest first. When version 2 comes, keep 1
 * here (issue 9: a reader accepts the previous version), branch on the version in
 * parse_header and parse_section where 2's layout differs (nowhere else knows the
 * layout), and keep tests/unit/fixtures/snapshot-v1.snap as the previous version's
 * sample that the unit tests read back. */
static const uint32_t readable_versions[] = { SNAP_FORMAT_VERSION };

static const char *const arch_names[] = { [SNAP_ARCH_X86_64] = "x86_64" };

static uint32_t host_arch(void)
{
#if defined(__x86_64__)
	return SNAP_ARCH_X86_64;
#else
	return 0; /* no snapshot made here is restored anywhere, nor one from elsewhere here */
#endif
}

static const char *arch_name(uint32_t arch)
{
	if (arch < sizeof(arch_names) / sizeof(arch_names[0]) && arch_names[arch])
		return arch_names[arch];
	return "an unknown architecture";
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t crc(const void *p, size_t len)
{
	return (uint32_t)crc32_z(0, len ? p : Z_NULL, len);
}

static bool kind_byte_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool id_byte_ok(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* A kind's (is_kind) or an id's length: 0, or -1 with why ("kind length 40 is out of
 * range, expected 1..31"). */
static int check_name_len(bool is_kind, size_t len, char *why, size_t whylen)
{
	size_t min = is_kind ? 1 : 0, max = is_kind ? SNAP_KIND_MAX : SNAP_ID_MAX;
	if (len >= min && len <= max)
		return 0;
	snprintf(why, whylen, "%s length %zu is out of range, expected %zu..%zu",
		 is_kind ? "kind" : "id", len, min, max);
	return -1;
}

/* A kind's or an id's len bytes: 0, or -1 with why ("kind has byte 0x41 at 2,
 * expected [a-z0-9_-]"). */
static int check_name_bytes(bool is_kind, const uint8_t *p, size_t len, char *why, size_t whylen)
{
	for (size_t i = 0; i < len; i++) {
		if (is_kind ? kind_byte_ok(p[i]) : id_byte_ok(p[i]))
			continue;
		snprintf(why, whylen, "%s has byte 0x%02x at %zu, expected %s",
			 is_kind ? "kind" : "id", p[i], i, is_kind ? "[a-z0-9_-]" : "printable ASCII");
		return -1;
	}
	return 0;
}

static int check_name(bool is_kind, const char *name, char *why, size_t whylen)
{
	size_t len = strnlen(name, (is_kind ? SNAP_KIND_MAX : SNAP_ID_MAX) + 1);
	if (check_name_len(is_kind, len, why, whylen))
		return -1;
	return check_name_bytes(is_kind, (const uint8_t *)name, len, why, whylen);
}

/* "2", or "1 (x86_64)" for an architecture with a name. */
static const char *arch_label(char buf[32], uint32_t arch)
{
	const char *n = arch < sizeof(arch_names) / sizeof(arch_names[0]) ? arch_names[arch] : NULL;
	snprintf(buf, 32, "%u%s%s%s", arch, n ? " (" : "", n ? n : "", n ? ")" : "");
	return buf;
}

/* "vcpu/1", or "vm" for the empty id. */
static const char *section_name(char buf[SECTION_NAME_MAX], const char *kind, const char *id)
{
	snprintf(buf, SECTION_NAME_MAX, "%s%s%s", kind ? kind : "?", id && *id ? "/" : "",
		 id ? id : "");
	return buf;
}

/* ---- writing ---- */

struct written_name {
	char kind[SNAP_KIND_MAX + 1];
	char id[SNAP_ID_MAX + 1];
};

struct snap_writer {
	char *path, *tmp;
	int fd;
	uint64_t size;	 /* bytes in the .tmp so far, header included */
	uint32_t count;	 /* sections ended */
	struct written_name *names; /* every section begun, for duplicates */
	bool in_section; /* names[count] is open */
	uint32_t version;
	size_t header_len; /* the open section's header */
	uint8_t *buf;	   /* the open section's payload */
	size_t len, cap;
	int error;	/* the first failure, -errno; every later call is a no-op */
	char msg[320];	/* its message, without "snapshot PATH: " */
};

static int wfail(struct snap_writer *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int wfail(struct snap_writer *w, int err, const char *fmt, ...)
{
	if (!w->error) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
		va_end(ap);
		w->error = err;
	}
	return w->error;
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		ssize_t n = write(fd, b, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static void writer_free(struct snap_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w->tmp);
	free(w->names);
	free(w->buf);
	free(w);
}

int snap_writer_create(const char *path, struct snap_writer **out, char *err, size_t errlen)
{
	static const uint8_t placeholder[SNAP_HEADER_SIZE]; /* written for real on commit */
	struct snap_writer *w = calloc(1, sizeof(*w));
	int rc = -ENOMEM;
	*out = NULL;
	if (!w)
		goto fail;
	w->fd = -1;
	if (!(w->path = strdup(path)) || asprintf(&w->tmp, "%s.tmp", path) < 0) {
		w->tmp = NULL;
		goto fail;
	}
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (w->fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = write_all(w->fd, placeholder, sizeof(placeholder));
	if (rc) {
		unlink(w->tmp);
		goto fail;
	}
	w->size = SNAP_HEADER_SIZE;
	*out = w;
	return 0;
fail:
	snprintf(err, errlen, "snapshot %s: cannot create %s.tmp: %s", path, path, strerror(-rc));
	if (w)
		writer_free(w);
	return rc;
}

/* Linear: a VM's snapshot has a few sections per vCPU and device, not thousands. */
static bool name_taken(const struct snap_writer *w, const char *kind, const char *id)
{
	for (uint32_t i = 0; i < w->count; i++)
		if (strcmp(w->names[i].kind, kind) == 0 && strcmp(w->names[i].id, id) == 0)
			return true;
	return false;
}

static int check_section_names(struct snap_writer *w, const char *kind, const char *id)
{
	char why[128], name[SECTION_NAME_MAX];
	if (check_name(true, kind, why, sizeof(why)) || check_name(false, id, why, sizeof(why)))
		return wfail(w, -EINVAL, "section %s: %s", section_name(name, kind, id), why);
	if (name_taken(w, kind, id))
		return wfail(w, -EEXIST, "section %s written twice", section_name(name, kind, id));
	return 0;
}

int snap_section_begin(struct snap_writer *w, const char *kind, const char *id, uint32_t version)
{
	char name[SECTION_NAME_MAX], cur[SECTION_NAME_MAX];
	id = id ? id : "";
	if (w->error)
		return w->error;
	if (w->in_section) {
		const struct written_name *o = &w->names[w->count];
		return wfail(w, -EBUSY, "section %s begun inside section %s",
			     section_name(name, kind, id), section_name(cur, o->kind, o->id));
	}
	if (w->count >= SNAP_MAX_SECTIONS)
		return wfail(w, -ENOSPC, "more than %u sections", SNAP_MAX_SECTIONS);
	if (check_section_names(w, kind, id))
		return w->error;
	if (w->count % 64 == 0) {
		struct written_name *n = realloc(w->names, (w->count + 64) * sizeof(*n));
		if (!n)
			return wfail(w, -ENOMEM, "out of memory");
		w->names = n;
	}
	strcpy(w->names[w->count].kind, kind);
	strcpy(w->names[w->count].id, id);
	w->header_len = 2 + strlen(kind) + 2 + strlen(id) + 4 + 8 + 4;
	w->version = version;
	w->len = 0;
	w->in_section = true;
	return 0;
}

/* Room for n more payload bytes, or NULL after failing the writer. */
static uint8_t *grow(struct snap_writer *w, size_t n)
{
	char name[SECTION_NAME_MAX];
	if (w->error)
		return NULL;
	if (!w->in_section) {
		wfail(w, -EINVAL, "a field written outside any section");
		return NULL;
	}
	const struct written_name *s = &w->names[w->count];
	if (w->size + w->header_len + w->len + n > SNAP_MAX_FILE_SIZE) {
		wfail(w, -EFBIG, "section %s makes the state file larger than %u bytes",
		      section_name(name, s->kind, s->id), SNAP_MAX_FILE_SIZE);
		return NULL;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			wfail(w, -ENOMEM, "out of memory");
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	w->len += n;
	return w->buf + w->len - n;
}

static void put(struct snap_writer *w, uint64_t v, unsigned bytes)
{
	uint8_t *p = grow(w, bytes);
	if (p)
		put_le(p, v, bytes);
}

void snap_put_u8(struct snap_writer *w, uint8_t v)
{
	put(w, v, 1);
}

void snap_put_u16(struct snap_writer *w, uint16_t v)
{
	put(w, v, 2);
}

void snap_put_u32(struct snap_writer *w, uint32_t v)
{
	put(w, v, 4);
}

void snap_put_u64(struct snap_writer *w, uint64_t v)
{
	put(w, v, 8);
}

void snap_put_blob(struct snap_writer *w, const void *p, uint32_t len)
{
	uint8_t *d = grow(w, 4 + (size_t)len);
	if (!d)
		return;
	put_le(d, len, 4);
	if (len)
		memcpy(d + 4, p, len);
}

static size_t write_section_header(uint8_t *h, const struct written_name *s, uint32_t version,
				   uint64_t len, uint32_t payload_crc)
{
	size_t kl = strlen(s->kind), il = strlen(s->id), o = 0;
	put_le(h + o, kl, 2);
	memcpy(h + o + 2, s->kind, kl);
	o += 2 + kl;
	put_le(h + o, il, 2);
	memcpy(h + o + 2, s->id, il);
	o += 2 + il;
	put_le(h + o, version, 4);
	put_le(h + o + 4, len, 8);
	put_le(h + o + 12, payload_crc, 4);
	return o + 16;
}

int snap_section_end(struct snap_writer *w)
{
	uint8_t h[SECTION_HEADER_MAX];
	if (w->error)
		return w->error;
	if (!w->in_section)
		return wfail(w, -EINVAL, "a section ended that was never begun");
	size_t hl = write_section_header(h, &w->names[w->count], w->version, w->len,
					 crc(w->buf, w->len));
	int rc = write_all(w->fd, h, hl);
	if (!rc)
		rc = write_all(w->fd, w->buf, w->len);
	if (rc)
		return wfail(w, rc, "cannot write %s: %s", w->tmp, strerror(-rc));
	w->size += hl + w->len;
	w->count++;
	w->in_section = false;
	return 0;
}

static int write_header(struct snap_writer *w)
{
	uint8_t h[SNAP_HEADER_SIZE];
	memcpy(h, SNAP_MAGIC, 8);
	put_le(h + 8, SNAP_FORMAT_VERSION, 4);
	put_le(h + 12, host_arch(), 4);
	put_le(h + 16, w->count, 4);
	put_le(h + 20, crc(h, 20), 4);
	ssize_t n = pwrite(w->fd, h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h))
		return wfail(w, n < 0 ? -errno : -EIO, "cannot write %s: %s", w->tmp,
			     n < 0 ? strerror(errno) : "short write");
	return 0;
}

/* fsyncs the directory holding path, so the rename itself survives a crash. */
static int sync_dir(struct snap_writer *w)
{
	char *slash = strrchr(w->path, '/');
	char *dir = slash ? strndup(w->path, slash == w->path ? 1 : (size_t)(slash - w->path))
			  : strdup(".");
	if (!dir)
		return wfail(w, -ENOMEM, "out of memory");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	if (fd < 0 || fsync(fd))
		rc = wfail(w, -errno, "cannot fsync the directory %s: %s", dir, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

/* The steps that make the .tmp durable and put it in place; stops at the first
 * failure, which is in w->error. *renamed tells whether the .tmp is gone. */
static void commit_steps(struct snap_writer *w, bool *renamed)
{
	char name[SECTION_NAME_MAX];
	*renamed = false;
	if (w->error)
		return;
	if (w->in_section) {
		const struct written_name *s = &w->names[w->count];
		wfail(w, -EINVAL, "section %s was never ended", section_name(name, s->kind, s->id));
		return;
	}
	if (write_header(w))
		return;
	if (fsync(w->fd)) {
		wfail(w, -errno, "cannot fsync %s: %s", w->tmp, strerror(errno));
		return;
	}
	int fd = w->fd;
	w->fd = -1;
	if (close(fd)) {
		wfail(w, -errno, "cannot close %s: %s", w->tmp, strerror(errno));
		return;
	}
	if (rename(w->tmp, w->path)) {
		wfail(w, -errno, "cannot rename %s over it: %s", w->tmp, strerror(errno));
		return;
	}
	*renamed = true;
	sync_dir(w); /* a failure here leaves the new snapshot at path, maybe not durable */
}

int snap_writer_commit(struct snap_writer *w, char *err, size_t errlen)
{
	bool renamed;
	commit_steps(w, &renamed);
	int rc = w->error;
	if (rc) {
		snprintf(err, errlen, "snapshot %s: %s", w->path, w->msg);
		if (!renamed)
			unlink(w->tmp);
	}
	writer_free(w);
	return rc;
}

void snap_writer_abort(struct snap_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	writer_free(w);
}

/* ---- reading ---- */

struct section {
	char kind[SNAP_KIND_MAX + 1];
	char id[SNAP_ID_MAX + 1];
	uint32_t version;
	uint64_t off, len; /* the payload, in the reader's buffer */
};

struct snap_reader {
	uint8_t *buf; /* the whole file, never less than 1 byte */
	size_t size;
	uint32_t format_version, count;
	struct section *sec;	 /* in file order */
	struct section **sorted; /* by (kind, id), for duplicates and lookups */
};

/* What validation needs to say where it stopped. */
struct parse {
	const char *name;
	size_t off; /* the next byte to read */
	char *err;
	size_t errlen;
};

static int refuse(struct parse *ps, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct parse *ps, int rc, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "snapshot %s: %s", ps->name, msg);
	return rc;
}

static bool version_readable(uint32_t v)
{
	for (size_t i = 0; i < sizeof(readable_versions) / sizeof(readable_versions[0]); i++)
		if (readable_versions[i] == v)
			return true;
	return false;
}

/* "version 1", "versions 2, 1" */
static void readable_list(char *buf, size_t len)
{
	size_t n = sizeof(readable_versions) / sizeof(readable_versions[0]), o;
	o = (size_t)snprintf(buf, len, "version%s ", n > 1 ? "s" : "");
	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%u", i ? ", " : "", readable_versions[i]);
}

static int parse_header(struct parse *ps, struct snap_reader *r)
{
	const uint8_t *h = r->buf;
	char list[64];
	/* Magic, then version, before anything else: a later version may change the rest. */
	if (memcmp(h, SNAP_MAGIC, r->size < 8 ? r->size : 8) != 0)
		return refuse(ps, -EBADMSG, "not an argon snapshot (no \"%s\" magic)", SNAP_MAGIC);
	if (r->size < SNAP_HEADER_SIZE)
		return refuse(ps, -EBADMSG, "header is truncated (%zu bytes, a header has %d)",
			      r->size, SNAP_HEADER_SIZE);
	r->format_version = (uint32_t)get_le(h + 8, 4);
	if (!version_readable(r->format_version)) {
		readable_list(list, sizeof(list));
		return refuse(ps, -EPROTONOSUPPORT, "format version %u; this argon-vmm reads %s",
			      r->format_version, list);
	}
	uint32_t stored = (uint32_t)get_le(h + 20, 4), computed = crc(h, 20);
	if (stored != computed)
		return refuse(ps, -EBADMSG, "header is corrupted (checksum 0x%08x, expected 0x%08x)",
			      stored, computed);
	uint32_t arch = (uint32_t)get_le(h + 12, 4);
	if (arch != host_arch())
		return refuse(ps, -ENOEXEC, "made on architecture %s; this host is %s",
			      arch_label(list, arch), arch_name(host_arch()));
	r->count = (uint32_t)get_le(h + 16, 4);
	size_t room = (r->size - SNAP_HEADER_SIZE) / SECTION_HEADER_MIN;
	if (r->count > SNAP_MAX_SECTIONS)
		return refuse(ps, -EBADMSG, "the header counts %u sections; at most %u are allowed",
			      r->count, SNAP_MAX_SECTIONS);
	if (r->count > room)
		return refuse(ps, -EBADMSG, "truncated or corrupted: the header counts %u sections, "
			      "the %zu bytes after it hold at most %zu", r->count,
			      r->size - SNAP_HEADER_SIZE, room);
	ps->off = SNAP_HEADER_SIZE;
	return 0;
}

/* Section i's name fields; leaves ps->off at its version field. */
static int parse_section_names(struct parse *ps, struct snap_reader *r, uint32_t i)
{
	struct section *s = &r->sec[i];
	const uint8_t *p = r->buf + ps->off;
	size_t left = r->size - ps->off;
	char why[128];
	if (left < SECTION_HEADER_MIN)
		return refuse(ps, -EBADMSG, "section %u of %u is truncated (a section header has "
			      "at least %d bytes, %zu left)", i + 1, r->count, SECTION_HEADER_MIN,
			      left);
	size_t kl = (size_t)get_le(p, 2);
	if (check_name_len(true, kl, why, sizeof(why)))
		return refuse(ps, -EBADMSG, "section %u of %u: %s", i + 1, r->count, why);
	if (left < 2 + kl + 2 + 16) /* the header with an empty id */
		return refuse(ps, -EBADMSG, "section %u of %u is truncated (its header has at "
			      "least %zu bytes, %zu left)", i + 1, r->count, 2 + kl + 2 + 16, left);
	if (check_name_bytes(true, p + 2, kl, why, sizeof(why)))
		return refuse(ps, -EBADMSG, "section %u of %u: %s", i + 1, r->count, why);
	memcpy(s->kind, p + 2, kl);
	size_t il = (size_t)get_le(p + 2 + kl, 2), hl = 2 + kl + 2 + il + 16;
	if (check_name_len(false, il, why, sizeof(why)))
		return refuse(ps, -EBADMSG, "section %u of %u (%s): %s", i + 1, r->count, s->kind,
			      why);
	if (left < hl)
		return refuse(ps, -EBADMSG, "section %u of %u (%s) is truncated (its header has "
			      "%zu bytes, %zu left)", i + 1, r->count, s->kind, hl, left);
	if (check_name_bytes(false, p + 2 + kl + 2, il, why, sizeof(why)))
		return refuse(ps, -EBADMSG, "section %u of %u (%s): %s", i + 1, r->count, s->kind,
			      why);
	memcpy(s->id, p + 2 + kl + 2, il);
	ps->off += 2 + kl + 2 + il;
	return 0;
}

/* Section i: its header, its payload's bounds and checksum. A later format version's
 * section layout would branch on r->format_version here. */
static int parse_section(struct parse *ps, struct snap_reader *r, uint32_t i)
{
	struct section *s = &r->sec[i];
	char name[SECTION_NAME_MAX];
	int rc = parse_section_names(ps, r, i);
	if (rc)
		return rc;
	const uint8_t *p = r->buf + ps->off;
	s->version = (uint32_t)get_le(p, 4);
	s->len = get_le(p + 4, 8);
	uint32_t stored = (uint32_t)get_le(p + 12, 4);
	ps->off += 16;
	size_t left = r->size - ps->off;
	section_name(name, s->kind, s->id);
	if (s->len > left)
		return refuse(ps, -EBADMSG, "section %s is truncated (claims %llu bytes, %zu left)",
			      name, (unsigned long long)s->len, left);
	s->off = ps->off;
	uint32_t computed = crc(r->buf + s->off, (size_t)s->len);
	if (stored != computed)
		return refuse(ps, -EBADMSG, "section %s is corrupted (checksum 0x%08x, expected "
			      "0x%08x)", name, stored, computed);
	ps->off += (size_t)s->len;
	return 0;
}

static int compare_sections(const void *a, const void *b)
{
	const struct section *x = *(const struct section *const *)a;
	const struct section *y = *(const struct section *const *)b;
	int c = strcmp(x->kind, y->kind);
	return c ? c : strcmp(x->id, y->id);
}

static int check_unique(struct parse *ps, struct snap_reader *r)
{
	char name[SECTION_NAME_MAX];
	for (uint32_t i = 0; i < r->count; i++)
		r->sorted[i] = &r->sec[i];
	qsort(r->sorted, r->count, sizeof(*r->sorted), compare_sections);
	for (uint32_t i = 1; i < r->count; i++) {
		const struct section *a = r->sorted[i - 1], *b = r->sorted[i];
		if (compare_sections(&a, &b) != 0)
			continue;
		size_t ia = (size_t)(a - r->sec), ib = (size_t)(b - r->sec);
		return refuse(ps, -EBADMSG, "section %s appears twice (sections %zu and %zu of %u)",
			      section_name(name, a->kind, a->id), (ia < ib ? ia : ib) + 1,
			      (ia < ib ? ib : ia) + 1, r->count);
	}
	return 0;
}

static int parse_all(struct parse *ps, struct snap_reader *r)
{
	int rc = parse_header(ps, r);
	if (rc)
		return rc;
	/* Bounded by parse_header: count <= what the file can hold and <= SNAP_MAX_SECTIONS. */
	r->sec = calloc(r->count ? r->count : 1, sizeof(*r->sec));
	r->sorted = calloc(r->count ? r->count : 1, sizeof(*r->sorted));
	if (!r->sec || !r->sorted)
		return refuse(ps, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < r->count; i++)
		if ((rc = parse_section(ps, r, i)))
			return rc;
	if (ps->off != r->size)
		return refuse(ps, -EBADMSG, "%zu bytes after the last section (the header counts "
			      "%u section%s)", r->size - ps->off, r->count, r->count == 1 ? "" : "s");
	return check_unique(ps, r);
}

/* Validates buf (size bytes, owned from here on) into a reader. */
static int reader_parse(const char *name, uint8_t *buf, size_t size, struct snap_reader **out,
			char *err, size_t errlen)
{
	struct parse ps = { .name = name, .err = err, .errlen = errlen };
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		free(buf);
		return refuse(&ps, -ENOMEM, "out of memory");
	}
	r->buf = buf;
	r->size = size;
	int rc = parse_all(&ps, r);
	if (rc) {
		snap_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int snap_reader_open_buffer(const char *name, const void *buf, size_t len,
			    struct snap_reader **out, char *err, size_t errlen)
{
	struct parse ps = { .name = name, .err = err, .errlen = errlen };
	*out = NULL;
	if (len > SNAP_MAX_FILE_SIZE)
		return refuse(&ps, -EFBIG, "%zu bytes; a snapshot state file holds at most %u",
			      len, SNAP_MAX_FILE_SIZE);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return refuse(&ps, -ENOMEM, "out of memory");
	if (len)
		memcpy(copy, buf, len);
	return reader_parse(name, copy, len, out, err, errlen);
}

/* Reads the regular file open on fd (size bytes by fstat) into *buf; *got may be
 * less if it shrank meanwhile (validation then finds it truncated). */
static int read_whole(int fd, size_t size, uint8_t **buf, size_t *got)
{
	*got = 0;
	*buf = malloc(size ? size : 1);
	if (!*buf)
		return -ENOMEM;
	while (*got < size) {
		ssize_t n = read(fd, *buf + *got, size - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(*buf);
			*buf = NULL;
			return rc;
		}
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

int snap_reader_open(const char *path, struct snap_reader **out, char *err, size_t errlen)
{
	struct parse ps = { .name = path, .err = err, .errlen = errlen };
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	*out = NULL;
	/* O_NONBLOCK: a FIFO must not hang the open; it is refused below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), rc;
	if (fd < 0)
		return refuse(&ps, -errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st)) {
		rc = refuse(&ps, -errno, "cannot stat: %s", strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		rc = refuse(&ps, -EISDIR, "is a directory, not a snapshot file");
	} else if (!S_ISREG(st.st_mode)) {
		rc = refuse(&ps, -EINVAL, "is not a regular file");
	} else if ((uint64_t)st.st_size > SNAP_MAX_FILE_SIZE) {
		rc = refuse(&ps, -EFBIG, "%llu bytes; a snapshot state file holds at most %u",
			    (unsigned long long)st.st_size, SNAP_MAX_FILE_SIZE);
	} else if ((rc = read_whole(fd, (size_t)st.st_size, &buf, &got))) {
		refuse(&ps, rc, "cannot read: %s", strerror(-rc));
	}
	close(fd);
	return rc ? rc : reader_parse(path, buf, got, out, err, errlen);
}

void snap_reader_close(struct snap_reader *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r->sec);
	free(r->sorted);
	free(r);
}

uint32_t snap_reader_format_version(const struct snap_reader *r)
{
	return r->format_version;
}

uint32_t snap_section_count(const struct snap_reader *r)
{
	return r->count;
}

static void cursor_over(const struct snap_reader *r, const struct section *s,
			struct snap_cursor *c)
{
	*c = (struct snap_cursor){ .p = r->buf + s->off, .len = s->len };
}

void snap_section_at(const struct snap_reader *r, uint32_t i, const char **kind, const char **id,
		     uint32_t *version, struct snap_cursor *c)
{
	static const uint8_t nothing[1];
	const struct section *s = i < r->count ? &r->sec[i] : NULL;
	if (kind)
		*kind = s ? s->kind : "";
	if (id)
		*id = s ? s->id : "";
	if (version)
		*version = s ? s->version : 0;
	if (c && s)
		cursor_over(r, s, c);
	else if (c)
		*c = (struct snap_cursor){ .p = nothing, .failed = true };
}

int snap_section_find(const struct snap_reader *r, const char *kind, const char *id,
		      uint32_t *version, struct snap_cursor *c)
{
	struct section key;
	const struct section *k = &key;
	id = id ? id : "";
	if (strlen(kind) > SNAP_KIND_MAX || strlen(id) > SNAP_ID_MAX)
		return -ENOENT;
	strcpy(key.kind, kind);
	strcpy(key.id, id);
	struct section **hit = bsearch(&k, r->sorted, r->count, sizeof(*r->sorted),
				       compare_sections);
	if (!hit)
		return -ENOENT;
	if (version)
		*version = (*hit)->version;
	if (c)
		cursor_over(r, *hit, c);
	return 0;
}

/* n bytes at the cursor, or NULL and failed (off untouched). */
static const uint8_t *take(struct snap_cursor *c, uint64_t n)
{
	static const uint8_t nothing[1];
	if (c->failed || c->off > c->len || c->len - c->off < n) {
		c->failed = true;
		return NULL;
	}
	const uint8_t *p = c->p ? c->p + c->off : nothing;
	c->off += n;
	return p;
}

uint8_t snap_get_u8(struct snap_cursor *c)
{
	const uint8_t *p = take(c, 1);
	return p ? p[0] : 0;
}

uint16_t snap_get_u16(struct snap_cursor *c)
{
	const uint8_t *p = take(c, 2);
	return p ? (uint16_t)get_le(p, 2) : 0;
}

uint32_t snap_get_u32(struct snap_cursor *c)
{
	const uint8_t *p = take(c, 4);
	return p ? (uint32_t)get_le(p, 4) : 0;
}

uint64_t snap_get_u64(struct snap_cursor *c)
{
	const uint8_t *p = take(c, 8);
	return p ? get_le(p, 8) : 0;
}

const void *snap_get_blob_max(struct snap_cursor *c, uint32_t max, uint32_t *len)
{
	uint64_t start = c->off;
	uint32_t n = snap_get_u32(c);
	const uint8_t *p = !c->failed && n <= max ? take(c, n) : NULL;
	*len = p ? n : 0;
	if (!p) {
		c->failed = true;
		c->off = start;
	}
	return p;
}

void snap_get_blob(struct snap_cursor *c, void *dst, uint32_t len)
{
	uint64_t start = c->off;
	uint32_t n = snap_get_u32(c);
	const uint8_t *p = !c->failed && n == len ? take(c, n) : NULL;
	if (!p) {
		c->failed = true;
		c->off = start;
		if (len)
			memset(dst, 0, len);
		return;
	}
	if (len)
		memcpy(dst, p, len);
}

int snap_cursor_finish(const struct snap_cursor *c, const char *kind, const char *id, char *err,
		       size_t errlen)
{
	char name[SECTION_NAME_MAX];
	section_name(name, kind, id);
	if (c->failed || c->off > c->len) {
		snprintf(err, errlen, "section %s is truncated or malformed at byte %llu of %llu",
			 name, (unsigned long long)c->off, (unsigned long long)c->len);
		return -EINVAL;
	}
	if (c->off < c->len) {
		snprintf(err, errlen, "section %s: %llu bytes left over", name,
			 (unsigned long long)(c->len - c->off));
		return -EINVAL;
	}
	return 0;
}
