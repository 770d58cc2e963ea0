/* Host-side checks of argon-guest's pure code: the command-line parser,
 * vsnprintf, SHA-256 (the cpu-bench kernel) and the scan-code decoder. Plain asserts, no framework:
 * built and run by `make guest-check`. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "lib/cpu_bench_kernel.h"
#include "lib/scancode.h"
#include "lib/sha256.h"

int guest_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t size, const char *fmt, ...);

/* printf.c's printf needs a console. */
void console_write(const char *s, size_t n);
void console_write(const char *s, size_t n)
{
	fwrite(s, 1, n, stdout);
}

static void check_cmdline(const char *cmdline, const char *expect)
{
	char out[256];
	int found = cmdline_get(cmdline, "argon.cmd", out, sizeof(out));

	if (!expect) {
		assert(!found);
		return;
	}
	assert(found);
	if (strcmp(out, expect)) {
		fprintf(stderr, "cmdline '%s': got '%s', expected '%s'\n", cmdline, out, expect);
		assert(0);
	}
}

static void test_cmdline(void)
{
	char s[] = "  a  bb\tccc ";
	char *argv[4];

	check_cmdline("argon.cmd=info", "info");
	check_cmdline("console=ttyS0 argon.cmd=\"echo a b;info\" x=1", "echo a b;info");
	check_cmdline("\"argon.cmd=echo a\" y", "echo a");
	check_cmdline("foo=\"argon.cmd=no\" argon.cmd=yes", "yes");
	check_cmdline("xargon.cmd=no", NULL);
	check_cmdline("argon.cmdx=no", NULL);
	check_cmdline("argon.cmd=", "");
	check_cmdline("", NULL);
	assert(split_words(s, argv, 4) == 3);
	assert(!strcmp(argv[0], "a") && !strcmp(argv[1], "bb") && !strcmp(argv[2], "ccc"));
	strcpy(s, "a b c d e");
	assert(split_words(s, argv, 4) == -1);
}

static void test_mmio_device_arg(void)
{
	const char *cl = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 "
			 "virtio_mmio.device=512@0xfeb00e00:12:7 x=1";
	struct mmio_device_arg a;
	char v[64];

	assert(cmdline_get_nth(cl, "virtio_mmio.device", 0, v, sizeof(v)));
	assert(parse_mmio_device(v, &a) && a.size == 4096 && a.base == 0xd0000000 && a.irq == 5);
	assert(cmdline_get_nth(cl, "virtio_mmio.device", 1, v, sizeof(v)));
	assert(parse_mmio_device(v, &a) && a.size == 512 && a.base == 0xfeb00e00 && a.irq == 12);
	assert(!cmdline_get_nth(cl, "virtio_mmio.device", 2, v, sizeof(v)));
	assert(parse_mmio_device("1M@4096:0", &a) && a.size == 1 << 20 && a.base == 4096);
	assert(!parse_mmio_device("4K@0xd0000000", &a));
	assert(!parse_mmio_device("4K0xd0000000:5", &a));
	assert(!parse_mmio_device("@0xd0000000:5", &a));
	assert(!parse_mmio_device("4K@0x:5", &a));
	assert(!parse_mmio_device("4K@0xd0000000:5x", &a));
	assert(!parse_mmio_device("0@0xd0000000:5", &a));
}

static void check_format(const char *expect, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = guest_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, expect) || n != (int)strlen(expect)) {
		fprintf(stderr, "format '%s': got '%s' (%d)\n", fmt, buf, n);
		assert(0);
	}
}

static void test_printf(void)
{
	char small[4];

	check_format("42 -7 ff FF", "%d %i %x %X", 42, -7, 255, 255);
	check_format("18446744073709551615", "%lu", (unsigned long)-1);
	check_format("-9223372036854775808", "%ld", (long)(-9223372036854775807L - 1));
	check_format("0x00ab|  ab|ab  |", "0x%04x|%4x|%-4x|", 0xab, 0xab, 0xab);
	check_format("-0042", "%05d", -42);
	check_format("abc|ab|(null)", "%s|%.2s|%s", "abc", "abc", (char *)NULL);
	check_format("c%", "%c%%", 'c');
	check_format("0x1000", "%p", (void *)0x1000);
	assert(guest_snprintf(small, sizeof(small), "%s", "hello") == 5);
	assert(!strcmp(small, "hel"));
}

static void check_sha(const char *data, size_t len, const char *hex)
{
	uint8_t d[32];
	char got[65];

	sha256(data, len, d);
	for (int i = 0; i < 32; i++)
		sprintf(got + 2 * i, "%02x", d[i]);
	if (strcmp(got, hex)) {
		fprintf(stderr, "sha256 of %zu bytes: %s, expected %s\n", len, got, hex);
		assert(0);
	}
}

static void test_sha256(void)
{
	static char million[1000000];

	memset(million, 'a', sizeof(million));
	check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check_sha(million, sizeof(million),
		  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	assert(cpu_bench_selftest());
	/* The benchmark's result is a fixed function of the round count. */
	assert(cpu_bench_run(3) == cpu_bench_run(3));
	assert(cpu_bench_run(3) != cpu_bench_run(4));
}

/* Feeds bytes; returns the index of the byte that completed Ctrl+Alt+Del, or -1. */
static int feed(struct scancode_state *s, const uint8_t *b, int n)
{
	for (int i = 0; i < n; i++)
		if (scancode_ctrl_alt_del(s, b[i]))
			return i;
	return -1;
}

static void test_scancode(void)
{
	/* What argon-vmm's SendCtrlAltDel types: presses, then releases. */
	const uint8_t cad[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14 };
	/* Right Ctrl, right Alt, keypad Del, after an ACK and a keyboard's BAT byte. */
	const uint8_t right[] = { 0xfa, 0xaa, 0xe0, 0x14, 0xe0, 0x11, 0x71 };
	/* Ctrl released before Del; Alt+Del alone; Del released with both held. */
	const uint8_t late[] = { 0x14, 0x11, 0xf0, 0x14, 0xe0, 0x71 };
	const uint8_t alt_del[] = { 0x11, 0xe0, 0x71 };
	const uint8_t release[] = { 0x14, 0x11, 0xe0, 0xf0, 0x71 };
	struct scancode_state s;

	memset(&s, 0, sizeof(s));
	assert(feed(&s, cad, sizeof(cad)) == 3);
	assert(feed(&s, cad + 4, sizeof(cad) - 4) == -1);
	assert(!s.ctrl_l && !s.alt_l); /* the releases took the modifiers back */
	memset(&s, 0, sizeof(s));
	assert(feed(&s, right, sizeof(right)) == 6);
	memset(&s, 0, sizeof(s));
	assert(feed(&s, late, sizeof(late)) == -1);
	memset(&s, 0, sizeof(s));
	assert(feed(&s, alt_del, sizeof(alt_del)) == -1);
	memset(&s, 0, sizeof(s));
	assert(feed(&s, release, sizeof(release)) == -1);
}

int main(void)
{
	test_cmdline();
	test_mmio_device_arg();
	test_printf();
	test_sha256();
	test_scancode();
	printf("guest host-side checks: ok\n");
	return 0;
}
