/* A small HTTP/1.1 request parser and response writer for the API socket: only what
 * Firecracker's API clients send (request line, headers, a Content-Length body), with
 * every limit written down here. Pure functions, no I/O: the server feeds them bytes.
 *
 * Limits (a request over one is answered with the status in brackets, then the
 * connection is closed, since its byte stream can no longer be trusted):
 *   request line and headers   HTTP_MAX_HEAD bytes, HTTP_MAX_HEADERS lines [431]
 *   request target             HTTP_MAX_TARGET bytes [414]
 *   body                       HTTP_MAX_BODY bytes (Firecracker's default) [413]
 *   Transfer-Encoding          not supported, send Content-Length [501]
 *   versions                   HTTP/1.0 and HTTP/1.1 [505]
 *   Expect                     only 100-continue [417]
 * Anything malformed (bare LF, control bytes, a bad Content-Length, obsolete line
 * folding, ...) is a 400 naming what was wrong. Accepted as RFC 9112 asks: the
 * absolute form of a target (http://host/path, 3.2.2; the authority is ignored, as
 * Host is) and empty lines before the request line (2.2). */
#ifndef ARGON_API_HTTP_H
#define ARGON_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_TARGET 1024
#define HTTP_MAX_BODY 51200
#define HTTP_MAX_METHOD 15

#define HTTP_INCOMPLETE (-1)

enum http_method { HTTP_GET, HTTP_PUT, HTTP_PATCH, HTTP_OTHER };

struct http_request {
	enum http_method method;
	char method_name[HTTP_MAX_METHOD + 1];
	char path[HTTP_MAX_TARGET + 1]; /* the target without its query */
	int minor_version;		/* HTTP/1.<minor> */
	size_t head_len;		/* request line + headers + the blank line */
	size_t content_length;
	bool keep_alive;
	bool expect_continue;
};

/* Parses the request head at the start of buf[0, len). Returns 0 with req filled
 * (the body is the content_length bytes after head_len), HTTP_INCOMPLETE when more
 * bytes are needed, or an error status (400, 413, 414, 417, 431, 501, 505) with a
 * one-line message in err. A malformed request line is reported as soon as its line
 * is complete, without waiting for the headers. */
int http_parse_head(const char *buf, size_t len, struct http_request *req, char *err,
		    size_t errlen);

/* "Bad Request" for 400, ...; "Unknown" for codes not in the table. */
const char *http_reason(int status);

/* Formats a response with body_len bytes of body (none for 204, whose headers then
 * carry no Content-Length). Returns a malloc'ed buffer (length in *out_len) or NULL. */
/* The same with extra header lines ("Name: value\r\n" each; NULL: none). */
char *http_format_response_with(int status, const char *content_type, const char *extra,
				const char *body, size_t body_len, bool close, size_t *out_len);
char *http_format_response(int status, const char *content_type, const char *body,
			   size_t body_len, bool close, size_t *out_len);

#endif
