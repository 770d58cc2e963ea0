/* virtio-vsock against a fake driver and real unix sockets in a temporary directory:
 * hostile headers, streams opened from both sides (the host's CONNECT/OK handshake,
 * guest REQUESTs to "<uds>_P"), data both ways, credit on both sides, RSTs, orderly
 * and forced closes, and the bounds on connections and memory. The test is the guest
 * (it builds packets on the tx queue and posts rx buffers) and the host (it holds the
 * other ends of the unix sockets); the device runs when the test pumps the loop. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"
#include "common/util.h"
#include "devices/vsock.h"
#include "virtio_test_driver.h"
#include "vmm/config.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"

#define CID 3
#define RXQ VSOCK_QUEUE_RX
#define TXQ VSOCK_QUEUE_TX
#define RX_BUF 4096 /* the size Linux posts */
#define TX_DATA_MAX (64 * 1024)
#define FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX) | \
		  (1ULL << VIRTIO_F_INDIRECT_DESC))
#define WAIT_MS 2000

struct fixture {
	struct vtd t;
	struct vsock *vs;
	char dir[64];
	char uds[96];
	uint8_t *rx_hva[VSOCK_QUEUE_SIZE];
	uint64_t rx_gpa[VSOCK_QUEUE_SIZE];
	uint32_t rx_outstanding;
	uint8_t *tx_hdr, *tx_data;
	uint64_t tx_hdr_gpa, tx_data_gpa;
};

/* The guest's view of one stream. */
struct gstream {
	uint32_t gport, hport;
	uint32_t buf_alloc, fwd_cnt;	   /* what the guest advertises */
	uint32_t tx_cnt;		   /* payload the guest sent */
	uint32_t peer_buf_alloc, peer_fwd; /* the device's credit, from its packets */
};

static struct fixture *fixture_new(void)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/argon-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->uds, sizeof(f->uds), "%s/v.sock", f->dir);
	return f;
}

static void fixture_start(struct fixture *f)
{
	struct vsock_config cfg = { .guest_cid = CID, .uds_path = f->uds };
	assert_int_equal(vsock_backend_create(&cfg, &f->vs), 0);
	assert_int_equal(vtd_init(&f->t, vsock_device_ops(), f->vs, 32, FEATURES, 0), 0);
	assert_int_equal(vsock_attach(f->vs, &f->t.dev), 0);
	for (int i = 0; i < VSOCK_QUEUE_SIZE; i++)
		f->rx_gpa[i] = vtd_alloc(&f->t, RX_BUF, (void **)&f->rx_hva[i]);
	f->tx_hdr_gpa = vtd_alloc(&f->t, VSOCK_HDR_SIZE, (void **)&f->tx_hdr);
	f->tx_data_gpa = vtd_alloc(&f->t, TX_DATA_MAX, (void **)&f->tx_data);
}

static int setup(void **state)
{
	struct fixture *f = fixture_new();
	fixture_start(f);
	*state = f;
	return 0;
}

static void remove_dir(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->vs) {
		vtd_destroy(&f->t);
		vsock_backend_destroy(f->vs);
	}
	remove_dir(f->dir);
	free(f);
	return 0;
}

/* Runs the device's share of the event loop for about ms. */
static void pump(struct fixture *f, int ms)
{
	struct timespec end, now;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_nsec += ms * 1000000L;
	end.tv_sec += end.tv_nsec / 1000000000L;
	end.tv_nsec %= 1000000000L;
	do {
		event_loop_run_once(f->t.vm.loop, 5);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
}

static void post_rx(struct fixture *f, uint32_t n)
{
	for (uint32_t i = 0; i < n && f->rx_outstanding < VSOCK_QUEUE_SIZE; i++) {
		uint16_t d = f->t.q[RXQ].next_desc;
		struct vtd_buf b = { f->rx_gpa[d], RX_BUF, true };
		assert_int_equal(vtd_add_chain(&f->t, RXQ, &b, 1), d);
		f->rx_outstanding++;
	}
	vtd_kick(&f->t, RXQ);
}

static void fill_rx(struct fixture *f)
{
	post_rx(f, VSOCK_QUEUE_SIZE - f->rx_outstanding);
}

/* The next rx packet within timeout_ms: 1 with its header and up to cap payload
 * bytes, 0 when none came. */
static int rx_packet(struct fixture *f, struct vsock_hdr *h, void *data, uint32_t cap,
		     int timeout_ms)
{
	uint32_t id, len;
	if (!vtd_get_used(&f->t, RXQ, &id, &len)) {
		if (timeout_ms <= 0 || !vtd_wait_used(&f->t, RXQ, timeout_ms))
			return 0;
		assert_int_equal(vtd_get_used(&f->t, RXQ, &id, &len), 1);
	}
	assert_true(id < VSOCK_QUEUE_SIZE);
	f->rx_outstanding--;
	assert_true(len >= VSOCK_HDR_SIZE);
	vsock_hdr_decode(f->rx_hva[id], h);
	assert_int_equal(len, VSOCK_HDR_SIZE + h->len);
	assert_int_equal(h->src_cid, VSOCK_HOST_CID);
	assert_int_equal(h->dst_cid, CID);
	assert_int_equal(h->type, VSOCK_TYPE_STREAM);
	if (data)
		memcpy(data, f->rx_hva[id] + VSOCK_HDR_SIZE, MIN(h->len, cap));
	return 1;
}

/* Expects the next packet to be op on stream s; takes its credit fields. */
static void expect_packet(struct fixture *f, struct gstream *s, uint16_t op, struct vsock_hdr *out)
{
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, NULL, 0, WAIT_MS), 1);
	if (h.op != op)
		fail_msg("expected op %u, got op %u (flags %u, len %u)", op, h.op, h.flags, h.len);
	assert_int_equal(h.dst_port, s->gport);
	if (s->hport)
		assert_int_equal(h.src_port, s->hport);
	s->hport = h.src_port;
	s->peer_buf_alloc = h.buf_alloc;
	s->peer_fwd = h.fwd_cnt;
	if (out)
		*out = h;
}

static void no_packet(struct fixture *f, int ms)
{
	pump(f, ms);
	struct vsock_hdr h;
	if (rx_packet(f, &h, NULL, 0, 0))
		fail_msg("unexpected packet op %u flags %u len %u", h.op, h.flags, h.len);
}

/* Runs the device's timer as if ms had passed. */
static void expire_after(struct fixture *f, uint64_t ms)
{
	pthread_mutex_lock(&f->t.dev.lock);
	vsock_expire(f->vs, timings_now() + ms * 1000000ULL);
	vsock_rx_process(f->vs);
	pthread_mutex_unlock(&f->t.dev.lock);
}

/* Puts one chain (header, then payload in a second descriptor as Linux does) on tx
 * and kicks; returns whether the device consumed it. */
static bool tx_hdr(struct fixture *f, const struct vsock_hdr *h, const void *data, uint32_t len)
{
	assert_true(len <= TX_DATA_MAX);
	vsock_hdr_encode(h, f->tx_hdr);
	if (len)
		memcpy(f->tx_data, data, len);
	struct vtd_buf bufs[2] = { { f->tx_hdr_gpa, VSOCK_HDR_SIZE, false },
				   { f->tx_data_gpa, len, false } };
	vtd_add_chain(&f->t, TXQ, bufs, len ? 2 : 1);
	vtd_kick(&f->t, TXQ);
	uint32_t id, ulen;
	return vtd_get_used(&f->t, TXQ, &id, &ulen) == 1;
}

static void tx(struct fixture *f, struct gstream *s, uint16_t op, uint32_t flags,
	       const void *data, uint32_t len)
{
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = s->gport,
		.dst_port = s->hport, .len = len, .type = VSOCK_TYPE_STREAM, .op = op,
		.flags = flags, .buf_alloc = s->buf_alloc, .fwd_cnt = s->fwd_cnt,
	};
	assert_true(tx_hdr(f, &h, data, len));
	if (op == VSOCK_OP_RW)
		s->tx_cnt += len;
}

static int uds_listen_port(struct fixture *f, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", f->uds, port);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 2048), 0);
	return fd;
}

static int uds_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void host_write(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads exactly len bytes from the host end, pumping the device while waiting.
 * Returns the bytes read before EOF or the timeout. */
static size_t host_read(struct fixture *f, int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	for (int waited = 0; got < len && waited < timeout_ms;) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		pump(f, 5);
		waited += 5;
	}
	return got;
}

/* True when the host end reads EOF (or a reset) within timeout_ms. */
static bool host_sees_eof(struct fixture *f, int fd, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 5) {
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		if (n > 0)
			fail_msg("unexpected byte 0x%02x before EOF", (unsigned char)c);
		pump(f, 5);
	}
	return false;
}

static struct vsock_conn *only_conn(struct fixture *f)
{
	assert_int_equal(f->vs->nconns, 1);
	for (int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (f->vs->conns[i])
			return f->vs->conns[i];
	return NULL;
}

/* A guest-initiated stream to host port 1234: REQUEST, RESPONSE, accepted by the
 * test's listener. Returns the host end. */
static int guest_connect(struct fixture *f, struct gstream *s, int *listener)
{
	*listener = uds_listen_port(f, 1234);
	*s = (struct gstream){ .gport = 5000, .hport = 1234, .buf_alloc = 64 * 1024 };
	fill_rx(f);
	tx(f, s, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_packet(f, s, VSOCK_OP_RESPONSE, NULL);
	int fd = accept4(*listener, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* A host-initiated stream to guest port 52: CONNECT, REQUEST, RESPONSE, OK. */
static int host_connect(struct fixture *f, struct gstream *s)
{
	int fd = uds_connect(f->uds);
	assert_true(fd >= 0);
	host_write(fd, "CONNECT 52\n", 11);
	*s = (struct gstream){ .gport = 52, .buf_alloc = 64 * 1024 };
	fill_rx(f);
	struct vsock_hdr h;
	expect_packet(f, s, VSOCK_OP_REQUEST, &h);
	assert_true(h.src_port >= VSOCK_EPHEMERAL_BASE);
	tx(f, s, VSOCK_OP_RESPONSE, 0, NULL, 0);
	char line[32], want[32];
	int n = snprintf(want, sizeof(want), "OK %u\n", s->hport);
	assert_int_equal(host_read(f, fd, line, (size_t)n, WAIT_MS), n);
	assert_memory_equal(line, want, (size_t)n);
	return fd;
}

/* ---- the wire format ---- */

static void header_layout_is_little_endian(void **state)
{
	struct vsock_hdr h = {
		.src_cid = 0x0102030405060708ULL, .dst_cid = 2, .src_port = 0x11223344,
		.dst_port = 0x55667788, .len = 0x99aabbcc, .type = 1, .op = 0x0506,
		.flags = 0x01020304, .buf_alloc = 0x0a0b0c0d, .fwd_cnt = 0xdeadbeef,
	};
	uint8_t raw[VSOCK_HDR_SIZE];
	vsock_hdr_encode(&h, raw);
	assert_int_equal(raw[0], 0x08);
	assert_int_equal(raw[7], 0x01);
	assert_int_equal(raw[8], 2);
	assert_int_equal(raw[16], 0x44);
	assert_int_equal(raw[24], 0xcc);
	assert_int_equal(raw[28], 1);
	assert_int_equal(raw[30], 0x06);
	assert_int_equal(raw[31], 0x05);
	assert_int_equal(raw[43], 0xde);
	struct vsock_hdr back;
	vsock_hdr_decode(raw, &back);
	assert_memory_equal(&back, &h, sizeof(h));
}

static enum vsock_verdict check(struct vsock_hdr h, uint32_t room)
{
	const char *why = NULL;
	enum vsock_verdict v = vsock_hdr_check(&h, room, CID, &why);
	assert_true(v == VSOCK_PKT_OK || why != NULL);
	return v;
}

static void hostile_headers_are_classified(void **state)
{
	const struct vsock_hdr ok = { .src_cid = CID, .dst_cid = 2, .type = 1,
				      .op = VSOCK_OP_RW, .len = 10 };
	assert_int_equal(check(ok, 10), VSOCK_PKT_OK);
	struct vsock_hdr h = ok;
	h.src_cid = 4; /* another guest's cid: spoofed */
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h.src_cid = CID | (1ULL << 32); /* reserved upper half */
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h = ok;
	h.dst_cid = 1;
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h.dst_cid = 2 | (1ULL << 40);
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h = ok;
	h.len = 11; /* past the chain */
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h.len = UINT32_MAX;
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	h = ok;
	h.type = 2; /* seqpacket: not offered */
	assert_int_equal(check(h, 10), VSOCK_PKT_RST);
	h.op = VSOCK_OP_RST; /* ... but an RST is never answered */
	assert_int_equal(check(h, 10), VSOCK_PKT_DROP);
	uint16_t bad_ops[] = { VSOCK_OP_INVALID, 8, 0x100, 0xffff };
	for (size_t i = 0; i < ARRAY_SIZE(bad_ops); i++) {
		h = ok;
		h.op = bad_ops[i];
		assert_int_equal(check(h, 10), VSOCK_PKT_RST);
	}
}

static void connect_lines_are_parsed_strictly(void **state)
{
	struct { const char *line; int ok; uint32_t port; } cases[] = {
		{ "CONNECT 52\n", 1, 52 },
		{ "CONNECT 0\n", 1, 0 },
		{ "CONNECT 4294967295\n", 1, UINT32_MAX },
		{ "CONNECT 52\r\n", 1, 52 },
		{ "CONNECT 4294967296\n", 0, 0 },
		{ "CONNECT 99999999999\n", 0, 0 },
		{ "CONNECT \n", 0, 0 },
		{ "CONNECT\n", 0, 0 },
		{ "CONNECT 5x\n", 0, 0 },
		{ "CONNECT +5\n", 0, 0 },
		{ "CONNECT -5\n", 0, 0 },
		{ "CONNECT  5\n", 0, 0 },
		{ "connect 5\n", 0, 0 },
		{ "CONNECT 52", 0, 0 },
		{ "CONNECT 5\n2\n", 0, 0 },
		{ "\n", 0, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t port = 7;
		int r = vsock_parse_connect(cases[i].line, (uint32_t)strlen(cases[i].line), &port);
		if ((r == 0) != cases[i].ok)
			fail_msg("\"%s\": got %d", cases[i].line, r);
		if (cases[i].ok)
			assert_int_equal(port, cases[i].port);
	}
	uint32_t port;
	assert_int_equal(vsock_parse_connect("CONNECT 1\n", 0, &port), -EINVAL);
}

/* ---- configuration and the listening socket ---- */

static void reserved_cids_and_long_paths_are_refused(void **state)
{
	struct vsock *vs = NULL;
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	uint32_t cids[] = { 0, 1, 2, UINT32_MAX };
	for (size_t i = 0; i < ARRAY_SIZE(cids); i++) {
		struct vsock_config cfg = { .guest_cid = cids[i], .uds_path = "/tmp/x" };
		assert_int_equal(vsock_backend_create(&cfg, &vs), -EINVAL);
	}
	struct vsock_config none = { .guest_cid = 3 };
	assert_int_equal(vsock_backend_create(&none, &vs), -EINVAL);
	struct vsock_config empty = { .guest_cid = 3, .uds_path = "" };
	assert_int_equal(vsock_backend_create(&empty, &vs), -EINVAL);
	struct vsock_config long_path = { .guest_cid = 3, .uds_path = path };
	assert_int_equal(vsock_backend_create(&long_path, &vs), -ENAMETOOLONG);
}

static void config_space_is_the_guest_cid(void **state)
{
	struct fixture *f = *state;
	const struct virtio_device_ops *ops = vsock_device_ops();
	assert_int_equal(ops->device_id, VIRTIO_ID_VSOCK);
	assert_int_equal(ops->num_queues, 3);
	assert_int_equal(ops->config_size, 8);
	assert_int_equal(ops->features(&f->t.dev), 1ULL << VSOCK_F_STREAM);
	uint8_t cfg[8];
	memset(cfg, 0xff, sizeof(cfg));
	ops->read_config(&f->t.dev, 0, cfg, 8);
	uint8_t want[8] = { CID, 0, 0, 0, 0, 0, 0, 0 };
	assert_memory_equal(cfg, want, 8);
	uint8_t b = 0xff;
	ops->read_config(&f->t.dev, 7, &b, 1);
	assert_int_equal(b, 0);
}

static void listener_is_private(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(stat(f->uds, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void stale_socket_is_replaced_live_one_refused(void **state)
{
	struct fixture *f = fixture_new();
	*state = f;
	/* A socket file whose process is gone: bound, then closed without unlink. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, f->uds, strlen(f->uds) + 1);
	assert_int_equal(bind(stale, (struct sockaddr *)&a, sizeof(a)), 0);
	close(stale);
	fixture_start(f);
	int fd = uds_connect(f->uds);
	assert_true(fd >= 0); /* the device's listener answers now */
	close(fd);
	/* A second device on the same path finds it live. */
	struct vsock_config cfg = { .guest_cid = 4, .uds_path = f->uds };
	struct vsock *other = NULL;
	assert_int_equal(vsock_backend_create(&cfg, &other), -EADDRINUSE);
	/* A regular file is never removed. */
	char file[160];
	snprintf(file, sizeof(file), "%s/file", f->dir);
	int ffd = open(file, O_CREAT | O_WRONLY, 0600);
	close(ffd);
	cfg.uds_path = file;
	assert_int_equal(vsock_backend_create(&cfg, &other), -EEXIST);
	assert_int_equal(access(file, F_OK), 0);
}

/* ---- guest -> host streams ---- */

static void guest_connects_and_data_flows_both_ways(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	assert_int_equal(s.peer_buf_alloc, VSOCK_BUF_ALLOC);
	tx(f, &s, VSOCK_OP_RW, 0, "hello", 5);
	char buf[16];
	assert_int_equal(host_read(f, fd, buf, 5, WAIT_MS), 5);
	assert_memory_equal(buf, "hello", 5);
	host_write(fd, "world!", 6);
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 6);
	assert_int_equal(h.src_port, 1234);
	assert_int_equal(h.dst_port, 5000);
	assert_int_equal(h.fwd_cnt, 5); /* the host has read the guest's 5 bytes */
	assert_memory_equal(buf, "world!", 6);
	/* The guest closes: SHUTDOWN both ways; the host reads EOF; the device answers
	 * RST (5.10.6.5) and forgets the stream. */
	tx(f, &s, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
	assert_true(host_sees_eof(f, fd, WAIT_MS));
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_int_equal(f->vs->nconns, 0);
	close(fd);
	close(listener);
}

static void guest_request_without_listener_gets_rst(void **state)
{
	struct fixture *f = *state;
	struct gstream s = { .gport = 6000, .hport = 4321, .buf_alloc = 4096 };
	fill_rx(f);
	tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_int_equal(f->vs->nconns, 0);
	assert_int_equal(f->vs->stats.refused, 1);
}

static void guest_half_close_keeps_the_other_direction(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	tx(f, &s, VSOCK_OP_RW, 0, "ping", 4);
	tx(f, &s, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	char buf[8];
	assert_int_equal(host_read(f, fd, buf, 4, WAIT_MS), 4);
	assert_true(host_sees_eof(f, fd, WAIT_MS)); /* shut for writing only */
	host_write(fd, "pong", 4);
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_memory_equal(buf, "pong", 4);
	/* Now the host closes: the guest hears SHUTDOWN both ways, answers RST. */
	close(fd);
	expect_packet(f, &s, VSOCK_OP_SHUTDOWN, &h);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	tx(f, &s, VSOCK_OP_RST, 0, NULL, 0);
	assert_int_equal(f->vs->nconns, 0);
	close(listener);
}

/* ---- host -> guest streams ---- */

static void host_connects_and_data_flows_both_ways(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int fd = host_connect(f, &s);
	host_write(fd, "from host", 9);
	char buf[16];
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 9);
	assert_memory_equal(buf, "from host", 9);
	tx(f, &s, VSOCK_OP_RW, 0, "from guest", 10);
	assert_int_equal(host_read(f, fd, buf, 10, WAIT_MS), 10);
	assert_memory_equal(buf, "from guest", 10);
	/* Host half-close: the guest hears SEND only and may still send. */
	shutdown(fd, SHUT_WR);
	expect_packet(f, &s, VSOCK_OP_SHUTDOWN, &h);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	tx(f, &s, VSOCK_OP_RW, 0, "bye", 3);
	assert_int_equal(host_read(f, fd, buf, 3, WAIT_MS), 3);
	/* The guest closes; the device answers RST and the host reads EOF. */
	tx(f, &s, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, NULL, 0);
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_true(host_sees_eof(f, fd, WAIT_MS));
	assert_int_equal(f->vs->nconns, 0);
	close(fd);
}

static void data_after_the_connect_line_is_kept(void **state)
{
	struct fixture *f = *state;
	int fd = uds_connect(f->uds);
	host_write(fd, "CONNECT 77\nearly bytes", 22);
	struct gstream s = { .gport = 77, .buf_alloc = 4096 };
	fill_rx(f);
	expect_packet(f, &s, VSOCK_OP_REQUEST, NULL);
	tx(f, &s, VSOCK_OP_RESPONSE, 0, NULL, 0);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "OK %u\n", s.hport);
	assert_int_equal(host_read(f, fd, buf, (size_t)n, WAIT_MS), n);
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 11);
	assert_memory_equal(buf, "early bytes", 11);
	close(fd);
}

static void guest_refusal_closes_the_host_side(void **state)
{
	struct fixture *f = *state;
	int fd = uds_connect(f->uds);
	host_write(fd, "CONNECT 99\n", 11);
	struct gstream s = { .gport = 99 };
	fill_rx(f);
	expect_packet(f, &s, VSOCK_OP_REQUEST, NULL);
	tx(f, &s, VSOCK_OP_RST, 0, NULL, 0);
	assert_true(host_sees_eof(f, fd, WAIT_MS)); /* and no "OK" */
	assert_int_equal(f->vs->nconns, 0);
	close(fd);
}

static void unanswered_request_times_out_with_rst(void **state)
{
	struct fixture *f = *state;
	int fd = uds_connect(f->uds);
	host_write(fd, "CONNECT 99\n", 11);
	struct gstream s = { .gport = 99 };
	fill_rx(f);
	expect_packet(f, &s, VSOCK_OP_REQUEST, NULL);
	/* The device's own timer, in real time: the one slow test. */
	assert_true(host_sees_eof(f, fd, VSOCK_CONNECT_TIMEOUT_MS + 1000));
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_int_equal(f->vs->nconns, 0);
	close(fd);
}

static void bad_or_missing_connect_lines_are_dropped(void **state)
{
	struct fixture *f = *state;
	int bad = uds_connect(f->uds);
	host_write(bad, "HELLO 52\n", 9);
	assert_true(host_sees_eof(f, bad, WAIT_MS));
	int endless = uds_connect(f->uds);
	char junk[VSOCK_CMD_MAX + 8];
	memset(junk, '7', sizeof(junk));
	host_write(endless, junk, sizeof(junk));
	assert_true(host_sees_eof(f, endless, WAIT_MS));
	int silent = uds_connect(f->uds);
	pump(f, 20);
	assert_int_equal(f->vs->nconns, 1);
	expire_after(f, VSOCK_CMD_TIMEOUT_MS + 1);
	assert_true(host_sees_eof(f, silent, WAIT_MS));
	assert_int_equal(f->vs->nconns, 0);
	no_packet(f, 20); /* the guest never heard of any of them */
	close(bad);
	close(endless);
	close(silent);
}

static void host_close_then_guest_silence_times_out(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int fd = host_connect(f, &s);
	close(fd);
	struct vsock_hdr h;
	expect_packet(f, &s, VSOCK_OP_SHUTDOWN, &h);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	assert_int_equal(only_conn(f)->state, VSOCK_CONN_CLOSING);
	expire_after(f, VSOCK_SHUTDOWN_TIMEOUT_MS + 1);
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_int_equal(f->vs->nconns, 0);
}

/* ---- credit, both ways ---- */

static void guest_credit_limits_what_the_host_sends(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int fd = host_connect(f, &s);
	/* The guest re-advertises a tiny buffer. */
	s.buf_alloc = 8;
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	char data[100];
	for (int i = 0; i < 100; i++)
		data[i] = (char)i;
	host_write(fd, data, sizeof(data));
	char buf[RX_BUF];
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 8);
	assert_memory_equal(buf, data, 8);
	/* Out of credit: one CREDIT_REQUEST, then silence; the rest stays in the host
	 * socket, not in the device. */
	expect_packet(f, &s, VSOCK_OP_CREDIT_REQUEST, NULL);
	no_packet(f, 50);
	assert_int_equal(only_conn(f)->events & EPOLLIN, 0);
	/* The guest reads its 8 bytes: 8 more come. */
	s.fwd_cnt = 8;
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 8);
	assert_memory_equal(buf, data + 8, 8);
	expect_packet(f, &s, VSOCK_OP_CREDIT_REQUEST, NULL);
	/* A guest whose fwd_cnt runs ahead of what it was sent gets nothing either. */
	s.fwd_cnt = 1000;
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	no_packet(f, 50);
	close(fd);
}

/* Sends guest data while the device's advertised credit allows; returns the total. */
static uint32_t guest_fill_credit(struct fixture *f, struct gstream *s)
{
	static uint8_t chunk[TX_DATA_MAX];
	memset(chunk, 'g', sizeof(chunk));
	for (int rounds = 0; rounds < 1000; rounds++) {
		struct vsock_hdr h;
		while (rx_packet(f, &h, NULL, 0, 0)) {
			s->peer_fwd = h.fwd_cnt;
			s->peer_buf_alloc = h.buf_alloc;
		}
		fill_rx(f);
		uint32_t credit = s->peer_buf_alloc - (s->tx_cnt - s->peer_fwd);
		if (!credit)
			return s->tx_cnt;
		tx(f, s, VSOCK_OP_RW, 0, chunk, MIN(credit, (uint32_t)sizeof(chunk)));
	}
	fail_msg("credit never ran out");
	return 0;
}

static void host_that_never_reads_stops_the_guest_by_credit(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	uint32_t sent = guest_fill_credit(f, &s);
	/* The device holds exactly its advertised buffer; the socket holds the rest. */
	struct vsock_conn *c = only_conn(f);
	assert_int_equal(c->ring.len, VSOCK_BUF_ALLOC);
	assert_int_equal(sent - s.peer_fwd, VSOCK_BUF_ALLOC);
	/* Asking changes nothing while the host does not read. */
	tx(f, &s, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
	struct vsock_hdr h;
	expect_packet(f, &s, VSOCK_OP_CREDIT_UPDATE, &h);
	assert_int_equal(s.peer_buf_alloc - (s.tx_cnt - s.peer_fwd), 0);
	/* The host drains everything: the guest learns its credit is back. */
	static uint8_t sink[512 * 1024];
	assert_true(sent <= sizeof(sink));
	assert_int_equal(host_read(f, fd, sink, sent, 5000), sent);
	for (uint32_t i = 0; i < sent; i++)
		if (sink[i] != 'g')
			fail_msg("byte %u corrupted", i);
	bool updated = false;
	while (rx_packet(f, &h, NULL, 0, 200)) {
		updated |= h.op == VSOCK_OP_CREDIT_UPDATE;
		s.peer_fwd = h.fwd_cnt;
	}
	/* Updates come while the guest's view of its credit is low (5.10.6.3 leaves
	 * the when to us); an asked-for one is exact. */
	assert_true(updated);
	assert_true(s.peer_buf_alloc - (sent - s.peer_fwd) >= VSOCK_CREDIT_LOW);
	tx(f, &s, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
	expect_packet(f, &s, VSOCK_OP_CREDIT_UPDATE, &h);
	assert_int_equal(h.fwd_cnt, sent);
	assert_int_equal(c->ring.len, 0);
	assert_null(c->ring.buf); /* idle streams hold no buffer */
	close(fd);
	close(listener);
}

static void guest_overrunning_credit_is_reset(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	guest_fill_credit(f, &s);
	tx(f, &s, VSOCK_OP_RW, 0, "x", 1);
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	assert_int_equal(f->vs->stats.credit_violations, 1);
	/* The host sees the stream end (after what it had not read). */
	static uint8_t sink[1 << 20];
	host_read(f, fd, sink, sizeof(sink), 500);
	assert_true(host_sees_eof(f, fd, WAIT_MS));
	no_packet(f, 20);
	assert_int_equal(f->vs->nconns, 0);
	close(fd);
	close(listener);
}

/* 5.10.6.3: the credit is what the device advertised, not what it could take. The
 * device is given no rx buffers after its RESPONSE, so it cannot tell the guest that
 * the host read anything: 256 KiB is all the guest may send, however fast the host
 * reads. */
static void credit_is_what_was_advertised_not_what_was_read(void **state)
{
	struct fixture *f = *state;
	int listener = uds_listen_port(f, 1234);
	struct gstream s = { .gport = 5000, .hport = 1234, .buf_alloc = 64 * 1024 };
	post_rx(f, 1);
	tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_packet(f, &s, VSOCK_OP_RESPONSE, NULL);
	assert_int_equal(s.peer_buf_alloc, VSOCK_BUF_ALLOC);
	int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	static uint8_t chunk[TX_DATA_MAX], sink[VSOCK_BUF_ALLOC];
	memset(chunk, 'c', sizeof(chunk));
	for (uint32_t sent = 0; sent < VSOCK_BUF_ALLOC; sent += sizeof(chunk)) {
		tx(f, &s, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		/* The host keeps up: the device's ring never fills. */
		assert_int_equal(host_read(f, fd, sink, sizeof(chunk), WAIT_MS), sizeof(chunk));
	}
	assert_int_equal(f->vs->stats.credit_violations, 0);
	tx(f, &s, VSOCK_OP_RW, 0, chunk, 1); /* one byte past the advertised credit */
	assert_int_equal(f->vs->stats.credit_violations, 1);
	assert_true(host_sees_eof(f, fd, WAIT_MS));
	post_rx(f, 1);
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	close(fd);
	close(listener);
}

/* A REQUEST repeated on a stream, before and after its RESPONSE went out, is dropped:
 * the RESPONSE still comes and the stream carries data. */
static void a_repeated_request_neither_resets_nor_loses_the_response(void **state)
{
	struct fixture *f = *state;
	int listener = uds_listen_port(f, 1234);
	struct gstream s = { .gport = 5000, .hport = 1234, .buf_alloc = 64 * 1024 };
	tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0); /* no rx buffer yet: RESPONSE owed */
	tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0);
	fill_rx(f);
	expect_packet(f, &s, VSOCK_OP_RESPONSE, NULL);
	tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0);
	tx(f, &s, VSOCK_OP_RESPONSE, 0, NULL, 0);
	no_packet(f, 20);
	int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	tx(f, &s, VSOCK_OP_RW, 0, "still here", 10);
	char buf[10];
	assert_int_equal(host_read(f, fd, buf, sizeof(buf), WAIT_MS), sizeof(buf));
	assert_memory_equal(buf, "still here", sizeof(buf));
	assert_int_equal(f->vs->nconns, 1);
	assert_int_equal(f->vs->stats.dropped, 3);
	close(fd);
	close(listener);
}

/* ---- batching: one writev per stream per tx pass, one readv for many rx buffers,
 * one interrupt per queue per pass ---- */

/* Puts n RW packets of len bytes on tx (header and payload in two descriptors, each
 * packet in its own guest memory) without kicking; packet i, byte j is i * 7 + j.
 * Returns the bytes, concatenated in *expect. */
static uint32_t queue_rw(struct fixture *f, struct gstream *s, int n, uint32_t len,
			 uint8_t *expect)
{
	for (int i = 0; i < n; i++) {
		uint8_t *hdr, *data;
		uint64_t hdr_gpa = vtd_alloc(&f->t, VSOCK_HDR_SIZE, (void **)&hdr);
		uint64_t data_gpa = vtd_alloc(&f->t, len, (void **)&data);
		for (uint32_t j = 0; j < len; j++)
			data[j] = expect[(uint32_t)i * len + j] = (uint8_t)(i * 7 + j);
		struct vsock_hdr h = {
			.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = s->gport,
			.dst_port = s->hport, .len = len, .type = VSOCK_TYPE_STREAM,
			.op = VSOCK_OP_RW, .buf_alloc = s->buf_alloc, .fwd_cnt = s->fwd_cnt,
		};
		vsock_hdr_encode(&h, hdr);
		struct vtd_buf bufs[2] = { { hdr_gpa, VSOCK_HDR_SIZE, false },
					   { data_gpa, len, false } };
		vtd_add_chain(&f->t, TXQ, bufs, 2);
		s->tx_cnt += len;
	}
	return (uint32_t)n * len;
}

/* Gives stream c a new host end: the device's side of a socketpair of type. */
static int swap_host_end(struct fixture *f, struct vsock_conn *c, int type)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	if (c->in_epoll)
		epoll_ctl(f->vs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = sp[0];
	c->in_epoll = false;
	vsock_conn_sync(f->vs, c);
	return sp[1];
}

static uint32_t used_count(struct fixture *f, uint32_t q)
{
	uint32_t id, len, n = 0;
	while (vtd_get_used(&f->t, q, &id, &len))
		n++;
	return n;
}

static void guest_packets_of_one_kick_go_out_in_one_writev(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	/* SOCK_SEQPACKET keeps every sendmsg a record of its own: records are syscalls. */
	int host = swap_host_end(f, only_conn(f), SOCK_SEQPACKET);
	static uint8_t expect[100 * 1000], got[100 * 1000];
	uint64_t sends = f->vs->stats.host_sends;
	uint32_t total = queue_rw(f, &s, 20, 1000, expect);
	vtd_kick(&f->t, TXQ);
	assert_int_equal(used_count(f, TXQ), 20); /* every chain back once written */
	assert_int_equal(f->vs->stats.host_sends - sends, 1);
	assert_int_equal(recv(host, got, sizeof(got), MSG_DONTWAIT), total);
	assert_memory_equal(got, expect, total);
	/* 100 packets: the writev takes at most VSOCK_BATCH_IOV of them. */
	sends = f->vs->stats.host_sends;
	total = queue_rw(f, &s, 100, 1000, expect);
	vtd_kick(&f->t, TXQ);
	assert_int_equal(used_count(f, TXQ), 100);
	assert_int_equal(f->vs->stats.host_sends - sends, 2);
	assert_int_equal(recv(host, got, sizeof(got), MSG_DONTWAIT), VSOCK_BATCH_IOV * 1000);
	assert_int_equal(recv(host, got + VSOCK_BATCH_IOV * 1000, sizeof(got), MSG_DONTWAIT),
			 total - VSOCK_BATCH_IOV * 1000);
	assert_memory_equal(got, expect, total);
	/* A SHUTDOWN in the same kick comes after the data it follows. */
	queue_rw(f, &s, 3, 1000, expect);
	tx(f, &s, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	assert_int_equal(recv(host, got, sizeof(got), MSG_DONTWAIT), 3000);
	assert_memory_equal(got, expect, 3000);
	assert_int_equal(recv(host, got, sizeof(got), MSG_DONTWAIT), 0); /* then EOF */
	close(host);
	close(fd);
	close(listener);
}

static void partial_writev_leaves_the_rest_in_the_ring(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int listener, fd = guest_connect(f, &s, &listener);
	struct vsock_conn *c = only_conn(f);
	int host = swap_host_end(f, c, SOCK_STREAM);
	int small = 4096;
	assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	static uint8_t expect[48 * 4000], got[48 * 4000];
	uint32_t total = queue_rw(f, &s, 48, 4000, expect);
	vtd_kick(&f->t, TXQ);
	assert_int_equal(used_count(f, TXQ), 48);
	assert_true(c->ring.len > 0 && c->ring.len < total); /* the socket took part */
	assert_int_equal(c->fwd_cnt + c->ring.len, total);
	assert_int_equal(host_read(f, host, got, total, WAIT_MS), total);
	assert_memory_equal(got, expect, total);
	assert_int_equal(c->ring.len, 0);
	assert_int_equal(c->fwd_cnt, total);
	close(host);
	close(fd);
	close(listener);
}

/* Takes n rx packets of stream s; their payloads go to out. Returns the bytes. */
static uint32_t take_rw(struct fixture *f, struct gstream *s, int n, uint8_t *out)
{
	uint32_t got = 0;
	for (int i = 0; i < n; i++) {
		struct vsock_hdr h;
		assert_int_equal(rx_packet(f, &h, out + got, RX_BUF, WAIT_MS), 1);
		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_int_equal(h.dst_port, s->gport);
		got += h.len;
	}
	return got;
}

static void host_data_fills_many_rx_buffers_in_one_read(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int fd = host_connect(f, &s);
	const uint32_t per = RX_BUF - VSOCK_HDR_SIZE;
	/* The guest's credit: two and a half buffers. */
	s.buf_alloc = 2 * per + per / 2;
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	static uint8_t data[40000], got[40000 + RX_BUF];
	for (uint32_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + i / 251);
	uint64_t recvs = f->vs->stats.host_recvs;
	host_write(fd, data, sizeof(data));
	uint32_t n = take_rw(f, &s, 3, got);
	assert_int_equal(n, s.buf_alloc); /* exactly the credit, in order */
	assert_memory_equal(got, data, n);
	assert_int_equal(f->vs->stats.host_recvs - recvs, 1);
	expect_packet(f, &s, VSOCK_OP_CREDIT_REQUEST, NULL);
	/* Credit for everything: the rest in ceil(rest / per) packets, at most two reads
	 * (VSOCK_RX_BATCH chains each). */
	recvs = f->vs->stats.host_recvs;
	s.fwd_cnt = n;
	s.buf_alloc = 1 << 20;
	fill_rx(f);
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	uint32_t rest = sizeof(data) - n;
	assert_int_equal(take_rw(f, &s, (int)((rest + per - 1) / per), got + n), rest);
	assert_memory_equal(got, data, sizeof(data));
	assert_true(f->vs->stats.host_recvs - recvs <= 3); /* the last sees EAGAIN */
	no_packet(f, 20);
	close(fd);
}

static int setup_no_event_idx(void **state)
{
	struct fixture *f = fixture_new();
	struct vsock_config cfg = { .guest_cid = CID, .uds_path = f->uds };
	assert_int_equal(vsock_backend_create(&cfg, &f->vs), 0);
	assert_int_equal(vtd_init(&f->t, vsock_device_ops(), f->vs, 32,
				  FEATURES & ~(1ULL << VIRTIO_F_EVENT_IDX), 0), 0);
	assert_int_equal(vsock_attach(f->vs, &f->t.dev), 0);
	for (int i = 0; i < VSOCK_QUEUE_SIZE; i++)
		f->rx_gpa[i] = vtd_alloc(&f->t, RX_BUF, (void **)&f->rx_hva[i]);
	f->tx_hdr_gpa = vtd_alloc(&f->t, VSOCK_HDR_SIZE, (void **)&f->tx_hdr);
	f->tx_data_gpa = vtd_alloc(&f->t, TX_DATA_MAX, (void **)&f->tx_data);
	*state = f;
	return 0;
}

/* Without EVENT_IDX every notify interrupts: a pass that completes many tx and rx
 * chains still raises one interrupt (virtio-mmio has one per device). */
static void one_interrupt_per_pass(void **state)
{
	struct fixture *f = *state;
	struct gstream s;
	int fd = host_connect(f, &s);
	s.buf_alloc = 1 << 20;
	tx(f, &s, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	pump(f, 20);
	used_count(f, RXQ);
	vtd_interrupts(&f->t);
	static uint8_t data[30000], expect[10 * 1000];
	memset(data, 'h', sizeof(data));
	host_write(fd, data, sizeof(data)); /* 8 rx packets */
	queue_rw(f, &s, 10, 1000, expect);
	vsock_schedule(f->vs); /* the tx work and the host data in one pass */
	vsock_poll(f->vs);
	assert_int_equal(used_count(f, TXQ), 10);
	assert_true(used_count(f, RXQ) >= 8);
	assert_int_equal(vtd_interrupts(&f->t), 1);
	close(fd);
}

/* ---- rx without buffers, and hostile packets ---- */

static void no_rx_buffers_means_no_reading(void **state)
{
	struct fixture *f = *state;
	int fd = uds_connect(f->uds);
	host_write(fd, "CONNECT 52\n", 11);
	struct gstream s = { .gport = 52, .buf_alloc = 4096 };
	post_rx(f, 1); /* one buffer: the REQUEST takes it */
	expect_packet(f, &s, VSOCK_OP_REQUEST, NULL);
	tx(f, &s, VSOCK_OP_RESPONSE, 0, NULL, 0);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "OK %u\n", s.hport);
	assert_int_equal(host_read(f, fd, buf, (size_t)n, WAIT_MS), n);
	assert_int_equal(f->rx_outstanding, 0);
	host_write(fd, "waiting", 7);
	pump(f, 30);
	struct vsock_conn *c = only_conn(f);
	assert_true(c->pending & VSOCK_P_DATA);
	assert_int_equal(c->events & EPOLLIN, 0); /* not polled: the loop sleeps */
	assert_int_equal(event_loop_run_once(f->t.vm.loop, 20), 0);
	post_rx(f, 1);
	struct vsock_hdr h;
	assert_int_equal(rx_packet(f, &h, buf, sizeof(buf), WAIT_MS), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 7);
	assert_memory_equal(buf, "waiting", 7);
	close(fd);
}

static void hostile_packets_get_rst_or_nothing(void **state)
{
	struct fixture *f = *state;
	fill_rx(f);
	struct vsock_hdr base = { .src_cid = CID, .dst_cid = 2, .src_port = 9, .dst_port = 10,
				  .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW };
	struct vsock_hdr h = base;
	assert_true(tx_hdr(f, &h, "data", 4)); /* RW on no stream */
	struct gstream s = { .gport = 9, .hport = 10 };
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	h.op = 42;
	assert_true(tx_hdr(f, &h, NULL, 0));
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	h = base;
	h.type = 3;
	assert_true(tx_hdr(f, &h, NULL, 0));
	expect_packet(f, &s, VSOCK_OP_RST, NULL);
	h = base;
	h.src_cid = 7;
	assert_true(tx_hdr(f, &h, NULL, 0));
	h = base;
	h.dst_cid = 3;
	assert_true(tx_hdr(f, &h, NULL, 0));
	h = base;
	h.len = 5000; /* more than the chain holds */
	assert_true(tx_hdr(f, &h, "x", 1));
	h = base;
	h.op = VSOCK_OP_RST; /* RST on no stream: silence */
	assert_true(tx_hdr(f, &h, NULL, 0));
	/* A chain shorter than a header. */
	struct vtd_buf shorty = { f->tx_hdr_gpa, 20, false };
	vtd_add_chain(&f->t, TXQ, &shorty, 1);
	vtd_kick(&f->t, TXQ);
	/* A chain with only a writable buffer. */
	struct vtd_buf wr = { f->tx_data_gpa, 64, true };
	vtd_add_chain(&f->t, TXQ, &wr, 1);
	vtd_kick(&f->t, TXQ);
	no_packet(f, 20);
	assert_int_equal(f->vs->stats.dropped, 5);
	assert_int_equal(f->vs->nconns, 0);
}

static void rst_replies_are_bounded(void **state)
{
	struct fixture *f = *state;
	/* No rx buffers, and a flood of RW on no stream: each owes an RST. */
	struct vsock_hdr h = { .src_cid = CID, .dst_cid = 2, .src_port = 9, .dst_port = 10,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_CREDIT_UPDATE };
	int consumed = 0;
	for (int i = 0; i < VSOCK_RST_QUEUE + 10; i++) {
		h.src_port = 100 + (uint32_t)i;
		consumed += tx_hdr(f, &h, NULL, 0);
	}
	/* tx stops when the replies it would owe have nowhere to go (5.10.6.1). */
	assert_int_equal(consumed, VSOCK_RST_QUEUE);
	assert_int_equal(f->vs->rst_count, VSOCK_RST_QUEUE);
	assert_true(f->vs->tx_stalled);
	/* rx buffers arrive: the RSTs go out and tx resumes. */
	fill_rx(f);
	int rsts = 0;
	struct vsock_hdr r;
	while (rx_packet(f, &r, NULL, 0, 200)) {
		assert_int_equal(r.op, VSOCK_OP_RST);
		rsts++;
	}
	assert_int_equal(rsts, VSOCK_RST_QUEUE + 10);
}

static void device_reset_closes_every_host_side(void **state)
{
	struct fixture *f = *state;
	struct gstream s1, s2;
	int listener, a = guest_connect(f, &s1, &listener);
	int b = host_connect(f, &s2);
	assert_int_equal(f->vs->nconns, 2);
	pthread_mutex_lock(&f->t.dev.lock);
	vsock_device_ops()->reset(&f->t.dev);
	pthread_mutex_unlock(&f->t.dev.lock);
	assert_int_equal(f->vs->nconns, 0);
	assert_true(host_sees_eof(f, a, WAIT_MS));
	assert_true(host_sees_eof(f, b, WAIT_MS));
	/* Host processes may connect again; they wait for the driver. */
	int c = uds_connect(f->uds);
	assert_true(c >= 0);
	close(a);
	close(b);
	close(c);
	close(listener);
}

static bool raise_fd_limit(rlim_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	if (rl.rlim_cur >= want)
		return true;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want;
}

static void connections_are_bounded(void **state)
{
	struct fixture *f = *state;
	if (!raise_fd_limit(2 * VSOCK_MAX_CONNS + 64)) {
		fprintf(stderr, "SKIPPED: connections_are_bounded needs %d file descriptors\n",
			2 * VSOCK_MAX_CONNS + 64);
		skip();
	}
	int listener = uds_listen_port(f, 1234);
	static int accepted[VSOCK_MAX_CONNS];
	int n = 0;
	for (uint32_t i = 0; i <= VSOCK_MAX_CONNS; i++) {
		struct gstream s = { .gport = 10000 + i, .hport = 1234, .buf_alloc = 4096 };
		fill_rx(f);
		tx(f, &s, VSOCK_OP_REQUEST, 0, NULL, 0);
		expect_packet(f, &s, i < VSOCK_MAX_CONNS ? VSOCK_OP_RESPONSE : VSOCK_OP_RST, NULL);
		int fd;
		while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
			accepted[n++] = fd;
	}
	assert_int_equal(f->vs->nconns, VSOCK_MAX_CONNS);
	assert_int_equal(n, VSOCK_MAX_CONNS);
	/* A host connection beyond the limit is closed at once. */
	int extra = uds_connect(f->uds);
	assert_true(host_sees_eof(f, extra, WAIT_MS));
	close(extra);
	for (int i = 0; i < n; i++)
		close(accepted[i]);
	close(listener);
}

/* ---- regressions: what a hostile guest found (found again by fuzz_vsock_streams) ---- */

/* A host connection to guest port gport whose REQUEST the guest has not been given:
 * no rx buffers are posted. Its ephemeral host port is the first one, so a guest can
 * guess it. Returns the host end once the device waits for the guest's answer. */
static int host_connect_unannounced(struct fixture *f, uint32_t gport)
{
	assert_int_equal(f->rx_outstanding, 0);
	int fd = uds_connect(f->uds);
	assert_true(fd >= 0);
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	host_write(fd, line, (size_t)n);
	for (int i = 0; i < 10 && (f->vs->nconns != 1 || only_conn(f)->state != VSOCK_CONN_HOST_CONNECTING); i++)
		vsock_poll(f->vs); /* accept, then the line */
	struct vsock_conn *c = only_conn(f);
	assert_int_equal(c->state, VSOCK_CONN_HOST_CONNECTING);
	assert_int_equal(c->host_port, VSOCK_EPHEMERAL_BASE);
	assert_false(c->guest_knows);
	return fd;
}

/* Whether the host end has "OK <hport>\n" (written in the tx pass that took the
 * RESPONSE, so no waiting); consumes it. */
static bool host_got_ok(int fd, uint32_t hport)
{
	char want[32], got[32];
	int n = snprintf(want, sizeof(want), "OK %u\n", hport);
	ssize_t r = recv(fd, got, (size_t)n, MSG_PEEK | MSG_DONTWAIT);
	if (r != n || memcmp(got, want, (size_t)n) != 0)
		return false;
	assert_int_equal(recv(fd, got, (size_t)n, MSG_DONTWAIT), n);
	return true;
}

/* Everything ends: the guest's rx buffers are back, the deadlines pass, the guest
 * answers nothing; no connection may be left. */
static void everything_ends(struct fixture *f)
{
	struct vsock_hdr h;
	fill_rx(f);
	pump(f, 20);
	while (rx_packet(f, &h, NULL, 0, 0))
		;
	expire_after(f, VSOCK_SHUTDOWN_TIMEOUT_MS + VSOCK_CMD_TIMEOUT_MS + 1);
	fill_rx(f);
	pump(f, 20);
	while (rx_packet(f, &h, NULL, 0, 0))
		;
	assert_int_equal(f->vs->nconns, 0);
}

/* Bug: tx_connecting took a RESPONSE for a host-initiated stream whose REQUEST the
 * guest had not been given, so the stream was open while guest_knows was false; when
 * the host then went away with guest data unread, rx_data -> vsock_conn_host_gone ->
 * vsock_conn_reset freed the connection at once and rx_conn went on using it
 * (ASan: heap-use-after-free in rx_conn). A device that refuses the guess passes
 * too: the test only asks for no crash and a clean end. */
static void guessed_response_then_host_reset_is_safe(void **state)
{
	struct fixture *f = *state;
	int fd = host_connect_unannounced(f, 52);
	struct gstream s = { .gport = 52, .hport = VSOCK_EPHEMERAL_BASE, .buf_alloc = 64 * 1024 };
	tx(f, &s, VSOCK_OP_RESPONSE, 0, NULL, 0); /* the guess */
	if (host_got_ok(fd, s.hport)) {
		/* Accepted: guest data backs up in the device (the host reads nothing)... */
		struct vsock_conn *c = only_conn(f);
		int small = 4096;
		assert_int_equal(setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
		static uint8_t data[TX_DATA_MAX];
		memset(data, 'g', sizeof(data));
		tx(f, &s, VSOCK_OP_RW, 0, data, sizeof(data));
		assert_true(c->ring.len > 0);
		/* ... the host writes exactly one rx buffer's worth, which the guest takes,
		 * so the device expects more to read ... */
		static uint8_t host[RX_BUF - VSOCK_HDR_SIZE];
		memset(host, 'h', sizeof(host));
		host_write(fd, host, sizeof(host));
		vsock_poll(f->vs);
		post_rx(f, 1);
		struct vsock_hdr h;
		assert_int_equal(rx_packet(f, &h, NULL, 0, 0), 1);
		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_int_equal(h.len, sizeof(host));
		/* ... then the host closes with the guest's data unread (the device's next
		 * read fails with ECONNRESET) and the guest posts a buffer: no poll between. */
		close(fd);
		fd = -1;
		post_rx(f, 1);
	}
	if (fd >= 0)
		close(fd);
	everything_ends(f);
}

/* Puts one chain of stream s on tx (its own memory, payload all byte) without
 * kicking. */
static void queue_packet(struct fixture *f, struct gstream *s, uint16_t op, uint32_t flags,
			 uint8_t byte, uint32_t len)
{
	uint8_t *p;
	uint64_t gpa = vtd_alloc(&f->t, VSOCK_HDR_SIZE + len, (void **)&p);
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = s->gport,
		.dst_port = s->hport, .len = len, .type = VSOCK_TYPE_STREAM, .op = op,
		.flags = flags, .buf_alloc = s->buf_alloc, .fwd_cnt = s->fwd_cnt,
	};
	vsock_hdr_encode(&h, p);
	memset(p + VSOCK_HDR_SIZE, byte, len);
	struct vtd_buf bufs[2] = { { gpa, VSOCK_HDR_SIZE, false },
				   { gpa + VSOCK_HDR_SIZE, len, false } };
	vtd_add_chain(&f->t, TXQ, bufs, len ? 2 : 1);
	if (op == VSOCK_OP_RW)
		s->tx_cnt += len;
}

/* Reads what the host end holds now (no waiting); returns the byte count. */
static size_t host_drain(int fd, uint8_t *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;
	while (got < cap && (n = recv(fd, buf + got, cap - got, MSG_DONTWAIT)) > 0)
		got += (size_t)n;
	return got;
}

/* The same root as the first: a stream the guest guessed open, whose host end is gone
 * (the device has not polled since). In one tx pass its data is gathered, then its
 * SHUTDOWN flushes the batch first; the write fails (EPIPE), the reset frees the
 * never-announced stream, and vsock_tx_packet went on with the freed connection
 * (ASan: heap-use-after-free in tx_conn; with an RST instead of the SHUTDOWN, a
 * double free). The same flush from inside tx_rw (a batch out of iovecs) freed it
 * under tx_rw. */
static void guessed_stream_freed_by_its_own_flush_is_not_used(void **state)
{
	struct fixture *f = *state;
	int fd = host_connect_unannounced(f, 52);
	struct gstream s = { .gport = 52, .hport = VSOCK_EPHEMERAL_BASE, .buf_alloc = 64 * 1024 };
	tx(f, &s, VSOCK_OP_RESPONSE, 0, NULL, 0); /* the guess */
	host_got_ok(fd, s.hport);
	close(fd); /* no poll after: the device learns it from the write */
	queue_packet(f, &s, VSOCK_OP_RW, 0, 'x', 10);
	queue_packet(f, &s, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, 0, 0);
	vtd_kick(&f->t, TXQ);
	assert_int_equal(used_count(f, TXQ), 2);
	everything_ends(f);
}

/* Bug: vsock_conn_free forgot the stream's gathered tx batch (txb.c) but not its
 * iovecs and byte count, so the next stream's packets in the same tx pass were
 * appended after them and its host socket got both: here stream A's 100 bytes, then
 * a packet that overruns A's credit (A is reset and, never announced to the guest,
 * freed at once), then B's 50 bytes; B's socket got 150. Each host socket must get
 * its own stream's bytes only. */
static void stream_freed_mid_pass_leaks_no_bytes_to_the_next(void **state)
{
	struct fixture *f = *state;
	int a = host_connect_unannounced(f, 52);
	struct gstream sa = { .gport = 52, .hport = VSOCK_EPHEMERAL_BASE, .buf_alloc = 64 * 1024 };
	tx(f, &sa, VSOCK_OP_RESPONSE, 0, NULL, 0); /* the guess, as above */
	host_got_ok(a, sa.hport); /* A is open if the device took it; the test holds either way */
	/* What the device owes the guest about A (an RST for the guess, the REQUEST it
	 * still holds) goes now; a device that took the guess owes nothing. */
	fill_rx(f);
	struct vsock_hdr h;
	while (rx_packet(f, &h, NULL, 0, 0))
		;
	struct gstream sb;
	int listener, b = guest_connect(f, &sb, &listener);
	/* One tx pass. */
	queue_packet(f, &sa, VSOCK_OP_RW, 0, 'A', 100);
	queue_packet(f, &sa, VSOCK_OP_RW, 0, 'a', VSOCK_BUF_ALLOC); /* past A's credit */
	queue_packet(f, &sb, VSOCK_OP_RW, 0, 'B', 50);
	vtd_kick(&f->t, TXQ);
	static uint8_t got[2 * VSOCK_BUF_ALLOC];
	size_t n = host_drain(b, got, sizeof(got));
	for (size_t i = 0; i < n; i++)
		if (got[i] != 'B')
			fail_msg("stream B's host socket got byte %zu of %zu = '%c': another stream's", i,
				 n, got[i]);
	assert_int_equal(n, 50);
	n = host_drain(a, got, sizeof(got));
	for (size_t i = 0; i < n; i++)
		if (got[i] != 'A' && got[i] != 'a')
			fail_msg("stream A's host socket got byte %zu = '%c'", i, got[i]);
	close(a);
	close(b);
	close(listener);
	everything_ends(f);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_layout_is_little_endian),
		cmocka_unit_test(hostile_headers_are_classified),
		cmocka_unit_test(connect_lines_are_parsed_strictly),
		cmocka_unit_test(reserved_cids_and_long_paths_are_refused),
		cmocka_unit_test_setup_teardown(config_space_is_the_guest_cid, setup, teardown),
		cmocka_unit_test_setup_teardown(listener_is_private, setup, teardown),
		cmocka_unit_test_teardown(stale_socket_is_replaced_live_one_refused, teardown),
		cmocka_unit_test_setup_teardown(guest_connects_and_data_flows_both_ways, setup,
						teardown),
		cmocka_unit_test_setup_teardown(guest_request_without_listener_gets_rst, setup,
						teardown),
		cmocka_unit_test_setup_teardown(guest_half_close_keeps_the_other_direction, setup,
						teardown),
		cmocka_unit_test_setup_teardown(host_connects_and_data_flows_both_ways, setup,
						teardown),
		cmocka_unit_test_setup_teardown(data_after_the_connect_line_is_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(guest_refusal_closes_the_host_side, setup, teardown),
		cmocka_unit_test_setup_teardown(unanswered_request_times_out_with_rst, setup,
						teardown),
		cmocka_unit_test_setup_teardown(bad_or_missing_connect_lines_are_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(host_close_then_guest_silence_times_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(guest_credit_limits_what_the_host_sends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(host_that_never_reads_stops_the_guest_by_credit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(guest_overrunning_credit_is_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(credit_is_what_was_advertised_not_what_was_read,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			a_repeated_request_neither_resets_nor_loses_the_response, setup, teardown),
		cmocka_unit_test_setup_teardown(guest_packets_of_one_kick_go_out_in_one_writev,
						setup, teardown),
		cmocka_unit_test_setup_teardown(partial_writev_leaves_the_rest_in_the_ring, setup,
						teardown),
		cmocka_unit_test_setup_teardown(host_data_fills_many_rx_buffers_in_one_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(one_interrupt_per_pass,
						setup_no_event_idx, teardown),
		cmocka_unit_test_setup_teardown(no_rx_buffers_means_no_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_packets_get_rst_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(rst_replies_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(device_reset_closes_every_host_side, setup, teardown),
		cmocka_unit_test_setup_teardown(connections_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(stream_freed_mid_pass_leaks_no_bytes_to_the_next,
						setup, teardown),
		cmocka_unit_test_setup_teardown(guessed_response_then_host_reset_is_safe, setup,
						teardown),
		cmocka_unit_test_setup_teardown(guessed_stream_freed_by_its_own_flush_is_not_used,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
