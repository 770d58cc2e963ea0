/* Unit tests for the AML emitter and the ACPI tables. The tables are read back with raw
 * offsets from the ACPI 6.5 specification rather than acpi.c's structs, and the DSDT,
 * FADT and MADT are run through ACPICA's disassembler (iasl -d) when it is installed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "common/util.h"
#include "vmm/memory.h"

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- AML emitter ---- */

static void test_pkglen_boundaries(void **state)
{
	(void)state;
	/* The encoded value counts the PkgLength bytes themselves. */
	assert_int_equal(aml_pkglen_size(0), 1);
	assert_int_equal(aml_pkglen_size(62), 1);	/* 63 in all: the 1-byte maximum */
	assert_int_equal(aml_pkglen_size(63), 2);	/* 64 would not fit 6 bits */
	assert_int_equal(aml_pkglen_size(4093), 2);	/* 4095 = 0xFFF */
	assert_int_equal(aml_pkglen_size(4094), 3);	/* 4096 needs 20 bits */
	assert_int_equal(aml_pkglen_size(0xFFFFF - 3), 3);
	assert_int_equal(aml_pkglen_size(0xFFFFF - 2), 4);
	assert_int_equal(aml_pkglen_size(AML_PKGLEN_MAX - 4), 4);
	assert_int_equal(aml_pkglen_size(AML_PKGLEN_MAX - 3), 0);
}

static void test_pkglen_encoding(void **state)
{
	(void)state;
	uint8_t b[4];
	assert_int_equal(aml_pkglen_encode(b, 62), 1);
	assert_int_equal(b[0], 63);
	assert_int_equal(aml_pkglen_encode(b, 63), 2); /* 65 = 0x41 */
	assert_int_equal(b[0], 0x41);
	assert_int_equal(b[1], 0x04);
	assert_int_equal(aml_pkglen_encode(b, 4093), 2); /* 0xFFF */
	assert_int_equal(b[0], 0x4F);
	assert_int_equal(b[1], 0xFF);
	assert_int_equal(aml_pkglen_encode(b, 4094), 3); /* 4097 = 0x1001 */
	assert_int_equal(b[0], 0x81);
	assert_int_equal(b[1], 0x00);
	assert_int_equal(b[2], 0x01);
	assert_int_equal(aml_pkglen_encode(b, AML_PKGLEN_MAX - 4), 4); /* 0xFFFFFFF */
	assert_int_equal(b[0], 0xCF);
	assert_int_equal(b[1], 0xFF);
	assert_int_equal(b[2], 0xFF);
	assert_int_equal(b[3], 0xFF);
}

/* A scope around body_len bytes: the PkgLength lands after the opcode and the body
 * moves up intact. */
static void check_scope_with_body(size_t body_len, int pkglen_bytes)
{
	size_t cap = body_len + 16;
	uint8_t *buf = calloc(1, cap);
	assert_non_null(buf);
	struct aml a;
	aml_init(&a, buf, cap);
	size_t mark = aml_scope_begin(&a, "ABCD");
	for (size_t i = 4; i < body_len; i++)
		aml_byte(&a, (uint8_t)i);
	aml_end(&a, mark);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.len, 1 + pkglen_bytes + body_len);
	assert_int_equal(buf[0], 0x10);
	uint8_t enc[4];
	assert_int_equal(aml_pkglen_encode(enc, body_len), pkglen_bytes);
	assert_memory_equal(buf + 1, enc, pkglen_bytes);
	assert_memory_equal(buf + 1 + pkglen_bytes, "ABCD", 4);
	assert_int_equal(buf[a.len - 1], (uint8_t)(body_len - 1));
	free(buf);
}

static void test_aml_end_moves_body(void **state)
{
	(void)state;
	check_scope_with_body(62, 1);
	check_scope_with_body(63, 2);
	check_scope_with_body(4093, 2);
	check_scope_with_body(4094, 3);
	check_scope_with_body(0xFFFFF - 3, 3);
	check_scope_with_body(0xFFFFF - 2, 4);
}

static void check_integer(uint64_t v, const uint8_t *expect, size_t n)
{
	uint8_t buf[16];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, v);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, expect, n);
}

static void test_integer_smallest_prefix(void **state)
{
	(void)state;
	check_integer(0, (const uint8_t[]){ 0x00 }, 1);
	check_integer(1, (const uint8_t[]){ 0x01 }, 1);
	check_integer(2, (const uint8_t[]){ 0x0A, 0x02 }, 2);
	check_integer(0xFF, (const uint8_t[]){ 0x0A, 0xFF }, 2);
	check_integer(0x100, (const uint8_t[]){ 0x0B, 0x00, 0x01 }, 3);
	check_integer(0xFFFF, (const uint8_t[]){ 0x0B, 0xFF, 0xFF }, 3);
	check_integer(0x10000, (const uint8_t[]){ 0x0C, 0x00, 0x00, 0x01, 0x00 }, 5);
	check_integer(0x100000000ULL,
		      (const uint8_t[]){ 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 }, 9);
}

static void check_name(const char *path, const char *expect, size_t n)
{
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_name_string(&a, path);
	assert_int_equal(a.err, 0);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, expect, n);
}

static void check_bad_name(const char *path)
{
	uint8_t buf[64];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_name_string(&a, path);
	assert_int_equal(a.err, -EINVAL);
}

static void test_name_strings(void **state)
{
	(void)state;
	check_name("COM1", "COM1", 4);
	check_name("_S5", "_S5_", 4);
	check_name("\\_SB_", "\\_SB_", 5);
	check_name("\\_SB.COM1", "\\\x2E_SB_COM1", 10);
	check_name("A.B.C", "\x2F\x03" "A___B___C___", 14);
	check_name("^^FOO", "^^FOO_", 6);
	check_name("\\", "\\\x00", 2);
	check_bad_name("1ABC");	 /* digits cannot lead */
	check_bad_name("ABCDE"); /* five chars */
	check_bad_name("abc");	 /* lower case */
	check_bad_name("A..B");	 /* empty segment */
	check_bad_name("A.");
}

static void test_eisaid_and_string(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0501"); /* the well-known 0x0105D041 */
	assert_int_equal(a.err, 0);
	assert_memory_equal(buf, ((const uint8_t[]){ 0x0C, 0x41, 0xD0, 0x05, 0x01 }), 5);
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "LNRO0005");
	assert_int_equal(a.len, 10);
	assert_memory_equal(buf, "\x0DLNRO0005\0", 10);
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "pnp0501");
	assert_int_equal(a.err, -EINVAL);
	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP05G1");
	assert_int_equal(a.err, -EINVAL);
}

static void test_resource_template(void **state)
{
	(void)state;
	uint8_t res[64];
	struct aml r;
	aml_init(&r, res, sizeof(res));
	aml_res_io(&r, 0x3F8, 8);
	aml_res_irq_noflags(&r, 4);
	aml_res_memory32_fixed(&r, 0xD0000000, 0x1000, true);
	aml_res_interrupt(&r, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 5);
	aml_res_end(&r);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.len, 8 + 3 + 12 + 9 + 2);
	assert_int_equal(byte_sum(res, r.len), 0); /* End Tag checksum */
	assert_memory_equal(res, ((const uint8_t[]){ 0x47, 1, 0xF8, 3, 0xF8, 3, 1, 8 }), 8);
	assert_memory_equal(res + 8, ((const uint8_t[]){ 0x22, 0x10, 0x00 }), 3);
	assert_int_equal(res[11], 0x86);
	assert_int_equal(rd32(res + 15), 0xD0000000);
	assert_int_equal(res[23], 0x89);
	assert_int_equal(res[26], 0x03); /* consumer, edge, active high, exclusive */
	assert_int_equal(rd32(res + 28), 5);
	assert_int_equal(res[r.len - 2], 0x79);

	uint8_t out[64];
	struct aml a;
	aml_init(&a, out, sizeof(out));
	aml_resource_template(&a, &r);
	assert_int_equal(a.err, 0);
	assert_memory_equal(out, ((const uint8_t[]){ 0x11, (uint8_t)(r.len + 3), 0x0A,
						     (uint8_t)r.len }), 4);
	assert_memory_equal(out + 4, res, r.len);

	aml_init(&r, res, sizeof(res));
	aml_res_irq_noflags(&r, 16); /* not an ISA IRQ */
	aml_init(&a, out, sizeof(out));
	aml_resource_template(&a, &r);
	assert_int_equal(a.err, -EINVAL);
}

static void test_overflow_is_sticky(void **state)
{
	(void)state;
	uint8_t buf[4];
	struct aml a;
	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, 0x10000); /* 5 bytes */
	assert_int_equal(a.err, -ENOSPC);
	assert_int_equal(a.len, 1); /* the prefix fitted, the value did not */
	aml_byte(&a, 0);
	assert_int_equal(a.len, 1);
	assert_int_equal(a.err, -ENOSPC);

	/* A PkgLength that no longer fits once the body is in. */
	aml_init(&a, buf, sizeof(buf));
	size_t mark = aml_package_begin(&a, 3);
	aml_byte(&a, 0);
	aml_byte(&a, 0);
	aml_end(&a, mark);
	assert_int_equal(a.err, -ENOSPC);
}

/* ---- ACPI tables ---- */

struct fixture {
	struct guest_mem mem;
	uint64_t rsdp;
};

static const struct acpi_mmio_device test_devices[] = {
	{ .base = LAYOUT_VIRTIO_MMIO_BASE, .size = 0x1000, .irq = 5 },
	{ .base = LAYOUT_VIRTIO_MMIO_BASE + 0x1000, .size = 0x1000, .irq = 6 },
	{ .base = LAYOUT_VIRTIO_MMIO_BASE + 0x2000, .size = 0x1000, .irq = 7 },
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || guest_mem_create_anon(&f->mem, MIB(128)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_destroy(&f->mem);
	free(f);
	return 0;
}

static void build(struct fixture *f, int ncpus, int ndevices)
{
	struct acpi_config cfg = { .ncpus = ncpus, .mmio_devices = test_devices,
				   .nmmio_devices = ndevices };
	assert_int_equal(acpi_build(&f->mem, &cfg, &f->rsdp), 0);
}

/* A table at gpa, checked to lie inside the ACPI area with a valid checksum. */
static const uint8_t *table_at(struct fixture *f, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= LAYOUT_ACPI_START && gpa + 36 <= LAYOUT_ACPI_END);
	const uint8_t *h = guest_mem_ptr(&f->mem, gpa, 36);
	assert_non_null(h);
	assert_memory_equal(h, sig, 4);
	uint32_t len = rd32(h + 4);
	assert_true(len >= 36 && gpa + len <= LAYOUT_ACPI_END);
	assert_non_null(guest_mem_ptr(&f->mem, gpa, len));
	assert_int_equal(byte_sum(h, len), 0);
	assert_memory_equal(h + 10, "ARGON ", 6);
	return h;
}

static const uint8_t *xsdt_entry(struct fixture *f, int i, const char *sig)
{
	const uint8_t *rsdp = guest_mem_ptr(&f->mem, f->rsdp, 36);
	const uint8_t *xsdt = table_at(f, rd64(rsdp + 24), "XSDT");
	assert_true(36 + 8 * (uint32_t)(i + 1) <= rd32(xsdt + 4));
	return table_at(f, rd64(xsdt + 36 + 8 * i), sig);
}

static void test_rsdp(void **state)
{
	struct fixture *f = *state;
	build(f, 2, 1);
	assert_int_equal(f->rsdp, LAYOUT_ACPI_START); /* where the 0xE0000 scan looks */
	assert_int_equal(f->rsdp % 16, 0);
	const uint8_t *r = guest_mem_ptr(&f->mem, f->rsdp, 36);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(byte_sum(r, 20), 0); /* ACPI 1.0 checksum */
	assert_int_equal(r[15], 2);	      /* revision */
	assert_int_equal(rd32(r + 20), 36);   /* length */
	assert_int_equal(byte_sum(r, 36), 0); /* extended checksum */
}

static void test_xsdt_points_to_tables(void **state)
{
	struct fixture *f = *state;
	build(f, 4, 3);
	const uint8_t *r = guest_mem_ptr(&f->mem, f->rsdp, 36);
	const uint8_t *xsdt = table_at(f, rd64(r + 24), "XSDT");
	assert_int_equal(rd32(xsdt + 4), 36 + 2 * 8);
	xsdt_entry(f, 0, "FACP");
	xsdt_entry(f, 1, "APIC");
}

static void check_io_gas(const uint8_t *gas, uint16_t port)
{
	assert_int_equal(gas[0], 1); /* system I/O */
	assert_int_equal(gas[1], 8); /* bit width */
	assert_int_equal(gas[2], 0); /* bit offset */
	assert_int_equal(gas[3], 1); /* byte access */
	assert_int_equal(rd64(gas + 4), port);
}

static void test_fadt(void **state)
{
	struct fixture *f = *state;
	build(f, 2, 3);
	const uint8_t *fadt = xsdt_entry(f, 0, "FACP");
	assert_int_equal(rd32(fadt + 4), 276);
	assert_int_equal(fadt[8], 6);	 /* major revision */
	assert_int_equal(fadt[131], 5); /* minor revision */
	uint32_t flags = rd32(fadt + 112);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	uint16_t boot = rd16(fadt + 109);
	assert_true(boot & (1u << 2));	  /* no VGA */
	assert_true(boot & (1u << 5));	  /* no CMOS RTC */
	check_io_gas(fadt + 116, LAYOUT_PORT_ACPI_RESET);
	assert_int_equal(fadt[128], LAYOUT_ACPI_RESET_VALUE);
	check_io_gas(fadt + 244, LAYOUT_PORT_ACPI_SLEEP_CONTROL);
	check_io_gas(fadt + 256, LAYOUT_PORT_ACPI_SLEEP_STATUS);
	uint64_t dsdt = rd64(fadt + 140);
	assert_int_equal(rd32(fadt + 40), dsdt);
	table_at(f, dsdt, "DSDT");
	assert_memory_equal(fadt + 268, "ARGON", 5);
}

struct madt_counts {
	int lapic, x2apic, ioapic, iso, nmi, x2nmi;
};

/* Walks the MADT's structures, checking that each CPU entry has APIC id = its index in
 * order and is enabled, and that the lengths add up to the table's. */
static struct madt_counts walk_madt(const uint8_t *madt)
{
	struct madt_counts c = { 0 };
	uint32_t len = rd32(madt + 4), off = 44;
	uint32_t next_id = 0;
	while (off < len) {
		const uint8_t *e = madt + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		if (e[0] == 0) {
			assert_int_equal(e[3], next_id++);
			assert_int_equal(rd32(e + 4), 1);
			c.lapic++;
		} else if (e[0] == 9) {
			assert_int_equal(rd32(e + 4), next_id++);
			assert_int_equal(rd32(e + 8), 1);
			c.x2apic++;
		} else if (e[0] == 1) {
			assert_int_equal(rd32(e + 4), LAYOUT_IOAPIC);
			assert_int_equal(rd32(e + 8), 0); /* GSI base */
			c.ioapic++;
		} else if (e[0] == 2) {
			c.iso++;
		} else {
			c.nmi += e[0] == 4;
			c.x2nmi += e[0] == 10;
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	return c;
}

static void check_madt(struct fixture *f, int ncpus)
{
	build(f, ncpus, 0);
	const uint8_t *madt = xsdt_entry(f, 1, "APIC");
	assert_int_equal(rd32(madt + 36), LAYOUT_LAPIC);
	struct madt_counts c = walk_madt(madt);
	assert_int_equal(c.lapic, MIN(ncpus, 255));
	assert_int_equal(c.x2apic, ncpus > 255 ? ncpus - 255 : 0);
	assert_int_equal(c.ioapic, 1);
	assert_int_equal(c.iso, 0); /* KVM's default routing: ISA IRQ n is GSI n */
	assert_int_equal(c.nmi, 1);
	assert_int_equal(c.x2nmi, ncpus > 255 ? 1 : 0);
}

static void test_madt_cpu_counts(void **state)
{
	static const int counts[] = { 1, 2, 8, 32, 254, 255, 256, 300, 1024 };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		check_madt(*state, counts[i]);
}

static void test_madt_ioapic_id(void **state)
{
	struct fixture *f = *state;
	build(f, 8, 0);
	const uint8_t *madt = xsdt_entry(f, 1, "APIC");
	assert_int_equal(madt[44 + 8 * 8 + 2], 8); /* after the 8 LAPIC entries */
}

/* The DSDT: COM1, the keyboard and one VRnn device per virtio-mmio device, \_S5 at
 * the root. */
static void test_dsdt_contents(void **state)
{
	struct fixture *f = *state;
	build(f, 1, 3);
	const uint8_t *fadt = xsdt_entry(f, 0, "FACP");
	const uint8_t *dsdt = table_at(f, rd64(fadt + 140), "DSDT");
	uint32_t len = rd32(dsdt + 4);
	assert_int_equal(dsdt[8], 2); /* revision 2: 64-bit integers */
	assert_non_null(memmem(dsdt, len, "COM1", 4));
	assert_non_null(memmem(dsdt, len, "KBD_", 4));
	assert_non_null(memmem(dsdt, len, "VR00", 4));
	assert_non_null(memmem(dsdt, len, "VR02", 4));
	assert_null(memmem(dsdt, len, "VR03", 4));
	assert_non_null(memmem(dsdt, len, "LNRO0005", 8));
	/* Name(_S5_, Package(4) {5, 0, 0, 0}) */
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0A, 0x05,
				      0x00, 0x00, 0x00 };
	assert_non_null(memmem(dsdt, len, s5, sizeof(s5)));
}

/* ---- iasl ---- */

static bool have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = calloc(1, 1 << 20);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Disassembles one table with iasl -d in a fresh directory; returns the .dsl text
 * (caller frees) after checking the exit status and that iasl reported no error. */
static char *iasl_disassemble(const uint8_t *table, const char *name)
{
	char dir[] = "/tmp/argon-acpi-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char bin[128], dsl[128], log[128], cmd[512];
	snprintf(bin, sizeof(bin), "%s/%s.dat", dir, name);
	snprintf(dsl, sizeof(dsl), "%s/%s.dsl", dir, name);
	snprintf(log, sizeof(log), "%s/iasl.log", dir);
	write_file(bin, table, rd32(table + 4));
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >iasl.log 2>&1", dir, name);
	int status = system(cmd);
	char *out = read_file(log);
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !strstr(out, "Error");
	if (!ok)
		fprintf(stderr, "iasl -d %s (status %d):\n%s", name, status, out);
	free(out);
	assert_true(ok);
	char *text = read_file(dsl);
	unlink(bin);
	unlink(dsl);
	unlink(log);
	rmdir(dir);
	return text;
}

/* The value iasl prints for a decoded flag: "   Hardware Reduced (V5) : 1". */
static int decoded_flag(const char *dsl, const char *label)
{
	const char *p = strstr(dsl, label);
	assert_non_null(p);
	p = strstr(p, " : ");
	assert_non_null(p);
	return p[3] - '0';
}

static void test_iasl_disassembles_tables(void **state)
{
	if (!have_iasl()) {
		fprintf(stderr, "SKIPPED: iasl not installed (acpica-tools)\n");
		skip();
	}
	struct fixture *f = *state;
	build(f, 4, 3);
	const uint8_t *fadt = xsdt_entry(f, 0, "FACP");
	char *dsl = iasl_disassemble(table_at(f, rd64(fadt + 140), "DSDT"), "dsdt");
	assert_non_null(strstr(dsl, "LNRO0005"));
	assert_non_null(strstr(dsl, "PNP0501"));
	/* The keyboard: both ports, IRQ 1, and no mouse beside it. */
	assert_non_null(strstr(dsl, "PNP0303"));
	assert_non_null(strstr(dsl, "0x0060,"));
	assert_non_null(strstr(dsl, "0x0064,"));
	assert_non_null(strstr(dsl, "{1}"));
	assert_null(strstr(dsl, "PNP0F13"));
	assert_non_null(strstr(dsl, "_S5_"));
	assert_non_null(strstr(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive"));
	free(dsl);
	dsl = iasl_disassemble(fadt, "facp");
	assert_int_equal(decoded_flag(dsl, "Hardware Reduced"), 1);
	assert_int_equal(decoded_flag(dsl, "Reset Register Supported"), 1);
	assert_int_equal(decoded_flag(dsl, "CMOS RTC Not Present"), 1);
	free(dsl);
	dsl = iasl_disassemble(xsdt_entry(f, 1, "APIC"), "apic");
	assert_non_null(strstr(dsl, "I/O APIC"));
	assert_non_null(strstr(dsl, "Local APIC NMI"));
	free(dsl);
}

/* ---- errors ---- */

static void test_bad_configs(void **state)
{
	struct fixture *f = *state;
	uint64_t rsdp = 0;
	struct acpi_mmio_device bad = test_devices[0];
	struct acpi_config cfg = { .ncpus = 0 };
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg.ncpus = 1025;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg = (struct acpi_config){ .ncpus = 1, .nmmio_devices = -1 };
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg.nmmio_devices = 1; /* but no array */
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	cfg.mmio_devices = &bad;
	bad.irq = LAYOUT_IOAPIC_PINS;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	bad = (struct acpi_mmio_device){ .base = 0xFFFFF000, .size = 0x2000, .irq = 5 };
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	bad.size = 0;
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), -EINVAL);
	bad = (struct acpi_mmio_device){ .base = 0xFFFFF000, .size = 0x1000, .irq = 23 };
	assert_int_equal(acpi_build(&f->mem, &cfg, &rsdp), 0); /* ends exactly at 4 GiB */
	assert_int_equal(rsdp, LAYOUT_ACPI_START);
}

/* Guest RAM that ends inside the ACPI area: the tables cannot be written. */
static void test_tables_do_not_fit(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { LAYOUT_ACPI_START, LAYOUT_ACPI_START + 0x1000,
					  LAYOUT_ACPI_END - 0x1000 };
	struct acpi_config cfg = { .ncpus = 8, .mmio_devices = test_devices, .nmmio_devices = 3 };
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem mem;
		assert_int_equal(guest_mem_create_anon(&mem, sizes[i]), 0);
		uint64_t rsdp = 0;
		assert_int_equal(acpi_build(&mem, &cfg, &rsdp), -ENOSPC);
		guest_mem_destroy(&mem);
	}
	struct guest_mem mem; /* exactly 1 MiB: the area is all RAM */
	assert_int_equal(guest_mem_create_anon(&mem, LAYOUT_ACPI_END), 0);
	uint64_t rsdp = 0;
	assert_int_equal(acpi_build(&mem, &cfg, &rsdp), 0);
	guest_mem_destroy(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglen_boundaries),
		cmocka_unit_test(test_pkglen_encoding),
		cmocka_unit_test(test_aml_end_moves_body),
		cmocka_unit_test(test_integer_smallest_prefix),
		cmocka_unit_test(test_name_strings),
		cmocka_unit_test(test_eisaid_and_string),
		cmocka_unit_test(test_resource_template),
		cmocka_unit_test(test_overflow_is_sticky),
		cmocka_unit_test_setup_teardown(test_rsdp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xsdt_points_to_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fadt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_cpu_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madt_ioapic_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dsdt_contents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iasl_disassembles_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_configs, setup, teardown),
		cmocka_unit_test(test_tables_do_not_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
