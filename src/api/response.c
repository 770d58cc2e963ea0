/* What every handler needs: fault bodies, JSON bodies, the request body as an
 * object, and the checks on file paths a client hands over. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"

/* A message made from client bytes may not be valid UTF-8: fall back to ASCII. */
static json_t *message_string(char *msg)
{
	json_t *s = json_string(msg);
	if (s)
		return s;
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	return json_string(msg);
}

int api_fault(struct api_response *r, int status, const char *fmt, ...)
{
	char msg[API_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(r->body);
	r->status = status;
	r->content_type = "application/json";
	json_t *obj = json_pack("{s:o}", "fault_message", message_string(msg));
	r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	return -1;
}

void api_json(struct api_response *r, json_t *obj)
{
	free(r->body);
	r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	r->status = r->body ? 200 : 500;
	r->content_type = "application/json";
	if (!r->body)
		api_fault(r, 500, "out of memory");
}

void api_no_content(struct api_response *r)
{
	free(r->body);
	r->body = NULL;
	r->status = 204;
}

json_t *api_body_object(const struct api_request *req, struct api_response *r)
{
	json_error_t e;
	json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		api_fault(r, 400, "invalid JSON body: line %d column %d: %s", e.line, e.column, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		api_fault(r, 400, "the body must be a JSON object");
		return NULL;
	}
	return root;
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

/* The directory path would be created in must exist. */
static int check_parent(struct api_response *r, const char *field, const char *path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return 0; /* the working directory */
	*(slash == dir ? slash + 1 : slash) = '\0';
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return api_fault(r, 400, "%s: %s: the directory %s does not exist", field, path, dir);
	return 0;
}

static int check_existing(struct api_response *r, const char *field, const char *path,
			  const struct stat *st, enum api_path_kind kind, bool read_only)
{
	bool is_output = kind == API_PATH_OUTPUT, is_socket = kind == API_PATH_NEW_SOCKET;
	if (is_socket && !S_ISSOCK(st->st_mode))
		return api_fault(r, 400, "%s: %s exists and is not a socket", field, path);
	if (is_output && !S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode))
		return api_fault(r, 400, "%s: %s is not a regular file or FIFO", field, path);
	if (!is_output && !is_socket && !S_ISREG(st->st_mode))
		return api_fault(r, 400, "%s: %s is not a regular file", field, path);
	int mode = is_socket ? 0 : is_output || (kind == API_PATH_DRIVE && !read_only)
				     ? R_OK | W_OK : R_OK;
	if (mode && access(path, mode) < 0)
		return api_fault(r, 400, "%s: %s: %s", field, path, strerror(errno));
	return 0;
}

int api_check_path(struct api_response *r, const char *field, const char *path,
		   enum api_path_kind kind, bool read_only)
{
	if (!path[0])
		return api_fault(r, 400, "%s: the path is empty", field);
	if (strlen(path) >= PATH_MAX)
		return api_fault(r, 400, "%s: the path is longer than %d bytes", field, PATH_MAX - 1);
	if (has_dotdot(path))
		return api_fault(r, 400, "%s: %s: '..' is not allowed in paths", field, path);
	struct stat st;
	if (stat(path, &st) == 0)
		return check_existing(r, field, path, &st, kind, read_only);
	if (errno != ENOENT || kind == API_PATH_READ || kind == API_PATH_DRIVE)
		return api_fault(r, 400, "%s: %s: %s", field, path, strerror(errno));
	return check_parent(r, field, path);
}
