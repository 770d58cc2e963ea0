/* A tiny AML byte emitter (ACPI 6.5 chapter 20, "ACPI Machine Language
 * Specification"): just what argon's DSDT needs. Errors are sticky: the first one is
 * kept in err and every later call does nothing, so a builder checks once at the end. */
#ifndef ARGON_ARCH_X86_AML_H
#define ARGON_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* 0, -ENOSPC (out of room) or -EINVAL (a bad name, string or id) */
};

/* Resource descriptor flags for aml_res_interrupt (ACPI 6.5 section 6.4.3.6). */
#define AML_IRQ_CONSUMER 0x01
#define AML_IRQ_EDGE 0x02
#define AML_IRQ_ACTIVE_LOW 0x04
#define AML_IRQ_SHARED 0x08

#define AML_PKGLEN_MAX ((1u << 28) - 1) /* the largest PkgLength value (4 bytes) */

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/* How many bytes the PkgLength of a body of body_len bytes takes (1-4; the encoded value
 * counts these bytes too), or 0 when the result exceeds AML_PKGLEN_MAX. */
int aml_pkglen_size(size_t body_len);
/* Encodes the PkgLength for a body of body_len bytes into out; returns its size, or 0. */
int aml_pkglen_encode(uint8_t out[4], size_t body_len);

/* Data objects (section 20.2.3): an integer with the smallest encoding (ZeroOp, OneOp,
 * Byte/Word/DWord/QWordConst), a string, an EISA id ("PNP0501") as a DWordConst, a
 * buffer holding data[0..n). */
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id);
void aml_buffer(struct aml *a, const uint8_t *data, size_t n);

/* A NameString (section 20.2.2) from "\\_SB_.COM1", "^FOO", "_S5" (short segments
 * padded with '_'). */
void aml_name_string(struct aml *a, const char *path);
/* Name(path, ...): emits NameOp and the name; the caller emits the value next. */
void aml_name_decl(struct aml *a, const char *path);

/* Constructs with a PkgLength. begin returns a mark to pass to aml_end once the
 * contents have been emitted. */
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
size_t aml_package_begin(struct aml *a, uint8_t nelements);
void aml_end(struct aml *a, size_t mark);

/* Resource descriptors (section 6.4) for a ResourceTemplate: emit them into their own
 * struct aml, close with aml_res_end, then wrap the bytes with aml_buffer. */
void aml_res_io(struct aml *r, uint16_t base, uint8_t len);
void aml_res_irq_noflags(struct aml *r, uint8_t irq);
void aml_res_memory32_fixed(struct aml *r, uint32_t base, uint32_t size, bool writable);
void aml_res_interrupt(struct aml *r, uint8_t flags, uint32_t gsi);
void aml_res_end(struct aml *r);
/* Emits the descriptors collected in r (closed by aml_res_end) as a Buffer; an error in
 * r becomes a's error. */
void aml_resource_template(struct aml *a, const struct aml *r);

#endif
