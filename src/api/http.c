#include "api/http.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A line of the head: [start, end) without its CRLF. */
struct line {
	const char *start;
	size_t len;
};

struct head_state {
	struct http_request *req;
	char *err;
	size_t errlen;
	int nheaders;
	bool has_length;
};

static int fail(struct head_state *st, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct head_state *st, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, st->errlen, fmt, ap);
	va_end(ap);
	return status;
}

/* RFC 9110, 5.6.2: token characters. */
static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool line_equals(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int parse_method(struct head_state *st, const char *s, size_t len)
{
	static const char *const names[] = { [HTTP_GET] = "GET", [HTTP_PUT] = "PUT",
					     [HTTP_PATCH] = "PATCH" };
	if (len == 0 || len > HTTP_MAX_METHOD)
		return fail(st, 400, "malformed request line: expected METHOD /path HTTP/1.1");
	for (size_t i = 0; i < len; i++)
		if (!is_tchar(s[i]))
			return fail(st, 400, "malformed request line: the method is not a token");
	memcpy(st->req->method_name, s, len);
	st->req->method_name[len] = '\0';
	st->req->method = HTTP_OTHER;
	for (int m = HTTP_GET; m < HTTP_OTHER; m++)
		if (strcmp(st->req->method_name, names[m]) == 0)
			st->req->method = (enum http_method)m;
	return 0;
}

/* Length of "scheme://authority" at the start of an absolute-form target (RFC 9112,
 * 3.2.2), 0 when the target has none. */
static size_t absolute_prefix(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && s[i] != ':' && s[i] != '/')
		i++;
	if (i == 0 || i + 3 > len || memcmp(s + i, "://", 3) != 0)
		return 0;
	i += 3;
	while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#')
		i++;
	return i;
}

/* The origin form ("/path?query"), or the absolute form ("http://host/path?query"),
 * which RFC 9112, 3.2.2 says a server MUST accept; its authority is ignored, as Host
 * is (one socket serves one VMM). */
static int parse_target(struct head_state *st, const char *s, size_t len)
{
	if (len > HTTP_MAX_TARGET)
		return fail(st, 414, "request target longer than %d bytes", HTTP_MAX_TARGET);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return fail(st, 400, "request target has a byte that is not printable ASCII");
	size_t prefix = absolute_prefix(s, len);
	if (prefix) {
		size_t scheme = (size_t)((const char *)memchr(s, ':', len) - s);
		if (!line_equals(s, scheme, "http") && !line_equals(s, scheme, "https"))
			return fail(st, 400, "request target: scheme '%.*s' is not served here "
					     "(use a path, or http://host/path)", (int)scheme, s);
		s += prefix;
		len -= prefix;
	} else if (len == 0 || s[0] != '/') {
		return fail(st, 400, "request target must be a path starting with '/' (or "
				     "http://host/path)");
	}
	size_t path_len = 0;
	while (path_len < len && s[path_len] != '?' && s[path_len] != '#')
		path_len++;
	if (path_len == 0) /* "http://host" or "http://host?q": the root */
		snprintf(st->req->path, sizeof(st->req->path), "/");
	else
		snprintf(st->req->path, sizeof(st->req->path), "%.*s", (int)path_len, s);
	return 0;
}

static int parse_version(struct head_state *st, const char *s, size_t len)
{
	if (len == 8 && memcmp(s, "HTTP/1.", 7) == 0 && (s[7] == '0' || s[7] == '1')) {
		st->req->minor_version = s[7] - '0';
		return 0;
	}
	if (len == 8 && memcmp(s, "HTTP/", 5) == 0 && s[5] >= '0' && s[5] <= '9' && s[6] == '.' &&
	    s[7] >= '0' && s[7] <= '9')
		return fail(st, 505, "HTTP/%c.%c is not supported (use HTTP/1.1)", s[5], s[7]);
	return fail(st, 400, "malformed request line: expected METHOD /path HTTP/1.1");
}

/* "METHOD SP target SP HTTP/1.x", single spaces. */
static int parse_request_line(struct head_state *st, struct line l)
{
	const char *sp1 = memchr(l.start, ' ', l.len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', l.len - (size_t)(sp1 + 1 - l.start)) : NULL;
	if (!sp1 || !sp2 || memchr(sp2 + 1, ' ', l.len - (size_t)(sp2 + 1 - l.start)))
		return fail(st, 400, "malformed request line: expected METHOD /path HTTP/1.1");
	int rc = parse_method(st, l.start, (size_t)(sp1 - l.start));
	if (!rc)
		rc = parse_target(st, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (!rc)
		rc = parse_version(st, sp2 + 1, l.len - (size_t)(sp2 + 1 - l.start));
	return rc;
}

static int take_content_length(struct head_state *st, const char *v, size_t len)
{
	uint64_t n = 0;
	bool digits = len > 0 && len <= 20;
	for (size_t i = 0; digits && i < len; i++) {
		digits = v[i] >= '0' && v[i] <= '9';
		/* Saturates well above any limit: only "too big" matters past that. */
		n = n > (1ULL << 40) ? n : n * 10 + (uint64_t)(v[i] - '0');
	}
	if (!digits)
		return fail(st, 400, "Content-Length '%.*s' is not a whole number of bytes",
			    (int)(len > 32 ? 32 : len), v);
	if (st->has_length && n != st->req->content_length)
		return fail(st, 400, "conflicting Content-Length headers");
	if (n > HTTP_MAX_BODY)
		return fail(st, 413, "body of %.*s bytes is larger than the limit of %d bytes",
			    (int)len, v, HTTP_MAX_BODY);
	st->req->content_length = (size_t)n;
	st->has_length = true;
	return 0;
}

/* Connection: a comma-separated list of options. */
static void take_connection(struct head_state *st, const char *v, size_t len)
{
	while (len) {
		size_t n = 0;
		while (n < len && v[n] != ',')
			n++;
		size_t a = 0, b = n;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (line_equals(v + a, b - a, "close"))
			st->req->keep_alive = false;
		else if (line_equals(v + a, b - a, "keep-alive"))
			st->req->keep_alive = true;
		v += n < len ? n + 1 : n;
		len -= n < len ? n + 1 : n;
	}
}

static int take_header(struct head_state *st, const char *name, size_t nlen, const char *v,
		       size_t vlen)
{
	if (line_equals(name, nlen, "Content-Length"))
		return take_content_length(st, v, vlen);
	if (line_equals(name, nlen, "Transfer-Encoding"))
		return fail(st, 501, "Transfer-Encoding is not supported; send Content-Length");
	if (line_equals(name, nlen, "Connection"))
		take_connection(st, v, vlen);
	if (line_equals(name, nlen, "Expect")) {
		if (!line_equals(v, vlen, "100-continue"))
			return fail(st, 417, "Expect: only 100-continue is supported");
		st->req->expect_continue = true;
	}
	return 0;
}

static int parse_header_line(struct head_state *st, struct line l)
{
	if (++st->nheaders > HTTP_MAX_HEADERS)
		return fail(st, 431, "more than %d header lines", HTTP_MAX_HEADERS);
	if (l.start[0] == ' ' || l.start[0] == '\t')
		return fail(st, 400, "obsolete line folding in the headers is not supported");
	const char *colon = memchr(l.start, ':', l.len);
	if (!colon || colon == l.start)
		return fail(st, 400, "malformed header line: expected 'Name: value'");
	size_t nlen = (size_t)(colon - l.start);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar(l.start[i]))
			return fail(st, 400, "malformed header line: the name is not a token");
	const char *v = colon + 1, *end = l.start + l.len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return take_header(st, l.start, nlen, v, (size_t)(end - v));
}

/* One complete line: the request line, a header, or the blank line ending the head
 * (returns 1 then). */
static int take_line(struct head_state *st, struct line l, bool first)
{
	if (first)
		return parse_request_line(st, l);
	if (l.len == 0)
		return 1;
	return parse_header_line(st, l);
}

static int check_byte(struct head_state *st, const char *buf, size_t len, size_t i)
{
	unsigned char c = (unsigned char)buf[i];
	if (c == '\n' && (i == 0 || buf[i - 1] != '\r'))
		return fail(st, 400, "a line ends with a bare LF; HTTP lines end with CRLF");
	if (c == '\r' && i + 1 < len && buf[i + 1] != '\n')
		return fail(st, 400, "a CR in the request head is not followed by LF");
	if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
		return fail(st, 400, "control byte 0x%02x in the request head", c);
	return 0;
}

/* The head at buf[0, len): request line first. */
static int parse_head(struct head_state *st, const char *buf, size_t len)
{
	struct http_request *req = st->req;
	memset(req, 0, sizeof(*req));
	size_t scan = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD, line_start = 0;
	for (size_t i = 0; i < scan; i++) {
		int rc = check_byte(st, buf, len, i);
		if (rc)
			return rc;
		if (line_start == 0 && buf[i] != '\n' && i > HTTP_MAX_TARGET + HTTP_MAX_METHOD + 12)
			return fail(st, 414, "request target longer than %d bytes", HTTP_MAX_TARGET);
		if (buf[i] != '\n')
			continue;
		struct line l = { buf + line_start, i - 1 - line_start };
		rc = take_line(st, l, line_start == 0);
		if (rc > 1)
			return rc; /* an error status */
		if (line_start == 0) /* HTTP/1.1 keeps the connection open unless told */
			req->keep_alive = req->minor_version == 1;
		line_start = i + 1;
		if (rc == 1) {
			req->head_len = i + 1;
			return 0;
		}
	}
	if (len >= HTTP_MAX_HEAD)
		return fail(st, 431, "request line and headers longer than %d bytes", HTTP_MAX_HEAD);
	return HTTP_INCOMPLETE;
}

/* RFC 9112, 2.2: a server SHOULD ignore at least one empty line (CRLF) before the
 * request line (some clients send one after a body). Returns how many bytes of them
 * lead buf. */
static size_t leading_empty_lines(const char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len && buf[n] == '\r' && buf[n + 1] == '\n')
		n += 2;
	return n;
}

int http_parse_head(const char *buf, size_t len, struct http_request *req, char *err,
		    size_t errlen)
{
	struct head_state st = { .req = req, .err = err, .errlen = errlen };
	size_t skip = leading_empty_lines(buf, len);
	if (skip > HTTP_MAX_HEAD) {
		memset(req, 0, sizeof(*req));
		return fail(&st, 400, "more than %d empty lines before the request line",
			    HTTP_MAX_HEAD / 2);
	}
	int rc = parse_head(&st, buf + skip, len - skip);
	req->head_len += rc == 0 ? skip : 0;
	return rc;
}

const char *http_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 100, "Continue" },
		{ 200, "OK" },
		{ 204, "No Content" },
		{ 400, "Bad Request" },
		{ 404, "Not Found" },
		{ 408, "Request Timeout" },
		{ 413, "Payload Too Large" },
		{ 414, "URI Too Long" },
		{ 417, "Expectation Failed" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
	};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

char *http_format_response(int status, const char *content_type, const char *body,
			   size_t body_len, bool close, size_t *out_len)
{
	return http_format_response_with(status, content_type, NULL, body, body_len, close,
					 out_len);
}

char *http_format_response_with(int status, const char *content_type, const char *extra,
				const char *body, size_t body_len, bool close, size_t *out_len)
{
	char head[320];
	int n;
	extra = extra ? extra : "";
	if (status == 204)
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 204 No Content\r\nServer: argon-vmm\r\n%s%s\r\n", extra,
			     close ? "Connection: close\r\n" : "");
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: argon-vmm\r\nContent-Type: %s\r\n"
			     "Content-Length: %zu\r\n%s%s\r\n",
			     status, http_reason(status), content_type, body_len, extra,
			     close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return NULL;
	size_t blen = status == 204 ? 0 : body_len;
	char *out = malloc((size_t)n + blen);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)n);
	if (blen)
		memcpy(out + n, body, blen);
	*out_len = (size_t)n + blen;
	return out;
}
