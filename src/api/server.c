#include "api/server.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "api/http.h"
#include "common/log.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vmm_state.h"

#define IN_CAP (HTTP_MAX_HEAD + HTTP_MAX_BODY)
#define MS (1000000ULL)

struct conn {
	struct api_server *srv;
	int slot, fd;
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	uint64_t request_start_ns, last_io_ns;
	bool close_after; /* close once out is sent */
	bool peer_done;	  /* the client sent EOF */
	bool continue_sent;
	uint32_t events; /* the epoll interest now set */
	char in[IN_CAP];
};

struct api_server {
	struct vmm *vmm;
	char *path;
	ino_t ino;
	int listen_fd;
	struct event_loop *loop;
	pthread_t thread;
	bool thread_started;
	struct conn *conns[API_MAX_CONNS];
	struct api_endpoint_stats endpoints[METRICS_MAX_ENDPOINTS];
};

static void conn_close(struct conn *c)
{
	event_loop_remove(c->srv->loop, c->fd);
	close(c->fd);
	c->srv->conns[c->slot] = NULL;
	free(c->out);
	free(c);
}

/* Sends what is queued; false when the connection broke. */
static bool flush_out(struct conn *c)
{
	while (c->out && c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->out_off += (size_t)n;
		c->last_io_ns = timings_now();
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return true;
}

static void queue(struct conn *c, char *bytes, size_t len)
{
	if (!bytes) {
		c->close_after = true; /* out of memory: nothing sensible to send */
		return;
	}
	c->out = bytes;
	c->out_len = len;
	c->out_off = 0;
}

static void queue_response(struct conn *c, struct api_response *resp, bool close)
{
	size_t len = 0;
	const char *body = resp->body ? resp->body : "";
	const char *extra = resp->deprecation ? "Deprecation: true\r\n" : NULL;
	char *bytes = http_format_response_with(resp->status, resp->content_type, extra, body,
						strlen(body), close, &len);
	queue(c, bytes, len);
	c->close_after |= close;
	free(resp->body);
	resp->body = NULL;
}

/* A request the transport refused (malformed, too big, too slow): answered, counted
 * as "other", then the connection closes, since its byte stream cannot be trusted. */
static void refuse(struct conn *c, int status, const char *msg)
{
	struct api_response resp = { 0 };
	api_fault(&resp, status, "%s", msg);
	struct metrics *m = &c->srv->vmm->metrics;
	if (m->endpoints && m->nendpoints) {
		__atomic_add_fetch(&m->endpoints[m->nendpoints - 1].requests, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&m->endpoints[m->nendpoints - 1].errors, 1, __ATOMIC_RELAXED);
	}
	log_debug("API: refused a request: %d %s", status, msg);
	queue_response(c, &resp, true);
	c->in_len = 0;
}

static void serve(struct conn *c, const struct http_request *req)
{
	struct api_response resp = { .content_type = "application/json" };
	uint64_t t0 = timings_now();
	api_route(c->srv->vmm, req, c->in + req->head_len, req->content_length, &resp);
	log_debug("API: %s %s -> %d (%llu us)", req->method_name, req->path, resp.status,
		  (unsigned long long)(timings_now() - t0) / 1000);
	queue_response(c, &resp, !req->keep_alive);
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
	c->continue_sent = false;
	c->request_start_ns = c->in_len ? timings_now() : 0;
}

/* Empty lines before a request (RFC 9112, 2.2: some clients send a CRLF after a
 * body) are dropped here, so a connection holding nothing else is idle, not a request
 * that has been arriving for too long. */
static void drop_empty_lines(struct conn *c)
{
	size_t n = 0;
	while (n + 1 < c->in_len && c->in[n] == '\r' && c->in[n + 1] == '\n')
		n += 2;
	if (n)
		consume(c, n);
}

/* Answers the next complete request in the buffer, if any. Returns true when one
 * was answered (more may follow), false when the buffer holds no complete request. */
static bool process(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (c->out || c->close_after || !c->in_len)
		return false;
	drop_empty_lines(c);
	if (!c->in_len)
		return false;
	struct http_request req;
	char err[256];
	if (!c->request_start_ns)
		c->request_start_ns = timings_now();
	int rc = http_parse_head(c->in, c->in_len, &req, err, sizeof(err));
	if (rc == HTTP_INCOMPLETE)
		return false;
	if (rc > 0) {
		refuse(c, rc, err);
		return true;
	}
	size_t total = req.head_len + req.content_length;
	if (c->in_len < total) {
		if (req.expect_continue && !c->continue_sent) {
			c->continue_sent = true;
			queue(c, strdup(cont), sizeof(cont) - 1);
		}
		return false;
	}
	serve(c, &req);
	consume(c, total);
	return true;
}

/* Reads what the client sent; false when the connection is gone. */
static bool read_in(struct conn *c)
{
	if (c->in_len == IN_CAP || c->peer_done)
		return true;
	ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
	if (n == 0)
		c->peer_done = true;
	c->in_len += (size_t)n;
	c->last_io_ns = timings_now();
	return true;
}

/* Watches for what the connection waits on; false when it should close now. With
 * more complete requests buffered, EPOLLOUT (ready at once) brings it back soon. */
static bool rearm(struct conn *c, bool more)
{
	uint32_t want = EPOLLIN | EPOLLRDHUP;
	if (c->out || (more && !c->close_after))
		want = EPOLLOUT;
	else if (c->close_after || c->peer_done)
		return false;
	if (want == c->events)
		return true; /* a syscall saved per request */
	c->events = want;
	return event_loop_modify(c->srv->loop, c->fd, want) == 0;
}

/* Pipelined requests answered per wakeup before others get their turn. */
#define PIPELINE_BURST 32

static void on_conn(void *opaque, uint32_t events)
{
	struct conn *c = opaque;
	bool ok = !(events & EPOLLERR), more = false;
	if (ok && (events & EPOLLOUT))
		ok = flush_out(c);
	if (ok && !c->out && (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)))
		ok = read_in(c);
	for (int i = 0; ok && !c->out && i < PIPELINE_BURST; i++) {
		more = process(c);
		if (!more)
			break;
		ok = flush_out(c);
	}
	if (!ok || !rearm(c, more))
		conn_close(c);
}

static void refuse_connection(struct api_server *s, int fd)
{
	struct api_response resp = { 0 };
	api_fault(&resp, 503, "too many open API connections (at most %d); close one and retry",
		  API_MAX_CONNS);
	size_t len = 0;
	char *bytes = http_format_response(503, resp.content_type, resp.body,
					   resp.body ? strlen(resp.body) : 0, true, &len);
	if (bytes && send(fd, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("API: refused connection: %s", strerror(errno));
	free(bytes);
	free(resp.body);
	close(fd);
	__atomic_add_fetch(&s->vmm->metrics.api_connections_refused, 1, __ATOMIC_RELAXED);
}

static void add_conn(struct api_server *s, int fd)
{
	int slot = 0;
	while (slot < API_MAX_CONNS && s->conns[slot])
		slot++;
	struct conn *c = slot < API_MAX_CONNS ? malloc(sizeof(*c)) : NULL;
	if (!c) {
		refuse_connection(s, fd);
		return;
	}
	memset(c, 0, offsetof(struct conn, in)); /* the input buffer needs no clearing */
	c->srv = s;
	c->slot = slot;
	c->fd = fd;
	c->last_io_ns = timings_now();
	c->events = EPOLLIN | EPOLLRDHUP;
	if (event_loop_add(s->loop, fd, c->events, on_conn, c)) {
		free(c);
		refuse_connection(s, fd);
		return;
	}
	s->conns[slot] = c;
}

static void on_accept(void *opaque, uint32_t events)
{
	struct api_server *s = opaque;
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("API: accept: %s", strerror(errno));
			return;
		}
		add_conn(s, fd);
	}
}

/* Timeouts: slow requests get 408, stuck responses and idle connections are closed. */
static void on_tick(void *opaque, uint32_t events)
{
	struct api_server *s = opaque;
	uint64_t now = timings_now();
	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct conn *c = s->conns[i];
		if (!c)
			continue;
		if (c->out && now - c->last_io_ns > API_WRITE_TIMEOUT_MS * MS) {
			conn_close(c);
		} else if (!c->out && c->request_start_ns &&
			   now - c->request_start_ns > API_REQUEST_TIMEOUT_MS * MS) {
			char msg[128];
			snprintf(msg, sizeof(msg), "the request was not complete within %d ms",
				 API_REQUEST_TIMEOUT_MS);
			refuse(c, 408, msg);
			if (!flush_out(c) || !rearm(c, false))
				conn_close(c);
		} else if (!c->out && !c->in_len && now - c->last_io_ns > API_IDLE_TIMEOUT_MS * MS) {
			conn_close(c);
		}
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	pthread_setname_np(pthread_self(), "api");
	if (event_loop_run(s->loop) < 0)
		log_error("API: event loop failed; the API stops answering");
	return NULL;
}

/* A socket file already at path: stale (nobody accepts) is removed; anything else
 * is refused. Returns 0 or -errno. */
static int clear_stale(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("--api-sock %s: exists and is not a socket; not touching it", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		log_error("--api-sock %s: another process is serving this socket", path);
		return -EADDRINUSE;
	}
	log_info("--api-sock %s: removing the socket a dead process left", path);
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int open_socket(struct api_server *s, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("--api-sock %s: longer than %zu bytes", path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int err = clear_stale(path, &addr);
	if (err)
		return err;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* The socket inode's mode becomes the file's: 0600 from the start, no window. */
	if (s->listen_fd < 0 || fchmod(s->listen_fd, 0600) < 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0600) < 0 || listen(s->listen_fd, 64) < 0) {
		err = -errno;
		log_error("--api-sock %s: %s", path, strerror(errno));
		return err;
	}
	struct stat st;
	s->ino = stat(path, &st) == 0 ? st.st_ino : 0;
	return 0;
}

static void server_free(struct api_server *s)
{
	for (int i = 0; i < API_MAX_CONNS; i++)
		if (s->conns[i]) {
			flush_out(s->conns[i]); /* best effort, never waits */
			conn_close(s->conns[i]);
		}
	struct stat st;
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		if (stat(s->path, &st) == 0 && st.st_ino == s->ino)
			unlink(s->path);
	}
	event_loop_destroy(s->loop);
	free(s->path);
	free(s);
}

static int start_loop(struct api_server *s)
{
	int err = event_loop_create(&s->loop);
	if (!err)
		err = event_loop_add(s->loop, s->listen_fd, EPOLLIN, on_accept, s);
	if (!err) {
		int t = event_loop_add_timer(s->loop, API_TICK_MS * MS, on_tick, s);
		err = t < 0 ? t : 0;
	}
	if (!err)
		err = -pthread_create(&s->thread, NULL, api_thread, s);
	s->thread_started = err == 0;
	return err;
}

int api_server_start(struct vmm *v, const char *path, struct api_server **out)
{
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return -ENOMEM;
	}
	s->vmm = v;
	s->listen_fd = -1;
	int err = open_socket(s, path);
	pthread_mutex_lock(&v->lock);
	v->metrics.nendpoints = api_endpoint_names(s->endpoints, METRICS_MAX_ENDPOINTS);
	v->metrics.endpoints = s->endpoints;
	pthread_mutex_unlock(&v->lock);
	if (!err && (err = start_loop(s)) != 0)
		log_error("API: cannot start its thread: %s", strerror(-err));
	if (err) {
		api_server_stop(s);
		return err;
	}
	log_info("API socket %s ready %.3f ms after process start", path,
		 (double)(timings_now() - v->process_start) / 1e6);
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		event_loop_stop(s->loop);
		pthread_join(s->thread, NULL);
	}
	pthread_mutex_lock(&s->vmm->lock);
	s->vmm->metrics.endpoints = NULL;
	s->vmm->metrics.nendpoints = 0;
	pthread_mutex_unlock(&s->vmm->lock);
	server_free(s);
}
