/* A tiny AML emitter. Section numbers are ACPI 6.5's. */
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

/* Opcodes (section 20.3) and prefixes (section 20.2). */
enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0A,
	AML_WORD_PREFIX = 0x0B,
	AML_DWORD_PREFIX = 0x0C,
	AML_STRING_PREFIX = 0x0D,
	AML_QWORD_PREFIX = 0x0E,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_DUAL_NAME_PREFIX = 0x2E,
	AML_MULTI_NAME_PREFIX = 0x2F,
	AML_EXT_OP_PREFIX = 0x5B,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_NULL_NAME = 0x00,
};

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	*a = (struct aml){ .buf = buf, .cap = cap };
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->err)
		return;
	if (n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* Little-endian, all or nothing. */
static void put_le(struct aml *a, uint64_t v, int nbytes)
{
	uint8_t b[8];
	for (int i = 0; i < nbytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, (size_t)nbytes);
}

/* Section 20.2.4: a lead byte whose bits 7-6 count the bytes that follow. Alone it holds
 * 6 bits of length (up to 63); otherwise its low nibble is the least significant one
 * and each following byte adds 8 bits: 12, 20 or 28 bits in all. */
static uint32_t pkglen_limit(int nbytes)
{
	return nbytes == 1 ? 63 : (1u << (4 + 8 * (nbytes - 1))) - 1;
}

int aml_pkglen_size(size_t body_len)
{
	for (int n = 1; n <= 4; n++)
		if (body_len + (size_t)n <= pkglen_limit(n))
			return n;
	return 0;
}

int aml_pkglen_encode(uint8_t out[4], size_t body_len)
{
	int n = aml_pkglen_size(body_len);
	if (n == 0)
		return 0;
	uint32_t total = (uint32_t)(body_len + (size_t)n); /* the PkgLength counts itself */
	if (n == 1) {
		out[0] = (uint8_t)total;
		return 1;
	}
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0F));
	for (int i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

/* Closes a construct opened at mark: its body is everything emitted since, and the
 * PkgLength goes in front of it (moving the body up by 1-4 bytes). */
void aml_end(struct aml *a, size_t mark)
{
	if (a->err)
		return;
	size_t body = a->len - mark;
	uint8_t enc[4];
	int n = aml_pkglen_encode(enc, body);
	if (n == 0 || (size_t)n > a->cap - a->len) {
		fail(a, -ENOSPC);
		return;
	}
	memmove(a->buf + mark + n, a->buf + mark, body);
	memcpy(a->buf + mark, enc, (size_t)n);
	a->len += (size_t)n;
}

static void prefixed(struct aml *a, uint8_t prefix, uint64_t v, int nbytes)
{
	aml_byte(a, prefix);
	put_le(a, v, nbytes);
}

/* Section 20.2.3: ZeroOp and OneOp need no data; otherwise the narrowest *Const. */
void aml_integer(struct aml *a, uint64_t v)
{
	if (v <= 1)
		aml_byte(a, v ? AML_ONE_OP : AML_ZERO_OP);
	else if (v <= UINT8_MAX)
		prefixed(a, AML_BYTE_PREFIX, v, 1);
	else if (v <= UINT16_MAX)
		prefixed(a, AML_WORD_PREFIX, v, 2);
	else if (v <= UINT32_MAX)
		prefixed(a, AML_DWORD_PREFIX, v, 4);
	else
		prefixed(a, AML_QWORD_PREFIX, v, 8);
}

/* Section 20.2.3: String := StringPrefix AsciiCharList NullChar, chars 0x01-0x7F. */
void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7F) {
			fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* ACPI 6.5 section 6.1.5 (_HID) / ASL EISAID: three letters packed 5 bits each
 * ('A' = 1) into a big-endian 16-bit word, then the four hex digits, stored as one
 * little-endian DWORD whose first byte is the word's high byte. */
void aml_eisaid(struct aml *a, const char *id)
{
	if (strlen(id) != 7 || !is_upper(id[0]) || !is_upper(id[1]) || !is_upper(id[2])) {
		fail(a, -EINVAL);
		return;
	}
	uint32_t hex = 0;
	for (int i = 3; i < 7; i++) {
		int d = hex_value(id[i]);
		if (d < 0) {
			fail(a, -EINVAL);
			return;
		}
		hex = hex << 4 | (uint32_t)d;
	}
	uint16_t letters = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	uint8_t b[4] = { (uint8_t)(letters >> 8), (uint8_t)letters, (uint8_t)(hex >> 8),
			 (uint8_t)hex };
	aml_byte(a, AML_DWORD_PREFIX);
	aml_bytes(a, b, 4);
}

/* Section 20.2.5.4: Buffer := BufferOp PkgLength BufferSize ByteList. */
void aml_buffer(struct aml *a, const uint8_t *data, size_t n)
{
	aml_byte(a, AML_BUFFER_OP);
	size_t mark = a->len;
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a, mark);
}

/* Section 20.2.2: LeadNameChar is 'A'-'Z' or '_'; later chars may also be digits. */
static bool name_char_ok(char c, bool lead)
{
	return is_upper(c) || c == '_' || (!lead && c >= '0' && c <= '9');
}

/* Emits the NameSeg at s (1-4 chars up to '.' or the end, padded with '_'); returns
 * how many chars it took, or -1 for a malformed segment. */
static int name_seg(struct aml *a, const char *s)
{
	uint8_t seg[4] = { '_', '_', '_', '_' };
	int i = 0;
	for (; s[i] && s[i] != '.'; i++) {
		if (i == 4 || !name_char_ok(s[i], i == 0))
			return -1;
		seg[i] = (uint8_t)s[i];
	}
	if (i == 0)
		return -1;
	aml_bytes(a, seg, 4);
	return i;
}

static int count_segs(const char *path)
{
	int n = *path ? 1 : 0;
	for (; *path; path++)
		n += *path == '.';
	return n;
}

/* NameString := RootChar NamePath | PrefixPath NamePath, where NamePath is a NameSeg,
 * DualNamePrefix + 2 segs, MultiNamePrefix + count + segs, or NullName. */
void aml_name_string(struct aml *a, const char *path)
{
	if (*path == '\\')
		aml_byte(a, (uint8_t)*path++);
	else
		while (*path == '^')
			aml_byte(a, (uint8_t)*path++);
	int nsegs = count_segs(path);
	if (nsegs == 0) {
		aml_byte(a, AML_NULL_NAME);
		return;
	}
	if (nsegs > UINT8_MAX) {
		fail(a, -EINVAL);
		return;
	}
	if (nsegs == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (nsegs > 2)
		aml_byte(a, AML_MULTI_NAME_PREFIX), aml_byte(a, (uint8_t)nsegs);
	for (int i = 0; i < nsegs; i++) {
		int used = name_seg(a, path);
		if (used < 0) {
			fail(a, -EINVAL);
			return;
		}
		path += used + (i + 1 < nsegs); /* skip the '.' */
	}
}

/* Section 20.2.5.1: DefName := NameOp NameString DataRefObject. */
void aml_name_decl(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name_string(a, path);
}

/* Section 20.2.5.1: DefScope := ScopeOp PkgLength NameString TermList. */
size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t mark = a->len;
	aml_name_string(a, path);
	return mark;
}

/* Section 20.2.5.2: DefDevice := DeviceOp PkgLength NameString TermList. */
size_t aml_device_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	size_t mark = a->len;
	aml_name_string(a, path);
	return mark;
}

/* Section 20.2.5.4: DefPackage := PackageOp PkgLength NumElements PackageElementList. */
size_t aml_package_begin(struct aml *a, uint8_t nelements)
{
	aml_byte(a, AML_PACKAGE_OP);
	size_t mark = a->len;
	aml_byte(a, nelements);
	return mark;
}

/* Section 6.4.2.5: I/O Port Descriptor, 16-bit decode, fixed at base (min = max). */
void aml_res_io(struct aml *r, uint16_t base, uint8_t len)
{
	aml_byte(r, 0x47);
	aml_byte(r, 0x01); /* decodes 16 address bits */
	put_le(r, base, 2);
	put_le(r, base, 2);
	aml_byte(r, 0x01); /* alignment */
	aml_byte(r, len);
}

/* Section 6.4.2.1: IRQ Descriptor, 2-byte form: ISA-style edge, active high, exclusive. */
void aml_res_irq_noflags(struct aml *r, uint8_t irq)
{
	if (irq > 15) {
		fail(r, -EINVAL);
		return;
	}
	aml_byte(r, 0x22);
	put_le(r, 1u << irq, 2);
}

/* Section 6.4.3.4: 32-bit Fixed Memory Range Descriptor. */
void aml_res_memory32_fixed(struct aml *r, uint32_t base, uint32_t size, bool writable)
{
	aml_byte(r, 0x86);
	put_le(r, 9, 2); /* length of what follows */
	aml_byte(r, writable ? 0x01 : 0x00);
	put_le(r, base, 4);
	put_le(r, size, 4);
}

/* Section 6.4.3.6: Extended Interrupt Descriptor with one interrupt and no
 * ResourceSource. */
void aml_res_interrupt(struct aml *r, uint8_t flags, uint32_t gsi)
{
	aml_byte(r, 0x89);
	put_le(r, 6, 2); /* flags, table length, one DWORD */
	aml_byte(r, flags);
	aml_byte(r, 1);
	put_le(r, gsi, 4);
}

/* Section 6.4.2.9: End Tag; its checksum byte makes the whole template sum to zero. */
void aml_res_end(struct aml *r)
{
	aml_byte(r, 0x79);
	if (!r->err)
		aml_byte(r, (uint8_t)(0 - byte_sum(r->buf, r->len)));
}

/* Section 6.4: a resource template is a Buffer of descriptors closed by an End Tag. */
void aml_resource_template(struct aml *a, const struct aml *r)
{
	if (r->err)
		fail(a, r->err);
	aml_buffer(a, r->buf, r->len);
}
