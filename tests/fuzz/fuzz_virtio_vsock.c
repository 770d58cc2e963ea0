/* libFuzzer target for virtio-vsock: each input is a script of guest and host
 * actions run against the real device, the real walker and real unix sockets:
 * guest packets on tx (headers as the fuzzer wrote them, optionally fixed up so they
 * pass the address checks and reach the stream logic), rx buffers of any size, host
 * clients connecting and writing anything, reads, closes, the device's poll and
 * timer, and device resets. A crash, a sanitizer report or a broken invariant
 * (__builtin_trap) is a finding. Invariants, checked after every action: the
 * connection count, the RST queue and every stream's buffer stay inside their
 * bounds; the rx round-robin list and the hash agree with the table; every rx
 * packet the device returns is a whole header plus at most what the buffer held,
 * addressed from the host to the guest, RW payloads never empty nor above 64 KiB;
 * tx buffers come back with nothing written; a device reset leaves nothing behind.
 *
 * Input: a sequence of records, each an action byte (taken modulo the number of
 * actions) and its arguments (see run_action); a short input ends the script.
 *
 * Build: `make build/fuzz/fuzz_virtio_vsock` (with the whole library), or alone:
 *   clang-14 -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -Itests/unit/support \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     tests/fuzz/fuzz_virtio_vsock.c tests/unit/support/virtio_test_driver.c \
 *     src/devices/virtio_vsock.c src/devices/vsock_{conn,packet,rx,tx,uds}.c \
 *     src/devices/virtio/{virtqueue,mmio}.c src/vmm/{memory,event_loop,bus}.c \
 *     src/common/log.c -lpthread -o build/fuzz/fuzz_virtio_vsock
 * Run:
 *   build/fuzz/fuzz_virtio_vsock -max_len=4096 build/fuzz/corpus-virtio-vsock
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/vsock.h"
#include "virtio_test_driver.h"
#include "vmm/config.h"
#include "vmm/timings.h"

#define CID 3
#define MEM_MIB 8
#define MEM_LIMIT (7ULL << 20) /* buffers stay below this */
#define MAX_HOST_FDS 16
#define MAX_RX_BUF 8192
#define F(bit) (1ULL << (bit))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct script {
	const uint8_t *p;
	size_t n;
};

struct rx_buf {
	uint8_t *hva;
	uint32_t len;
};

struct dut {
	struct vtd t;
	struct vsock *vs;
	int host_fds[MAX_HOST_FDS];
	int nhost;
	struct rx_buf rx[VSOCK_QUEUE_SIZE]; /* by head: rx chains are one descriptor */
	uint32_t last_host_port, last_guest_port; /* from the last rx packet */
	uint32_t guest_buf_alloc, guest_fwd_cnt; /* what the guest last advertised */
};

static char dir[64], uds[96];
static int listeners[2]; /* the host services "<uds>_1" and "<uds>_2" */

static uint8_t take8(struct script *s)
{
	if (!s->n)
		return 0;
	s->n--;
	return *s->p++;
}

static uint16_t take16(struct script *s)
{
	return (uint16_t)(take8(s) | take8(s) << 8);
}

static size_t take_bytes(struct script *s, void *dst, size_t len)
{
	size_t n = len < s->n ? len : s->n;
	memcpy(dst, s->p, n);
	memset((uint8_t *)dst + n, 0, len - n);
	s->p += n;
	s->n -= n;
	return n;
}

static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
		abort();
	return fd;
}

static void cleanup(void)
{
	char path[128];
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s_%d", uds, i + 1);
		unlink(path);
	}
	rmdir(dir);
}

static void once(void)
{
	static int ready;
	if (ready)
		return;
	log_init("fuzz", LOG_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/argon-fuzz-vsock-%d", (int)getpid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		abort();
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	char path[128];
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s_%d", uds, i + 1);
		unlink(path);
		listeners[i] = listen_at(path);
	}
	atexit(cleanup);
	ready = 1;
}

static bool mem_room(struct dut *d, uint32_t len)
{
	return d->t.next_free + len + 16 < MEM_LIMIT;
}

/* Checks what the bounds promise; called with the device idle (no lock needed). */
static void check_invariants(struct dut *d)
{
	struct vsock *vs = d->vs;
	if (vs->nconns > VSOCK_MAX_CONNS || vs->rst_count > VSOCK_RST_QUEUE)
		__builtin_trap();
	uint32_t seen = 0, listed = 0;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = vs->conns[i];
		if (!c)
			continue;
		seen++;
		if (c->slot != i || c->ring.len > VSOCK_BUF_ALLOC || (c->ring.len && !c->ring.buf))
			__builtin_trap();
		if (c->hashed && vsock_conn_lookup(vs, c->host_port, c->guest_port) != c)
			__builtin_trap();
		if (c->state == VSOCK_CONN_RST_PENDING && (c->fd >= 0 || !(c->pending & VSOCK_P_RST)))
			__builtin_trap();
		if (c->pending && !c->in_rx_list)
			__builtin_trap(); /* owed packets would never go out */
		listed += c->in_rx_list;
	}
	uint32_t walked = 0;
	for (int32_t i = vs->rx_head; i >= 0; i = vs->conns[i]->rx_next)
		if (++walked > seen || !vs->conns[i]->in_rx_list)
			__builtin_trap();
	if (seen != vs->nconns || walked != listed)
		__builtin_trap();
}

/* Takes back what the device returned on rx and checks each packet. */
static void drain_rx(struct dut *d)
{
	uint32_t id, len;
	while (vtd_get_used(&d->t, VSOCK_QUEUE_RX, &id, &len)) {
		if (id >= VSOCK_QUEUE_SIZE || !d->rx[id].hva || len > d->rx[id].len)
			__builtin_trap();
		if (len == 0)
			continue; /* a buffer too small for a header, handed back */
		struct vsock_hdr h;
		if (len < VSOCK_HDR_SIZE)
			__builtin_trap();
		vsock_hdr_decode(d->rx[id].hva, &h);
		if (len != VSOCK_HDR_SIZE + h.len || h.src_cid != VSOCK_HOST_CID ||
		    h.dst_cid != CID || h.type != VSOCK_TYPE_STREAM)
			__builtin_trap();
		if (h.op == VSOCK_OP_RW && (h.len == 0 || h.len > VSOCK_MAX_PKT_DATA))
			__builtin_trap();
		d->last_host_port = h.src_port;
		d->last_guest_port = h.dst_port;
	}
}

/* A guest packet: [flags][44-byte header][u16 payload length][split][n][n bytes].
 * Most packets are made plausible so they reach the stream logic; flags choose what
 * stays as the fuzzer wrote it: bits 0-2 all zero keep the addresses (cids, type)
 * raw, bit 3 the op (else taken mod 8), bits 4-5 the ports (0 or 3: guest ports 0-3
 * to host services 1 and 2, which listen; 1: answer the last rx packet; 2: raw), bit 6 len
 * (else the payload's length), bit 7 the credit fields (else the guest's state). */
static void fix_header(struct dut *d, struct vsock_hdr *h, uint8_t flags, uint32_t plen)
{
	if (flags & 7) {
		h->src_cid = CID;
		h->dst_cid = VSOCK_HOST_CID;
		h->type = VSOCK_TYPE_STREAM;
	}
	if (!(flags & 8))
		h->op %= 8;
	switch ((flags >> 4) & 3) {
	case 1:
		h->src_port = d->last_guest_port;
		h->dst_port = d->last_host_port;
		break;
	case 2:
		break;
	default:
		h->src_port %= 4;
		h->dst_port = 1 + h->dst_port % 2;
		break;
	}
	if (!(flags & 64))
		h->len = plen;
	if (!(flags & 128)) {
		h->buf_alloc = d->guest_buf_alloc;
		h->fwd_cnt = d->guest_fwd_cnt;
	}
}

static void act_tx(struct dut *d, struct script *s)
{
	uint8_t flags = take8(s), raw[VSOCK_HDR_SIZE];
	take_bytes(s, raw, sizeof(raw));
	struct vsock_hdr h;
	vsock_hdr_decode(raw, &h);
	uint32_t plen = take16(s);
	uint8_t split = take8(s), literal = take8(s);
	fix_header(d, &h, flags, plen);
	uint32_t total = VSOCK_HDR_SIZE + plen;
	if (!mem_room(d, total))
		return;
	uint8_t *hva;
	uint64_t gpa = vtd_alloc(&d->t, total, (void **)&hva);
	vsock_hdr_encode(&h, hva);
	/* The payload's first n bytes from the script, the rest a pattern, so a big
	 * write does not swallow the rest of the script. */
	memset(hva + VSOCK_HDR_SIZE, 'p', plen);
	take_bytes(s, hva + VSOCK_HDR_SIZE, literal < plen ? literal : plen);
	/* One, two or three descriptors, cut anywhere (a cut inside the header too). */
	uint32_t cut = split % 3 == 0 ? total : split % 3 == 1 ? VSOCK_HDR_SIZE : 1 + split % total;
	struct vtd_buf bufs[2] = { { gpa, cut, false }, { gpa + cut, total - cut, false } };
	vtd_add_chain(&d->t, VSOCK_QUEUE_TX, bufs, cut < total ? 2 : 1);
	vtd_kick(&d->t, VSOCK_QUEUE_TX);
	uint32_t id, len;
	while (vtd_get_used(&d->t, VSOCK_QUEUE_TX, &id, &len))
		if (len != 0)
			__builtin_trap(); /* the device never writes tx buffers */
}

/* rx buffers: [count][u16 size]; sizes below a header are hostile but legal. */
static void act_rx(struct dut *d, struct script *s)
{
	uint32_t count = take8(s) % 32 + 1, size = take16(s) % MAX_RX_BUF + 1;
	for (uint32_t i = 0; i < count && mem_room(d, size); i++) {
		struct vtd_queue *q = &d->t.q[VSOCK_QUEUE_RX];
		if ((uint16_t)(q->avail_idx - q->last_used) >= q->size)
			break; /* every descriptor is with the device */
		uint16_t head = q->next_desc;
		uint64_t gpa = vtd_alloc(&d->t, size, (void **)&d->rx[head].hva);
		d->rx[head].len = size;
		struct vtd_buf b = { gpa, size, true };
		vtd_add_chain(&d->t, VSOCK_QUEUE_RX, &b, 1);
	}
	vtd_kick(&d->t, VSOCK_QUEUE_RX);
	drain_rx(d);
}

static void add_host_fd(struct dut *d, int fd)
{
	if (fd < 0)
		return;
	if (d->nhost == MAX_HOST_FDS) {
		close(fd);
		return;
	}
	d->host_fds[d->nhost++] = fd;
}

/* A host client: [mode][port or length][bytes]: mode 0 a proper CONNECT line,
 * otherwise raw bytes. */
static void act_host_connect(struct dut *d, struct script *s)
{
	uint8_t mode = take8(s), arg = take8(s);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, uds, strlen(uds) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	char line[64];
	size_t len = mode % 2 == 0 ? (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", arg % 4)
				   : take_bytes(s, line, arg % sizeof(line));
	if (send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0; /* the device may already have dropped it */
	add_host_fd(d, fd);
}

static int host_fd(struct dut *d, struct script *s)
{
	uint8_t i = take8(s);
	return d->nhost ? d->host_fds[i % d->nhost] : -1;
}

static void act_host_write(struct dut *d, struct script *s)
{
	int fd = host_fd(d, s);
	uint8_t buf[4096];
	size_t len = take_bytes(s, buf, take16(s) % sizeof(buf));
	if (fd >= 0 && send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0; /* full or closed: both are the device's business */
}

static void act_host_read(struct dut *d, struct script *s)
{
	int fd = host_fd(d, s);
	static uint8_t sink[1 << 16];
	while (fd >= 0 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static void act_host_close(struct dut *d, struct script *s)
{
	uint8_t how = take8(s);
	int fd = host_fd(d, s);
	if (fd < 0)
		return;
	if (how % 3 != 0) {
		shutdown(fd, how % 3 == 1 ? SHUT_WR : SHUT_RDWR);
		return;
	}
	for (int i = 0; i < d->nhost; i++)
		if (d->host_fds[i] == fd)
			d->host_fds[i] = d->host_fds[--d->nhost];
	close(fd);
}

static void act_accept(struct dut *d, struct script *s)
{
	for (int i = 0; i < 2; i++) {
		int fd;
		while ((fd = accept4(listeners[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			add_host_fd(d, fd);
	}
}

/* A slow host: the device's sockets get the smallest send buffer, so a few KiB of
 * guest data fill them and the per-stream buffer and its credit come into play. */
static void act_squeeze(struct dut *d, struct script *s)
{
	int size = 1;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = d->vs->conns[i];
		if (c && c->fd >= 0)
			setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
}

static void act_poll(struct dut *d, struct script *s)
{
	vsock_poll(d->vs);
	drain_rx(d);
}

static void act_expire(struct dut *d, struct script *s)
{
	uint64_t ms = (uint64_t)take16(s) * 10;
	pthread_mutex_lock(&d->t.dev.lock);
	vsock_expire(d->vs, timings_now() + ms * 1000000ULL);
	vsock_rx_process(d->vs);
	pthread_mutex_unlock(&d->t.dev.lock);
	drain_rx(d);
}

/* The guest's credit state: [u32 buf_alloc][u32 fwd_cnt] for later packets. */
static void act_credit(struct dut *d, struct script *s)
{
	take_bytes(s, &d->guest_buf_alloc, 4);
	take_bytes(s, &d->guest_fwd_cnt, 4);
}

static void act_reset(struct dut *d, struct script *s)
{
	pthread_mutex_lock(&d->t.dev.lock);
	d->t.dev.ops->reset(&d->t.dev);
	pthread_mutex_unlock(&d->t.dev.lock);
	if (d->vs->nconns || d->vs->rst_count || d->vs->rx_head >= 0)
		__builtin_trap();
	/* The rings keep their state: reactivating continues where the driver was. */
	d->t.dev.ops->activate(&d->t.dev);
}

typedef void (*action_fn)(struct dut *d, struct script *s);

static const action_fn actions[] = {
	act_tx, act_tx, act_tx, act_rx, act_host_connect, act_host_write, act_host_read,
	act_host_close, act_accept, act_poll, act_poll, act_expire, act_credit, act_reset,
	act_squeeze,
};

static bool open_dut(struct dut *d)
{
	memset(d, 0, sizeof(*d));
	struct vsock_config cfg = { .guest_cid = CID, .uds_path = uds };
	if (vsock_backend_create(&cfg, &d->vs) < 0)
		abort();
	uint64_t features = F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_F_INDIRECT_DESC);
	if (vtd_init(&d->t, vsock_device_ops(), d->vs, MEM_MIB, features, 0) < 0 ||
	    vsock_attach(d->vs, &d->t.dev) < 0)
		abort();
	d->guest_buf_alloc = 65536;
	return true;
}

static void close_dut(struct dut *d)
{
	for (int i = 0; i < d->nhost; i++)
		close(d->host_fds[i]);
	vtd_destroy(&d->t);
	vsock_backend_destroy(d->vs);
	d->nhost = 0;
	act_accept(d, NULL); /* connections the device made that nobody took */
	for (int i = 0; i < d->nhost; i++)
		close(d->host_fds[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	once();
	static struct dut d;
	open_dut(&d);
	struct script s = { data, size };
	for (int steps = 0; s.n && steps < 256; steps++) {
		actions[take8(&s) % (sizeof(actions) / sizeof(actions[0]))](&d, &s);
		check_invariants(&d);
	}
	vsock_poll(d.vs);
	drain_rx(&d);
	check_invariants(&d);
	close_dut(&d);
	return 0;
}
