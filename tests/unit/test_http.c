/* The API's HTTP parser: what Firecracker's clients send parses; every hostile head
 * gets its status and message, as soon as the bytes show it (golden strings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/http.h"

static int parse(const char *text, struct http_request *req, char *err)
{
	return http_parse_head(text, strlen(text), req, err, 256);
}

static void curl_put_parses(void **state)
{
	struct http_request req;
	char err[256];
	const char *text = "PUT /drives/rootfs HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88\r\n"
			   "Accept: */*\r\nContent-Length: 17\r\nContent-Type: application/"
			   "x-www-form-urlencoded\r\n\r\n{\"drive_id\": \"x\"}";
	assert_int_equal(parse(text, &req, err), 0);
	assert_int_equal(req.method, HTTP_PUT);
	assert_string_equal(req.path, "/drives/rootfs");
	assert_int_equal(req.content_length, 17);
	assert_int_equal(req.head_len, strlen(text) - 17);
	assert_true(req.keep_alive);
	assert_false(req.expect_continue);
}

static void partial_heads_need_more(void **state)
{
	const char *text = "GET /machine-config HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_request req;
	char err[256];
	for (size_t n = 0; n < strlen(text); n++)
		assert_int_equal(http_parse_head(text, n, &req, err, sizeof(err)), HTTP_INCOMPLETE);
	assert_int_equal(http_parse_head(text, strlen(text), &req, err, sizeof(err)), 0);
	assert_int_equal(req.method, HTTP_GET);
	assert_int_equal(req.content_length, 0);
}

static void options_of_the_connection(void **state)
{
	struct http_request req;
	char err[256];
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &req, err), 0);
	assert_false(req.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req, err), 0);
	assert_true(req.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n", &req, err), 0);
	assert_false(req.keep_alive);
	assert_int_equal(parse("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n",
			       &req, err), 0);
	assert_true(req.expect_continue);
	assert_int_equal(parse("GET /vm/config?pretty=1 HTTP/1.1\r\n\r\n", &req, err), 0);
	assert_string_equal(req.path, "/vm/config");
	assert_int_equal(parse("BREW /pot HTTP/1.1\r\n\r\n", &req, err), 0);
	assert_int_equal(req.method, HTTP_OTHER);
	assert_string_equal(req.method_name, "BREW");
}

/* RFC 9112, 3.2.2: the absolute form is accepted and its authority ignored. */
static void absolute_form_targets_parse(void **state)
{
	struct http_request req;
	char err[256];
	assert_int_equal(parse("PUT http://localhost/actions HTTP/1.1\r\n\r\n", &req, err), 0);
	assert_string_equal(req.path, "/actions");
	assert_int_equal(parse("GET HTTP://localhost:80/vm/config?x=1 HTTP/1.1\r\n\r\n", &req,
			       err), 0);
	assert_string_equal(req.path, "/vm/config");
	assert_int_equal(parse("GET http://localhost HTTP/1.1\r\n\r\n", &req, err), 0);
	assert_string_equal(req.path, "/");
	assert_int_equal(parse("GET https://u@h?q HTTP/1.1\r\n\r\n", &req, err), 0);
	assert_string_equal(req.path, "/");
}

/* RFC 9112, 2.2: empty lines before the request line are skipped and counted in the
 * head, so the caller consumes them with the request. */
static void leading_empty_lines_are_skipped(void **state)
{
	struct http_request req;
	char err[256];
	const char *text = "\r\n\r\nGET /machine-config HTTP/1.1\r\n\r\n";
	assert_int_equal(parse(text, &req, err), 0);
	assert_string_equal(req.path, "/machine-config");
	assert_int_equal(req.head_len, strlen(text));
	assert_int_equal(parse("\r\n", &req, err), HTTP_INCOMPLETE);
	assert_int_equal(parse("\r\n\r", &req, err), HTTP_INCOMPLETE);
}

static void expect_refused(const char *text, int status, const char *message)
{
	struct http_request req;
	char err[256] = "";
	assert_int_equal(http_parse_head(text, strlen(text), &req, err, sizeof(err)), status);
	assert_string_equal(err, message);
}

static void hostile_heads_are_refused(void **state)
{
	expect_refused("GET / HTTP/1.1\nHost: x\n\n", 400,
		       "a line ends with a bare LF; HTTP lines end with CRLF");
	expect_refused("GET  / HTTP/1.1\r\n", 400,
		       "malformed request line: expected METHOD /path HTTP/1.1");
	expect_refused("GET / HTTP/1.1 extra\r\n", 400,
		       "malformed request line: expected METHOD /path HTTP/1.1");
	expect_refused("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400,
		       "control byte 0x16 in the request head");
	expect_refused("G(T / HTTP/1.1\r\n", 400, "malformed request line: the method is not a token");
	expect_refused("GET localhost/ HTTP/1.1\r\n", 400,
		       "request target must be a path starting with '/' (or http://host/path)");
	expect_refused("OPTIONS * HTTP/1.1\r\n", 400,
		       "request target must be a path starting with '/' (or http://host/path)");
	expect_refused("GET ftp://localhost/ HTTP/1.1\r\n", 400,
		       "request target: scheme 'ftp' is not served here (use a path, or "
		       "http://host/path)");
	expect_refused("\r\n\nGET / HTTP/1.1\r\n\r\n", 400,
		       "a line ends with a bare LF; HTTP lines end with CRLF");
	expect_refused("GET /\xc3\xa9 HTTP/1.1\r\n", 400,
		       "request target has a byte that is not printable ASCII");
	expect_refused("GET / HTTP/2.0\r\n", 505, "HTTP/2.0 is not supported (use HTTP/1.1)");
	expect_refused("GET / SPDY/3\r\n", 400, "malformed request line: expected METHOD /path HTTP/1.1");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400,
		       "Content-Length '-5' is not a whole number of bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n", 400,
		       "Content-Length '12abc' is not a whole number of bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400,
		       "Content-Length '' is not a whole number of bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400,
		       "Content-Length '99999999999999999999999' is not a whole number of bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", 413,
		       "body of 18446744073709551615 bytes is larger than the limit of 51200 bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413,
		       "body of 51201 bytes is larger than the limit of 51200 bytes");
	expect_refused("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
		       "conflicting Content-Length headers");
	expect_refused("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
		       "Transfer-Encoding is not supported; send Content-Length");
	expect_refused("PUT / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417,
		       "Expect: only 100-continue is supported");
	expect_refused("GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n", 400,
		       "obsolete line folding in the headers is not supported");
	expect_refused("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400,
		       "malformed header line: expected 'Name: value'");
	expect_refused("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400,
		       "malformed header line: the name is not a token");
	expect_refused("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400,
		       "a CR in the request head is not followed by LF");
}

static void limits_hold(void **state)
{
	char *big = malloc(HTTP_MAX_HEAD + 64);
	/* A target over the limit: 414 as soon as the line is too long. */
	int n = snprintf(big, HTTP_MAX_HEAD + 64, "GET /");
	memset(big + n, 'a', HTTP_MAX_TARGET + 40);
	big[n + HTTP_MAX_TARGET + 40] = '\0';
	expect_refused(big, 414, "request target longer than 1024 bytes");
	/* Headers over the size limit. */
	n = snprintf(big, HTTP_MAX_HEAD + 64, "GET / HTTP/1.1\r\nX: ");
	memset(big + n, 'b', HTTP_MAX_HEAD);
	big[HTTP_MAX_HEAD] = '\0';
	expect_refused(big, 431, "request line and headers longer than 8192 bytes");
	/* Too many header lines. */
	n = snprintf(big, HTTP_MAX_HEAD + 64, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += snprintf(big + n, (size_t)(HTTP_MAX_HEAD + 64 - n), "H%d: v\r\n", i);
	snprintf(big + n, (size_t)(HTTP_MAX_HEAD + 64 - n), "\r\n");
	expect_refused(big, 431, "more than 64 header lines");
	free(big);
}

static void responses_are_well_formed(void **state)
{
	size_t len;
	char *r = http_format_response(400, "application/json", "{\"fault_message\":\"x\"}", 21, false,
				       &len);
	const char *want = "HTTP/1.1 400 Bad Request\r\nServer: argon-vmm\r\nContent-Type: "
			   "application/json\r\nContent-Length: 21\r\n\r\n{\"fault_message\":\"x\"}";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(r, want, len);
	free(r);
	r = http_format_response(204, NULL, NULL, 0, true, &len);
	want = "HTTP/1.1 204 No Content\r\nServer: argon-vmm\r\nConnection: close\r\n\r\n";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(r, want, len);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(curl_put_parses),
		cmocka_unit_test(partial_heads_need_more),
		cmocka_unit_test(options_of_the_connection),
		cmocka_unit_test(absolute_form_targets_parse),
		cmocka_unit_test(leading_empty_lines_are_skipped),
		cmocka_unit_test(hostile_heads_are_refused),
		cmocka_unit_test(limits_hold),
		cmocka_unit_test(responses_are_well_formed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
