/* Host-side payload decompression: every codec the kernel build can use, round trip
 * through Debian's libraries, plus the hostile cases (truncated, corrupt, output
 * larger than the room given). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compress_fixtures.h"
#include "loader/decompress.h"

static const char *const all_codecs[] = { "gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd" };

#define SAMPLE_LEN (600u << 10) /* several lzo blocks */

/* Compressible but not trivial: text-like runs with a slowly changing pattern. */
static uint8_t *sample(size_t len)
{
	uint8_t *p = malloc(len);
	uint32_t x = 12345;
	for (size_t i = 0; i < len; i++) {
		if (i % 64 == 0)
			x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)("argon loads kernels "[i % 20] ^ ((x >> 16) & 3));
	}
	return p;
}

static void roundtrip_one(const char *name)
{
	uint8_t *in = sample(SAMPLE_LEN);
	size_t plen = 0, n = 0;
	uint8_t *payload = fx_payload(name, in, SAMPLE_LEN, &plen);
	assert_non_null(payload);
	const struct codec *c = codec_detect(payload, plen);
	assert_non_null(c);
	assert_string_equal(c->name, name);
	uint8_t *out = malloc(SAMPLE_LEN);
	char why[160] = "";
	int rc = codec_decompress(c, payload, plen, out, SAMPLE_LEN, &n, why, sizeof(why));
	if (rc)
		fail_msg("%s: %s", name, why);
	assert_int_equal(n, SAMPLE_LEN);
	assert_memory_equal(out, in, SAMPLE_LEN);
	free(out);
	free(payload);
	free(in);
}

static void test_roundtrip_every_codec(void **state)
{
	for (size_t i = 0; i < sizeof(all_codecs) / sizeof(all_codecs[0]); i++)
		roundtrip_one(all_codecs[i]);
}

/* A stream cut in half (trailer included) must fail cleanly with -ENOEXEC. */
static void test_truncated_streams(void **state)
{
	uint8_t *in = sample(SAMPLE_LEN);
	uint8_t *out = malloc(SAMPLE_LEN);
	for (size_t i = 0; i < sizeof(all_codecs) / sizeof(all_codecs[0]); i++) {
		size_t plen = 0, n = 0;
		uint8_t *payload = fx_payload(all_codecs[i], in, SAMPLE_LEN, &plen);
		const struct codec *c = codec_detect(payload, plen);
		char why[160] = "";
		int rc = codec_decompress(c, payload, plen / 2, out, SAMPLE_LEN, &n, why, sizeof(why));
		if (rc != -ENOEXEC)
			fail_msg("%s: truncated stream gave %d (%s)", all_codecs[i], rc, why);
		assert_true(strlen(why) > 0);
		free(payload);
	}
	free(out);
	free(in);
}

/* Output room smaller than the data: -EFBIG, and nothing written past the room. */
static void test_output_larger_than_room(void **state)
{
	uint8_t *in = sample(SAMPLE_LEN);
	size_t room = SAMPLE_LEN / 3;
	uint8_t *out = malloc(room); /* ASan catches any write past it */
	for (size_t i = 0; i < sizeof(all_codecs) / sizeof(all_codecs[0]); i++) {
		size_t plen = 0, n = 0;
		uint8_t *payload = fx_payload(all_codecs[i], in, SAMPLE_LEN, &plen);
		const struct codec *c = codec_detect(payload, plen);
		char why[160] = "";
		int rc = codec_decompress(c, payload, plen, out, room, &n, why, sizeof(why));
		if (rc != -EFBIG)
			fail_msg("%s: too little room gave %d (%s)", all_codecs[i], rc, why);
		assert_true(n <= room);
		free(payload);
	}
	free(out);
	free(in);
}

/* Flipped bytes in the middle of each stream: an error or a (wrong) success, never
 * a crash or a write out of bounds. */
static void test_corrupt_streams_do_not_crash(void **state)
{
	uint8_t *in = sample(SAMPLE_LEN);
	uint8_t *out = malloc(SAMPLE_LEN);
	for (size_t i = 0; i < sizeof(all_codecs) / sizeof(all_codecs[0]); i++) {
		size_t plen = 0, n = 0;
		uint8_t *payload = fx_payload(all_codecs[i], in, SAMPLE_LEN, &plen);
		for (size_t k = 16; k < plen - 8; k += plen / 7)
			payload[k] ^= 0x5a;
		const struct codec *c = codec_detect(payload, plen);
		char why[160] = "";
		int rc = codec_decompress(c, payload, plen, out, SAMPLE_LEN, &n, why, sizeof(why));
		assert_true(rc == 0 || rc == -ENOEXEC || rc == -EFBIG);
		assert_true(n <= SAMPLE_LEN);
		free(payload);
	}
	free(out);
	free(in);
}

/* The LZ4 legacy stream may carry the magic again between blocks (concatenated
 * frames) and ends at the 4-byte size trailer. */
static void test_lz4_concatenated_frames(void **state)
{
	uint8_t *in = sample(SAMPLE_LEN);
	size_t half = SAMPLE_LEN / 2, l1 = 0, l2 = 0, n = 0;
	uint8_t *a = fx_payload("lz4", in, half, &l1);
	uint8_t *b = fx_payload("lz4", in + half, SAMPLE_LEN - half, &l2);
	uint8_t *cat = malloc(l1 + l2);
	memcpy(cat, a, l1 - 4); /* drop a's trailer, keep b's magic and trailer */
	memcpy(cat + l1 - 4, b, l2);
	uint8_t *out = malloc(SAMPLE_LEN);
	char why[160] = "";
	const struct codec *c = codec_detect(cat, l1 - 4 + l2);
	assert_int_equal(codec_decompress(c, cat, l1 - 4 + l2, out, SAMPLE_LEN, &n, why, sizeof(why)),
			 0);
	assert_int_equal(n, SAMPLE_LEN);
	assert_memory_equal(out, in, SAMPLE_LEN);
	free(out);
	free(cat);
	free(b);
	free(a);
	free(in);
}

static void test_detect_unknown(void **state)
{
	static const uint8_t elf[] = { 0x7f, 'E', 'L', 'F' }, lzma_not[] = { 0x5d, 0x00, 0x01 };
	assert_null(codec_detect(elf, sizeof(elf)));
	assert_null(codec_detect(lzma_not, sizeof(lzma_not)));
	assert_null(codec_detect(elf, 0));
	assert_null(codec_detect((const uint8_t *)"\x1f", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_codec),
		cmocka_unit_test(test_truncated_streams),
		cmocka_unit_test(test_output_larger_than_room),
		cmocka_unit_test(test_corrupt_streams_do_not_crash),
		cmocka_unit_test(test_lz4_concatenated_frames),
		cmocka_unit_test(test_detect_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
