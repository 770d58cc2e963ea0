/* virtio-vsock, the host side: the unix socket at uds_path that host processes
 * connect to (Firecracker's "CONNECT <port>\n" handshake), the "<uds_path>_<port>"
 * sockets guest connections reach, and the byte relay on each. Every socket is
 * non-blocking and written with MSG_NOSIGNAL: a host that goes away costs one
 * stream, never the VMM. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/vsock.h"

#define VSOCK_LISTEN_BACKLOG 128

static int uds_addr(const char *path, struct sockaddr_un *a, socklen_t *len)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int uds_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

/* A socket file already at path: replaced when nothing listens on it any more (its
 * process died), an error when something does. Logs its own errors. */
static int remove_stale(const char *path, const struct sockaddr_un *a, socklen_t alen)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("vsock: %s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	int fd = uds_socket();
	if (fd < 0)
		return fd;
	int err = connect(fd, (const struct sockaddr *)a, alen) < 0 ? -errno : 0;
	close(fd);
	if (err == -ECONNREFUSED) {
		if (unlink(path) < 0 && errno != ENOENT) {
			log_error("vsock: cannot remove stale socket %s: %m", path);
			return -errno;
		}
		log_info("vsock: replaced stale socket %s", path);
		return 0;
	}
	if (!err || err == -EAGAIN) { /* accepted, or a full backlog: someone listens */
		log_error("vsock: %s is in use by a live process", path);
		return -EADDRINUSE;
	}
	log_error("vsock: %s: %s", path, strerror(-err));
	return err;
}

static int bind_listen(int fd, const char *path, const struct sockaddr_un *a, socklen_t alen)
{
	int err = bind(fd, (const struct sockaddr *)a, alen) < 0 ? -errno : 0;
	if (err == -EADDRINUSE) {
		err = remove_stale(path, a, alen);
		if (err)
			return err; /* logged */
		err = bind(fd, (const struct sockaddr *)a, alen) < 0 ? -errno : 0;
	}
	if (!err && chmod(path, 0600) < 0)
		err = -errno;
	if (!err && listen(fd, VSOCK_LISTEN_BACKLOG) < 0)
		err = -errno;
	if (err)
		log_error("vsock: cannot listen on %s: %s", path, strerror(-err));
	return err;
}

int vsock_uds_listen(const char *path, int *out_fd)
{
	struct sockaddr_un a;
	socklen_t alen;
	if (uds_addr(path, &a, &alen) < 0) {
		log_error("vsock: uds_path %s: longer than a unix socket path (%zu bytes)", path,
			  sizeof(a.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	int fd = uds_socket();
	if (fd < 0) {
		log_error("vsock: socket for %s: %s", path, strerror(-fd));
		return fd;
	}
	/* bind() gives the file the socket inode's mode less the umask: 0600 from the
	 * first moment, so no other user can connect in a window before a chmod. */
	int err = fchmod(fd, 0600) < 0 ? -errno : 0;
	if (err)
		log_error("vsock: socket for %s: fchmod: %s", path, strerror(-err));
	else
		err = bind_listen(fd, path, &a, alen);
	if (err) {
		close(fd);
		return err;
	}
	*out_fd = fd;
	return 0;
}

int vsock_uds_connect_port(const char *uds_path, uint32_t port)
{
	struct sockaddr_un a;
	socklen_t alen;
	char path[sizeof(a.sun_path)];
	int n = snprintf(path, sizeof(path), "%s_%u", uds_path, port);
	if (n < 0 || (size_t)n >= sizeof(path) || uds_addr(path, &a, &alen) < 0)
		return -ENAMETOOLONG;
	int fd = uds_socket();
	if (fd < 0)
		return fd;
	/* A non-blocking unix connect completes at once or fails; EAGAIN (the listener's
	 * backlog is full) is a refusal like any other. */
	if (connect(fd, (const struct sockaddr *)&a, alen) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int vsock_uds_read_cmd(int fd, char *buf, uint8_t *len)
{
	char peek[VSOCK_CMD_MAX];
	size_t room = VSOCK_CMD_MAX - *len;
	ssize_t n = recv(fd, peek, room, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	/* Consume up to the newline only: what follows is the stream's first data. */
	const char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	ssize_t got = recv(fd, buf + *len, take, MSG_DONTWAIT);
	if (got != (ssize_t)take)
		return got < 0 ? -errno : -EIO;
	*len = (uint8_t)(*len + take);
	if (nl)
		return 1;
	return *len == VSOCK_CMD_MAX ? -EMSGSIZE : 0;
}

ssize_t vsock_uds_send(int fd, const struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	ssize_t r;
	do
		r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t vsock_uds_recv(int fd, const struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	ssize_t r;
	do
		r = recvmsg(fd, &m, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Out of file descriptors or memory: stop accepting for a timer period rather than
 * spin on a listener that stays readable. */
static void pause_listener(struct vsock *vs, int err)
{
	log_warn("vsock: accept on %s: %s; retrying shortly", vs->uds_path, strerror(err));
	struct epoll_event e = { .events = 0, .data.u64 = VSOCK_TAG_LISTEN };
	epoll_ctl(vs->epfd, EPOLL_CTL_MOD, vs->listen_fd, &e);
	vs->listen_paused = true;
	vsock_timer_update(vs);
}

void vsock_accept_all(struct vsock *vs)
{
	for (;;) {
		int fd = accept4(vs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				pause_listener(vs, errno);
			return; /* EAGAIN, or a connection aborted meanwhile */
		}
		struct vsock_conn *c = vsock_conn_new(vs, fd, VSOCK_CONN_HOST_CMD);
		if (!c) {
			vs->stats.refused++;
			log_debug("vsock: %u connections open; host connection refused", vs->nconns);
			close(fd);
			continue;
		}
		vsock_conn_set_deadline(vs, c, VSOCK_CMD_TIMEOUT_MS);
		vsock_conn_sync(vs, c);
	}
}

/* The host's first line names the guest port: the guest then gets a REQUEST from a
 * fresh host port (5.10.6.5), and the host its "OK" only when the guest accepts. */
void vsock_host_cmd(struct vsock *vs, struct vsock_conn *c)
{
	int r = vsock_uds_read_cmd(c->fd, c->cmd, &c->cmd_len);
	if (r == 0)
		return;
	uint32_t port = 0;
	if (r < 0 || vsock_parse_connect(c->cmd, c->cmd_len, &port) < 0) {
		if (r > 0)
			log_warn("vsock: %s: a host client sent something other than "
				 "\"CONNECT <port>\\n\"; closing it", vs->uds_path);
		vsock_conn_free(vs, c);
		return;
	}
	vsock_conn_hash(vs, c, vsock_alloc_port(vs, port), port);
	c->state = VSOCK_CONN_HOST_CONNECTING;
	vsock_conn_set_deadline(vs, c, VSOCK_CONNECT_TIMEOUT_MS);
	vsock_conn_want(vs, c, VSOCK_P_REQUEST);
	vsock_conn_sync(vs, c);
}

bool vsock_conn_after_drain(struct vsock *vs, struct vsock_conn *c)
{
	if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) && !c->host_wr_shut && c->fd >= 0) {
		shutdown(c->fd, SHUT_WR); /* the host reads EOF */
		c->host_wr_shut = true;
	}
	if (c->peer_shut != VSOCK_SHUTDOWN_BOTH)
		return false;
	/* 5.10.6.5: the guest shut both ways and all it sent is delivered: answer RST. */
	vsock_conn_reset(vs, c, "the guest closed the stream");
	return true;
}

void vsock_flush_to_host(struct vsock *vs, struct vsock_conn *c)
{
	struct iovec iov[2];
	int n = vsock_ring_iov(&c->ring, iov);
	if (n) {
		ssize_t w = vsock_uds_send(c->fd, iov, n);
		if (w < 0 && w != -EAGAIN) {
			vsock_conn_host_gone(vs, c);
			return;
		}
		if (w > 0) {
			vsock_ring_consume(&c->ring, (uint32_t)w);
			c->fwd_cnt += (uint32_t)w;
		}
	}
	if (!c->ring.len && vsock_conn_after_drain(vs, c))
		return;
	vsock_conn_credit_check(vs, c);
	vsock_conn_sync(vs, c);
}

void vsock_conn_on_events(struct vsock *vs, struct vsock_conn *c, uint32_t events)
{
	if (c->state == VSOCK_CONN_HOST_CMD) {
		vsock_host_cmd(vs, c); /* a hang-up reads as EOF there */
		return;
	}
	uint64_t tag = vsock_conn_tag(c);
	if (events & EPOLLOUT) {
		vsock_flush_to_host(vs, c);
		c = vsock_conn_by_tag(vs, tag);
		if (!c || c->fd < 0)
			return;
	}
	if (events & EPOLLIN) {
		/* Read later, straight into an rx buffer, when the guest has one. */
		vsock_conn_want(vs, c, VSOCK_P_DATA);
		vsock_conn_sync(vs, c);
	}
	if (events & (EPOLLHUP | EPOLLERR))
		vsock_conn_host_gone(vs, c);
}
