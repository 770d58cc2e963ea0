/* STAND-IN, to be deleted at merge: a minimal private implementation of
 * snapshot/snapfile.h (the contract in /work/shared-notes/snapfile-api.md), so the
 * vm-state branch can write and read real snapshot files before the snapshot-format
 * branch's src/snapshot/snapfile.c lands in main. Same layout and the same checks in
 * spirit (bounds, names, duplicates, CRC-32 over header and payloads), kept short;
 * the real one is the reference. */
#include "snapshot/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct snap_writer {
	char *path, *tmp;
	FILE *f;
	uint32_t nsections;
	int err; /* the first failure */
	bool open;
	char kind[SNAP_KIND_MAX + 1], id[SNAP_ID_MAX + 1];
	uint32_t version;
	uint8_t *buf;
	size_t len, cap;
	uint64_t total;
	struct name { char kind[SNAP_KIND_MAX + 1], id[SNAP_ID_MAX + 1]; } *names;
};

struct snap_section {
	char kind[SNAP_KIND_MAX + 1], id[SNAP_ID_MAX + 1];
	uint32_t version;
	const uint8_t *p;
	uint64_t len;
};

struct snap_reader {
	uint8_t *data;
	size_t size;
	uint32_t n;
	struct snap_section *s;
};

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t rd(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool kind_ok(const char *k)
{
	size_t n = strlen(k);
	return n >= 1 && n <= SNAP_KIND_MAX && strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);
	for (size_t i = 0; i < n; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			return false;
	return n <= SNAP_ID_MAX;
}

int snap_writer_create(const char *path, struct snap_writer **out, char *err, size_t errlen)
{
	struct snap_writer *w = calloc(1, sizeof(*w));
	if (!w || asprintf(&w->tmp, "%s.tmp", path) < 0 || !(w->path = strdup(path))) {
		free(w);
		return -ENOMEM;
	}
	int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	w->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	uint8_t header[SNAP_HEADER_SIZE] = { 0 };
	if (!w->f || fwrite(header, 1, sizeof(header), w->f) != sizeof(header)) {
		int e = -errno;
		snprintf(err, errlen, "snapshot %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(w->tmp);
		free(w->path);
		free(w);
		return e;
	}
	*out = w;
	return 0;
}

static void fail(struct snap_writer *w, int e)
{
	if (!w->err)
		w->err = e;
}

int snap_section_begin(struct snap_writer *w, const char *kind, const char *id, uint32_t version)
{
	if (w->open)
		return fail(w, -EBUSY), -EBUSY;
	if (!kind_ok(kind) || !id_ok(id))
		return fail(w, -EINVAL), -EINVAL;
	for (uint32_t i = 0; i < w->nsections; i++)
		if (strcmp(w->names[i].kind, kind) == 0 && strcmp(w->names[i].id, id) == 0)
			return fail(w, -EEXIST), -EEXIST;
	void *names = realloc(w->names, (w->nsections + 1) * sizeof(*w->names));
	if (!names)
		return fail(w, -ENOMEM), -ENOMEM;
	w->names = names;
	snprintf(w->names[w->nsections].kind, sizeof(w->names[0].kind), "%s", kind);
	snprintf(w->names[w->nsections].id, sizeof(w->names[0].id), "%s", id);
	snprintf(w->kind, sizeof(w->kind), "%s", kind);
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->version = version;
	w->len = 0;
	w->open = true;
	return 0;
}

static void put(struct snap_writer *w, const void *p, size_t n)
{
	if (!w->open)
		return fail(w, -EINVAL);
	if (w->len + n > w->cap) {
		size_t cap = (w->len + n) * 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b)
			return fail(w, -ENOMEM);
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_le(struct snap_writer *w, uint64_t v, int n)
{
	uint8_t b[8];
	le(b, v, n);
	put(w, b, (size_t)n);
}

void snap_put_u8(struct snap_writer *w, uint8_t v) { put_le(w, v, 1); }
void snap_put_u16(struct snap_writer *w, uint16_t v) { put_le(w, v, 2); }
void snap_put_u32(struct snap_writer *w, uint32_t v) { put_le(w, v, 4); }
void snap_put_u64(struct snap_writer *w, uint64_t v) { put_le(w, v, 8); }

void snap_put_blob(struct snap_writer *w, const void *p, uint32_t len)
{
	put_le(w, len, 4);
	put(w, p, len);
}

int snap_section_end(struct snap_writer *w)
{
	if (!w->open)
		return fail(w, -EINVAL), -EINVAL;
	w->open = false;
	size_t kl = strlen(w->kind), il = strlen(w->id);
	uint8_t head[2 + SNAP_KIND_MAX + 2 + SNAP_ID_MAX + 16], *h = head;
	le(h, kl, 2), memcpy(h + 2, w->kind, kl), h += 2 + kl;
	le(h, il, 2), memcpy(h + 2, w->id, il), h += 2 + il;
	le(h, w->version, 4), le(h + 4, w->len, 8), le(h + 12, crc32(0, w->buf, (uInt)w->len), 4);
	h += 16;
	w->total += (uint64_t)(h - head) + w->len;
	if (w->total + SNAP_HEADER_SIZE > SNAP_MAX_FILE_SIZE)
		fail(w, -EFBIG);
	else if (fwrite(head, 1, (size_t)(h - head), w->f) != (size_t)(h - head) ||
		 fwrite(w->buf, 1, w->len, w->f) != w->len)
		fail(w, -EIO);
	w->nsections++;
	return w->err;
}

static void writer_free(struct snap_writer *w)
{
	if (w->f)
		fclose(w->f);
	free(w->buf);
	free(w->names);
	free(w->tmp);
	free(w->path);
	free(w);
}

int snap_writer_commit(struct snap_writer *w, char *err, size_t errlen)
{
	uint8_t header[SNAP_HEADER_SIZE];
	memcpy(header, SNAP_MAGIC, 8);
	le(header + 8, SNAP_FORMAT_VERSION, 4), le(header + 12, SNAP_ARCH_X86_64, 4);
	le(header + 16, w->nsections, 4), le(header + 20, crc32(0, header, 20), 4);
	int e = w->err ? w->err : w->open ? -EBUSY : 0;
	if (!e && (fseek(w->f, 0, SEEK_SET) || fwrite(header, 1, sizeof(header), w->f) !=
							  sizeof(header) || fflush(w->f)))
		e = -errno;
	if (!e && (fsync(fileno(w->f)) || rename(w->tmp, w->path)))
		e = -errno;
	if (e) {
		snprintf(err, errlen, "snapshot %s: %s", w->path, strerror(-e));
		unlink(w->tmp);
	}
	writer_free(w);
	return e;
}

void snap_writer_abort(struct snap_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	writer_free(w);
}

/* ---- reading ---- */

static int bad(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "snapshot %s: %s", name, what);
	return -EBADMSG;
}

/* One section header at *off; fills s and moves *off past its payload. */
static int parse_section(struct snap_reader *r, size_t *off, struct snap_section *s,
			 const char *name, char *err, size_t errlen)
{
	const uint8_t *d = r->data;
	size_t o = *off;
	for (int part = 0; part < 2; part++) {
		if (r->size - o < 2)
			return bad(err, errlen, name, "truncated section header at byte %zu", o);
		size_t n = rd(d + o, 2), max = part ? SNAP_ID_MAX : SNAP_KIND_MAX;
		if (n > max || r->size - o - 2 < n)
			return bad(err, errlen, name, "bad section name length at byte %zu", o);
		memcpy(part ? s->id : s->kind, d + o + 2, n);
		(part ? s->id : s->kind)[n] = '\0';
		o += 2 + n;
	}
	if (!kind_ok(s->kind) || !id_ok(s->id) || r->size - o < 16)
		return bad(err, errlen, name, "bad section %s/%s", s->kind, s->id);
	s->version = (uint32_t)rd(d + o, 4);
	s->len = rd(d + o + 4, 8);
	uint32_t crc = (uint32_t)rd(d + o + 12, 4);
	o += 16;
	if (s->len > r->size - o)
		return bad(err, errlen, name, "section %s/%s is truncated", s->kind, s->id);
	s->p = d + o;
	if (crc32(0, s->p, (uInt)s->len) != crc)
		return bad(err, errlen, name, "section %s/%s: checksum mismatch", s->kind, s->id);
	*off = o + s->len;
	return 0;
}

static int parse(struct snap_reader *r, const char *name, char *err, size_t errlen)
{
	const uint8_t *d = r->data;
	if (r->size < SNAP_HEADER_SIZE || memcmp(d, SNAP_MAGIC, 8) ||
	    crc32(0, d, 20) != rd(d + 20, 4))
		return bad(err, errlen, name, "not an argon snapshot (bad header)");
	if (rd(d + 8, 4) != SNAP_FORMAT_VERSION) {
		bad(err, errlen, name, "format version %u, this argon reads %d",
		    (unsigned)rd(d + 8, 4), SNAP_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (rd(d + 12, 4) != SNAP_ARCH_X86_64)
		return bad(err, errlen, name, "made on another architecture"), -ENOEXEC;
	uint32_t n = (uint32_t)rd(d + 16, 4);
	if (n > SNAP_MAX_SECTIONS || n > r->size / 20)
		return bad(err, errlen, name, "section count %u is more than the file holds", n);
	r->s = calloc(n ? n : 1, sizeof(*r->s));
	if (!r->s)
		return -ENOMEM;
	size_t off = SNAP_HEADER_SIZE;
	for (r->n = 0; r->n < n; r->n++) {
		int e = parse_section(r, &off, &r->s[r->n], name, err, errlen);
		if (e)
			return e;
		for (uint32_t j = 0; j < r->n; j++)
			if (!strcmp(r->s[j].kind, r->s[r->n].kind) && !strcmp(r->s[j].id, r->s[r->n].id))
				return bad(err, errlen, name, "section %s/%s twice", r->s[j].kind,
					   r->s[j].id);
	}
	return off == r->size ? 0 : bad(err, errlen, name, "bytes after the last section");
}

int snap_reader_open_buffer(const char *name, const void *buf, size_t len,
			    struct snap_reader **out, char *err, size_t errlen)
{
	if (len > SNAP_MAX_FILE_SIZE)
		return snprintf(err, errlen, "snapshot %s: too large", name), -EFBIG;
	struct snap_reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->data = malloc(len ? len : 1))) {
		free(r);
		return -ENOMEM;
	}
	memcpy(r->data, buf, len);
	r->size = len;
	int e = parse(r, name, err, errlen);
	if (e) {
		snap_reader_close(r);
		return e;
	}
	*out = r;
	return 0;
}

int snap_reader_open(const char *path, struct snap_reader **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = -errno;
		snprintf(err, errlen, "snapshot %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return e;
	}
	int e = S_ISDIR(st.st_mode) ? -EISDIR : !S_ISREG(st.st_mode) ? -EINVAL
		: st.st_size > SNAP_MAX_FILE_SIZE ? -EFBIG : 0;
	uint8_t *buf = e ? NULL : malloc((size_t)st.st_size + 1);
	if (!e && !buf)
		e = -ENOMEM;
	if (!e && read(fd, buf, (size_t)st.st_size) != st.st_size)
		e = -EIO;
	close(fd);
	if (e)
		snprintf(err, errlen, "snapshot %s: %s", path, strerror(-e));
	else
		e = snap_reader_open_buffer(path, buf, (size_t)st.st_size, out, err, errlen);
	free(buf);
	return e;
}

void snap_reader_close(struct snap_reader *r)
{
	if (!r)
		return;
	free(r->s);
	free(r->data);
	free(r);
}

uint32_t snap_reader_format_version(const struct snap_reader *r) { return SNAP_FORMAT_VERSION; }
uint32_t snap_section_count(const struct snap_reader *r) { return r->n; }

void snap_section_at(const struct snap_reader *r, uint32_t i, const char **kind, const char **id,
		     uint32_t *version, struct snap_cursor *c)
{
	const struct snap_section *s = i < r->n ? &r->s[i] : NULL;
	if (kind)
		*kind = s ? s->kind : "";
	if (id)
		*id = s ? s->id : "";
	if (version)
		*version = s ? s->version : 0;
	if (c)
		*c = s ? (struct snap_cursor){ .p = s->p, .len = s->len }
		       : (struct snap_cursor){ .failed = true };
}

int snap_section_find(const struct snap_reader *r, const char *kind, const char *id,
		      uint32_t *version, struct snap_cursor *c)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (!strcmp(r->s[i].kind, kind) && !strcmp(r->s[i].id, id)) {
			snap_section_at(r, i, NULL, NULL, version, c);
			return 0;
		}
	return -ENOENT;
}

static const uint8_t *take(struct snap_cursor *c, uint64_t n)
{
	if (c->failed || c->len - c->off < n) {
		c->failed = true;
		return NULL;
	}
	const uint8_t *p = c->p + c->off;
	c->off += n;
	return p;
}

uint8_t snap_get_u8(struct snap_cursor *c) { const uint8_t *p = take(c, 1); return p ? *p : 0; }
uint16_t snap_get_u16(struct snap_cursor *c) { const uint8_t *p = take(c, 2); return p ? (uint16_t)rd(p, 2) : 0; }
uint32_t snap_get_u32(struct snap_cursor *c) { const uint8_t *p = take(c, 4); return p ? (uint32_t)rd(p, 4) : 0; }
uint64_t snap_get_u64(struct snap_cursor *c) { const uint8_t *p = take(c, 8); return p ? rd(p, 8) : 0; }

void snap_get_blob(struct snap_cursor *c, void *dst, uint32_t len)
{
	uint64_t at = c->off;
	if (snap_get_u32(c) != len || c->failed) {
		c->failed = true;
		c->off = at;
		memset(dst, 0, len);
		return;
	}
	const uint8_t *p = take(c, len);
	if (p)
		memcpy(dst, p, len);
	else
		memset(dst, 0, len), c->off = at;
}

const void *snap_get_blob_max(struct snap_cursor *c, uint32_t max, uint32_t *len)
{
	uint64_t at = c->off;
	uint32_t n = snap_get_u32(c);
	const uint8_t *p = !c->failed && n <= max ? take(c, n) : NULL;
	if (!p) {
		c->failed = true;
		c->off = at;
		*len = 0;
		return NULL;
	}
	*len = n;
	return p;
}

int snap_cursor_finish(const struct snap_cursor *c, const char *kind, const char *id, char *err,
		       size_t errlen)
{
	if (c->failed)
		snprintf(err, errlen, "section %s/%s is truncated or malformed at byte %llu of %llu",
			 kind, id, (unsigned long long)c->off, (unsigned long long)c->len);
	else if (c->off != c->len)
		snprintf(err, errlen, "section %s/%s: %llu bytes left over", kind, id,
			 (unsigned long long)(c->len - c->off));
	else
		return 0;
	return -EINVAL;
}
