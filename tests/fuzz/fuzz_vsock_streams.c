/* libFuzzer target: virtio-vsock streams, with oracles on what each stream carries.
 *
 * fuzz_virtio_vsock.c hunts crashes with mostly raw headers; this target is a guest
 * and a host that keep books. Each input is a script of operations (at most MAX_OPS)
 * run against the real device through the fake driver (virtio_test_driver) and real
 * unix sockets in a private directory:
 *
 *   guest: posts rx buffers (header-only, too small, one or two descriptors, up to
 *     64 KiB of payload); sends batches of up to 8 packets per kick (any op; ports from
 *     small sets so streams collide, including the host's guessable ephemeral ports
 *     1<<30 + k and "the newest host connection's", or answering the last packet it
 *     got; payload lengths up to and past the device's 256 KiB credit; shutdown
 *     flags; credit fields from the guest's books, zero or raw); changes the buffer it
 *     advertises for a stream.
 *   host: connects to uds_path and writes "CONNECT p\n" (also "\r\n", split in two
 *     writes, nothing, or garbage); listens on "<uds_path>_P" and accepts; writes,
 *     reads (all or some), shuts down for writing, closes (with or without reading
 *     what is pending first); shrinks socket buffers so data backs up.
 *   device: vsock_poll, vsock_expire with a time in the future, a driver reset.
 *
 * Oracles (abort() with a message on stderr):
 *   (a) guest -> host: every payload byte the guest sends is tag << 3 | counter, the
 *       tag a function of the stream's (host port, guest port), the counter the
 *       stream's running byte count mod 8. Every byte a host socket reads must carry
 *       its own stream's tag, and the counters must run on without a gap. The host
 *       socket's stream is known exactly: for host-initiated ones from the CONNECT
 *       line and the "OK <port>" answer, for guest-initiated ones from the device's
 *       connect() itself (this file defines connect(): see device_connected).
 *       Tx buffers the device gave back are overwritten with 0xff (tag 31, no
 *       stream's): a device that still reads one is caught the same way.
 *   (b) host -> guest: the host writes a per-socket pseudo-random sequence; every RW
 *       packet the guest takes must continue the sequence of the host socket bound to
 *       its (src_port, dst_port), never run past what that socket wrote.
 *   (c) buffers: every used element names a chain the guest posted and the device
 *       has not returned yet; tx chains come back with len 0; rx ones with at most
 *       what they hold (a whole header plus h.len), nothing written past that (the
 *       buffers are pre-filled with a canary), len 0 only for a buffer too small for
 *       a header; every rx header well formed.
 *   plus the device's own invariants (connection table, hash, rx list), and at the
 *   end of each input: every host socket (also those never accepted) read to the
 *   end under (a), every fd closed (the count must not grow), everything freed
 *   (LeakSanitizer).
 *
 * Guidance: besides code coverage, each connection's abstract state after each
 * operation, and each host socket's state with its stream's, are libFuzzer features
 * (extra counters, see cover_states): the bugs are combinations of states whose code
 * has all run before.
 *
 * Deterministic: no sleeps; unix sockets deliver synchronously; the real clock is read
 * only where the device reads it (its deadlines are seconds away from any input).
 *
 * Input: a sequence of records, an op byte (modulo the table `ops`) and its argument
 * bytes; a short input ends the script (missing bytes read as 0). The dictionary
 * fuzz_vsock_streams.dict holds whole records.
 *
 * Build: make build/fuzz/fuzz_vsock_streams (or `make fuzz`).
 * Run:   build/fuzz/fuzz_vsock_streams -max_len=512 -dict=tests/fuzz/fuzz_vsock_streams.dict \
 *            build/fuzz/corpus-vsock_streams tests/fuzz/corpus/fuzz_vsock_streams
 *        (`make fuzz-run` does the same); rerun one input: build/fuzz/fuzz_vsock_streams FILE.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/vsock.h"
#include "virtio_test_driver.h"
#include "vmm/config.h"
#include "vmm/timings.h"

#define CID 3
#define MEM_MIB 48
#define MEM_LIMIT ((uint64_t)(MEM_MIB - 1) << 20) /* guest buffers stay below */
#define MAX_OPS 96
#define MAX_EP 24	   /* host sockets per input */
#define MAX_DESC 4	   /* descriptors per chain */
#define QSIZE VSOCK_QUEUE_SIZE
#define FIFO_MAX 256
#define EPH VSOCK_EPHEMERAL_BASE
#define RX_CANARY 0xa5
#define TX_POISON 0xff /* tag 31: no stream's */
#define F(bit) (1ULL << (bit))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Ports (they make the stream tags). Host ports 0-2 are services the host may listen
 * on ("<uds>_1".."_3"), 3-5 the first ephemeral ports of host-initiated streams, 6 one
 * nothing listens on. */
static const uint32_t host_ports[7] = { 1, 2, 3, EPH, EPH + 1, EPH + 2, 1234 };
static const uint32_t guest_ports[4] = { 1000, 1001, 1002, 3 };
#define NLISTEN 3

static int port_index(const uint32_t *set, int n, uint32_t port)
{
	for (int i = 0; i < n; i++)
		if (set[i] == port)
			return i;
	return -1;
}

/* The stream's tag: 0-27 for the streams of the port sets, 28-30 shared by the rest
 * (their counters are not checked), 31 never (the poison). */
static uint8_t stream_tag(uint32_t hport, uint32_t gport)
{
	int h = port_index(host_ports, 7, hport), g = port_index(guest_ports, 4, gport);
	if (h >= 0 && g >= 0)
		return (uint8_t)(h * 4 + g);
	return (uint8_t)(28 + (hport * 7u + gport * 13u) % 3);
}

/* Byte i of what host socket number e writes. */
static uint8_t host_byte(uint32_t e, uint32_t i)
{
	uint32_t x = (e + 1) * 0x9e3779b1u ^ i * 0x85ebca6bu;
	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return (uint8_t)(x >> 8);
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz_vsock_streams: ORACLE: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

/* ---- the guest's books ---- */

struct chain_rec {
	bool out; /* with the device */
	uint8_t ndesc;
	uint16_t desc[MAX_DESC];
	uint8_t *hva[MAX_DESC];
	uint32_t len[MAX_DESC];
	uint32_t total;
};

struct gqueue {
	uint16_t free[QSIZE];
	uint32_t nfree;
	struct chain_rec chain[QSIZE]; /* by head descriptor */
};

/* Per stream tag: what the guest sends and advertises. */
struct gstream {
	uint32_t tx_pos;    /* payload bytes sent (the counter in each byte) */
	uint32_t fwd_cnt;   /* payload bytes taken from rx, since the stream began */
	uint32_t buf_alloc; /* what the guest advertises */
};

/* ---- the host's books ---- */

enum { EP_HOST_INIT, EP_GUEST_INIT };

struct endpoint {
	int fd;	       /* -1 once closed */
	uint8_t kind;
	bool line_ok;  /* host-initiated: a valid CONNECT line is (being) sent */
	bool bound;    /* the stream is known: hport, gport */
	uint32_t hport, gport;
	uint32_t sent;	    /* host -> guest bytes written */
	uint32_t taken;	    /* of those, bytes the guest received */
	int last_ctr;	    /* guest -> host: the counter of the last byte read, -1 none */
	uint64_t received;  /* guest -> host bytes read */
	char rest[24];	    /* the second half of a split CONNECT line */
	uint8_t nrest;
	uint8_t host_state; /* 0 open, 1 shut for writing, 2 closed, 3 closed with bytes unread */
};

struct listener {
	int fd; /* -1: not listening */
	uint32_t fifo[FIFO_MAX]; /* guest ports of the device's connects not yet accepted */
	uint32_t head, count;
};

struct harness {
	struct vtd t;
	struct vsock *vs;
	struct gqueue q[2]; /* rx, tx */
	struct gstream gs[32];
	struct endpoint ep[MAX_EP];
	uint32_t nep; /* endpoints ever made this input (their number is their index) */
	struct listener ls[NLISTEN];
	/* What a hostile guest can know or guess: the stream of the last packet it got,
	 * and the ephemeral port and guest port of the newest host connection (ports are
	 * handed out in order from VSOCK_EPHEMERAL_BASE). */
	uint32_t rx_hport, rx_gport;
	uint32_t connects; /* host connections that sent a valid CONNECT line */
	uint32_t newest_gport;
	uint8_t squeeze; /* op_squeeze: bit 0 the device's sockets, bit 1 the host's */
};

struct script {
	const uint8_t *p;
	size_t n;
};

static char dir[64], uds[96];
static struct harness *cur; /* the input being run, for connect() */
static uint8_t scratch[VSOCK_BUF_ALLOC + 4096];

static uint8_t take8(struct script *s)
{
	if (!s->n)
		return 0;
	s->n--;
	return *s->p++;
}

static uint32_t take32(struct script *s)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)take8(s) << (8 * i);
	return v;
}

/* ---- the device's connect(), seen from inside the process ----
 *
 * The device connects to "<uds>_P" for a guest REQUEST to host port P, inside
 * vsock_tx_packet() for the chain in vs->tx_chain. Which accepted socket is which
 * stream is recorded here, exactly, in connect order, which is accept order: the
 * guest port comes from the header of the chain the device is working on. The
 * library's calls to connect() bind to this definition at link time (ASan does not
 * intercept connect); the real one is the system call. */
static void device_connected(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_un *a = (const struct sockaddr_un *)sa;
	size_t ulen = strlen(uds);
	if (!cur || sa->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path) ||
	    strncmp(a->sun_path, uds, ulen) != 0 || a->sun_path[ulen] != '_')
		return;
	uint32_t port = (uint32_t)strtoul(a->sun_path + ulen + 1, NULL, 10);
	int li = port_index(host_ports, NLISTEN, port);
	if (li < 0 || cur->ls[li].fd < 0)
		die("the device connected to %s, where nothing of ours listens", a->sun_path);
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;
	if (virtq_chain_read(&cur->vs->tx_chain, 0, raw, VSOCK_HDR_SIZE) != VSOCK_HDR_SIZE)
		die("the device connected outside a tx packet");
	vsock_hdr_decode(raw, &h);
	if (h.op != VSOCK_OP_REQUEST || h.dst_port != port)
		die("the device connected to port %u for a packet op %u to port %u", port, h.op,
		    h.dst_port);
	struct listener *l = &cur->ls[li];
	if (l->count == FIFO_MAX)
		die("more pending connections than a backlog holds");
	l->fifo[(l->head + l->count++) % FIFO_MAX] = h.src_port;
}

int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = addr.__sockaddr__;
	int r = (int)syscall(SYS_connect, fd, sa, len);
	if (r == 0)
		device_connected(sa, len);
	return r;
}

/* ---- set-up ---- */

static void remove_dir(void)
{
	rmdir(dir); /* empty after every input */
}

static void once(void)
{
	static bool ready;
	if (ready)
		return;
	log_init("fuzz", LOG_ERROR);
	/* tmpfs when there is one: socket files come and go on every input */
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/argon-fuzz-streams-%d", base, (int)getpid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		abort();
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	atexit(remove_dir);
	ready = true;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void listen_path(char *buf, size_t size, uint32_t port)
{
	snprintf(buf, size, "%s_%u", uds, port);
}

/* ---- the driver side: chains by hand, descriptors from a free list ---- */

static bool mem_room(struct harness *H, uint64_t len)
{
	return H->t.next_free + len + 64 < MEM_LIMIT;
}

/* Offers a chain of n buffers (addresses from vtd_alloc) on queue qi; false when
 * the queue has too few free descriptors. */
static bool offer(struct harness *H, uint32_t qi, uint8_t *const *hva, const uint64_t *gpa,
		  const uint32_t *len, int n, bool write)
{
	struct gqueue *g = &H->q[qi];
	if (g->nfree < (uint32_t)n)
		return false;
	struct vtd_desc *table = vtd_desc_table(&H->t, qi);
	uint16_t d[MAX_DESC];
	for (int i = 0; i < n; i++)
		d[i] = g->free[--g->nfree];
	for (int i = 0; i < n; i++)
		table[d[i]] = (struct vtd_desc){
			.addr = gpa[i], .len = len[i],
			.flags = (uint16_t)((write ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			.next = i + 1 < n ? d[i + 1] : 0,
		};
	struct chain_rec *c = &g->chain[d[0]];
	*c = (struct chain_rec){ .out = true, .ndesc = (uint8_t)n };
	for (int i = 0; i < n; i++) {
		c->desc[i] = d[i];
		c->hva[i] = hva[i];
		c->len[i] = len[i];
		c->total += len[i];
	}
	vtd_add_head(&H->t, qi, d[0]);
	return true;
}

/* A used element: the chain it names must be one the device holds. */
static struct chain_rec *take_back(struct harness *H, uint32_t qi, uint32_t id)
{
	struct gqueue *g = &H->q[qi];
	if (id >= QSIZE || !g->chain[id].out)
		die("queue %u: used id %u is no chain the guest gave the device", qi, id);
	struct chain_rec *c = &g->chain[id];
	c->out = false;
	for (int i = 0; i < c->ndesc; i++)
		g->free[g->nfree++] = c->desc[i];
	return c;
}

/* Copies [off, off + len) of a chain's bytes out. */
static void chain_copy(const struct chain_rec *c, uint32_t off, uint8_t *dst, uint32_t len)
{
	for (int i = 0; i < c->ndesc && len; i++) {
		if (off >= c->len[i]) {
			off -= c->len[i];
			continue;
		}
		uint32_t n = c->len[i] - off < len ? c->len[i] - off : len;
		memcpy(dst, c->hva[i] + off, n);
		dst += n;
		len -= n;
		off = 0;
	}
}

/* ---- the host side ---- */

static struct endpoint *new_endpoint(struct harness *H, int fd, uint8_t kind)
{
	if (H->nep == MAX_EP) {
		close(fd);
		return NULL;
	}
	struct endpoint *e = &H->ep[H->nep++];
	*e = (struct endpoint){ .fd = fd, .kind = kind, .last_ctr = -1 };
	return e;
}

static struct endpoint *pick_endpoint(struct harness *H, struct script *s)
{
	uint8_t i = take8(s);
	if (!H->nep)
		return NULL;
	struct endpoint *e = &H->ep[i % H->nep];
	return e->fd >= 0 ? e : NULL;
}

/* Oracle (a) on bytes a host socket read. */
static void check_host_bytes(struct harness *H, struct endpoint *e, const uint8_t *b, size_t n)
{
	if (!n)
		return;
	if (!e->bound)
		die("host socket %u read %zu bytes before its stream was known (first 0x%02x)",
		    (unsigned)(e - H->ep), n, b[0]);
	uint8_t tag = stream_tag(e->hport, e->gport);
	for (size_t i = 0; i < n; i++, e->received++) {
		uint8_t t = b[i] >> 3, ctr = b[i] & 7;
		if (b[i] == TX_POISON)
			die("host socket of stream %u:%u read a byte of a tx buffer the device had "
			    "given back (byte %llu)", e->hport, e->gport,
			    (unsigned long long)e->received);
		if (t != tag)
			die("host socket of stream host %u guest %u (tag %u) read a byte of tag %u, "
			    "another stream's (byte %llu of this socket, 0x%02x)", e->hport, e->gport,
			    tag, t, (unsigned long long)e->received, b[i]);
		if (tag < 28 && e->last_ctr >= 0 && ctr != ((e->last_ctr + 1) & 7))
			die("host socket of stream %u:%u: byte %llu has counter %u after %d: guest "
			    "bytes lost, repeated or reordered", e->hport, e->gport,
			    (unsigned long long)e->received, ctr, e->last_ctr);
		e->last_ctr = ctr;
	}
}

/* Reads what a host socket holds (at most max bytes), under oracle (a). */
static void host_read(struct harness *H, struct endpoint *e, size_t max)
{
	while (max && e->fd >= 0) {
		size_t want = max < sizeof(scratch) ? max : sizeof(scratch);
		ssize_t n = recv(e->fd, scratch, want, MSG_DONTWAIT);
		if (n <= 0)
			return;
		check_host_bytes(H, e, scratch, (size_t)n);
		max -= (size_t)n;
	}
}

/* Host-initiated sockets learn their stream from the device's "OK <port>\n"; read
 * it as soon as it is there, before anything else on that socket. */
static void scan_ok_lines(struct harness *H)
{
	for (uint32_t i = 0; i < H->nep; i++) {
		struct endpoint *e = &H->ep[i];
		if (e->fd < 0 || e->kind != EP_HOST_INIT || e->bound)
			continue;
		char line[32];
		ssize_t n = recv(e->fd, line, sizeof(line) - 1, MSG_PEEK | MSG_DONTWAIT);
		if (n <= 0)
			continue;
		line[n] = '\0';
		char *nl = memchr(line, '\n', (size_t)n);
		if (strncmp(line, "OK ", n < 3 ? (size_t)n : 3) != 0)
			die("host socket %u (CONNECT %u) read \"%.*s\" where \"OK <port>\" belongs", i,
			    e->gport, (int)n, line);
		if (!nl) {
			if (n >= 16)
				die("host socket %u: an OK line without its newline: \"%s\"", i, line);
			continue; /* cannot be: the device writes the line at once */
		}
		if (!e->line_ok)
			die("host socket %u got \"%.*s\" without having sent a valid CONNECT line", i,
			    (int)(nl - line), line);
		char *end;
		unsigned long port = strtoul(line + 3, &end, 10);
		if (end != nl || port < EPH || port > UINT32_MAX)
			die("host socket %u: bad OK line \"%.*s\"", i, (int)(nl - line), line);
		for (uint32_t j = 0; j < H->nep; j++)
			if (H->ep[j].bound && H->ep[j].kind == EP_HOST_INIT &&
			    H->ep[j].hport == port && H->ep[j].gport == e->gport)
				die("host port %lu given to two host connections", port);
		if (recv(e->fd, line, (size_t)(nl - line) + 1, MSG_DONTWAIT) != nl - line + 1)
			die("host socket %u: cannot consume the OK line", i);
		e->bound = true;
		e->hport = (uint32_t)port;
	}
}

/* The host socket bound to (hport, gport): the newest one (a guest-initiated stream
 * may be opened again once the old one is gone). */
static struct endpoint *bound_endpoint(struct harness *H, uint32_t hport, uint32_t gport)
{
	for (uint32_t i = H->nep; i-- > 0;)
		if (H->ep[i].bound && H->ep[i].hport == hport && H->ep[i].gport == gport)
			return &H->ep[i];
	return NULL;
}

/* ---- the guest takes what the device returned ---- */

static struct gstream *gstream_of(struct harness *H, uint32_t hport, uint32_t gport)
{
	return &H->gs[stream_tag(hport, gport)];
}

static void take_rx(struct harness *H, uint32_t id, uint32_t len)
{
	struct chain_rec *c = take_back(H, VSOCK_QUEUE_RX, id);
	if (len > c->total)
		die("rx used len %u past the chain's %u bytes", len, c->total);
	if (c->total - len) {
		chain_copy(c, len, scratch, c->total - len);
		for (uint32_t i = 0; i < c->total - len; i++)
			if (scratch[i] != RX_CANARY)
				die("rx chain of %u bytes, used len %u: byte %u past len written",
				    c->total, len, len + i);
	}
	if (len == 0) {
		if (c->total >= VSOCK_HDR_SIZE)
			die("an rx chain of %u bytes given back empty", c->total);
		return;
	}
	if (len < VSOCK_HDR_SIZE)
		die("rx used len %u: less than a header", len);
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;
	chain_copy(c, 0, raw, VSOCK_HDR_SIZE);
	vsock_hdr_decode(raw, &h);
	if (h.src_cid != VSOCK_HOST_CID || h.dst_cid != CID || h.type != VSOCK_TYPE_STREAM ||
	    len != VSOCK_HDR_SIZE + h.len || h.op == VSOCK_OP_INVALID ||
	    h.op > VSOCK_OP_CREDIT_REQUEST)
		die("bad rx header: cids %llu->%llu type %u op %u len %u, used len %u",
		    (unsigned long long)h.src_cid, (unsigned long long)h.dst_cid, h.type, h.op,
		    h.len, len);
	if ((h.op == VSOCK_OP_RW) != (h.len != 0) || h.len > VSOCK_MAX_PKT_DATA)
		die("rx op %u with %u payload bytes", h.op, h.len);
	H->rx_hport = h.src_port;
	H->rx_gport = h.dst_port;
	struct gstream *g = gstream_of(H, h.src_port, h.dst_port);
	if (h.op == VSOCK_OP_REQUEST) {
		if (h.src_port < EPH)
			die("REQUEST from host port %u, not an ephemeral one", h.src_port);
		g->fwd_cnt = 0;
	}
	if (h.op != VSOCK_OP_RW)
		return;
	/* Oracle (b): the bytes continue what the stream's host socket wrote. */
	struct endpoint *e = bound_endpoint(H, h.src_port, h.dst_port);
	if (!e)
		die("RW of %u bytes for stream host %u guest %u, which no host socket is",
		    h.len, h.src_port, h.dst_port);
	if (h.len > e->sent - e->taken)
		die("stream %u:%u: the guest got %u bytes, the host socket wrote %u more only",
		    h.src_port, h.dst_port, h.len, e->sent - e->taken);
	chain_copy(c, VSOCK_HDR_SIZE, scratch, h.len);
	uint32_t eid = (uint32_t)(e - H->ep);
	for (uint32_t i = 0; i < h.len; i++)
		if (scratch[i] != host_byte(eid, e->taken + i))
			die("stream %u:%u: guest byte %u is 0x%02x, the host wrote 0x%02x there",
			    h.src_port, h.dst_port, e->taken + i, scratch[i],
			    host_byte(eid, e->taken + i));
	e->taken += h.len;
	g->fwd_cnt += h.len;
}

/* State coverage. Code coverage stops paying once every branch of the stream logic
 * has run, but the bugs live in combinations (an open stream the guest was never
 * told of, with guest data backed up, owing a read): each connection's abstract
 * state after each operation, paired with that operation, is a feature libFuzzer
 * counts like an edge (extra counters), so inputs that reach a new combination are
 * kept and built on. */
#define STATE_COV 16384
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t state_cov[STATE_COV];

static uint32_t conn_state_bits(const struct vsock_conn *c)
{
	return (uint32_t)c->state | c->guest_knows << 3 | (c->ring.len != 0) << 4 |
	       (c->pending & 0x7f) << 5 | c->host_hup << 12 | c->host_eof << 13 |
	       c->host_wr_shut << 14 | (c->peer_shut & 3u) << 15 | (c->local_shut & 3u) << 17 |
	       c->credit_requested << 19 | (vsock_peer_credit(c) == 0) << 20 |
	       (c->fd >= 0) << 21;
}

static void cover(uint32_t f)
{
	f *= 0x9e3779b1u;
	uint8_t *n = &state_cov[(f >> 17) % STATE_COV];
	if (*n < 255)
		(*n)++;
}

/* Features: each connection's state with the operation; each host socket's state
 * (open, shut, closed, closed with bytes unread) with its stream's, so a host that
 * goes away before the device notices counts as new too. */
static void cover_states(struct harness *H, uint32_t op)
{
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++)
		if (H->vs->conns[i])
			cover(conn_state_bits(H->vs->conns[i]) | op << 22);
	for (uint32_t i = 0; i < H->nep; i++) {
		const struct endpoint *e = &H->ep[i];
		const struct vsock_conn *c = e->bound ? vsock_conn_lookup(H->vs, e->hport, e->gport)
						      : NULL;
		if (c)
			cover(conn_state_bits(c) | (uint32_t)e->host_state << 22 | 1u << 31);
	}
}

/* Everything the device returned, then the OK lines, then the device's invariants. */
static void check_invariants(struct harness *H);
static void squeeze_sockets(struct harness *H);

static void settle(struct harness *H, uint32_t op)
{
	uint32_t id, len;
	while (vtd_get_used(&H->t, VSOCK_QUEUE_TX, &id, &len)) {
		struct chain_rec *c = take_back(H, VSOCK_QUEUE_TX, id);
		if (len != 0)
			die("tx chain given back with used len %u", len);
		for (int i = 0; i < c->ndesc; i++)
			memset(c->hva[i], TX_POISON, c->len[i]); /* the guest reuses it */
	}
	scan_ok_lines(H); /* before rx: data of a stream follows its OK */
	while (vtd_get_used(&H->t, VSOCK_QUEUE_RX, &id, &len))
		take_rx(H, id, len);
	check_invariants(H);
	cover_states(H, op);
	squeeze_sockets(H);
}

/* The device's own bounds and lists (it is idle: no lock needed). */
static void check_invariants(struct harness *H)
{
	struct vsock *vs = H->vs;
	if (vs->nconns > VSOCK_MAX_CONNS || vs->rst_count > VSOCK_RST_QUEUE)
		die("connection count %u or RST queue %u past its bound", vs->nconns, vs->rst_count);
	uint32_t seen = 0, listed = 0;
	for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = vs->conns[i];
		if (!c)
			continue;
		seen++;
		if (c->slot != i || c->ring.len > VSOCK_BUF_ALLOC || (c->ring.len && !c->ring.buf))
			die("connection in slot %u: bad slot or ring", i);
		if (c->hashed && vsock_conn_lookup(vs, c->host_port, c->guest_port) != c)
			die("connection %u:%u hashed but not found", c->host_port, c->guest_port);
		if (c->pending && !c->in_rx_list)
			die("connection %u:%u owes packets 0x%x but is not in the rx list",
			    c->host_port, c->guest_port, c->pending);
		listed += c->in_rx_list;
	}
	uint32_t walked = 0;
	for (int32_t i = vs->rx_head; i >= 0; i = vs->conns[i]->rx_next)
		if (++walked > seen || !vs->conns[i] || !vs->conns[i]->in_rx_list)
			die("rx list broken");
	if (seen != vs->nconns || walked != listed)
		die("connection count %u, table %u, rx list %u of %u", vs->nconns, seen, walked,
		    listed);
	if (!vs->txb.c && (vs->txb.bytes || vs->txb.niov || vs->txb.nheads))
		die("tx batch left over between passes: %u bytes in %d iovecs, %u chains",
		    vs->txb.bytes, vs->txb.niov, vs->txb.nheads);
}

/* ---- operations ---- */

/* Sizes of rx buffers: header-only, too small for a header, and payload rooms the
 * host's write lengths line up with (a read that fills its buffers exactly keeps the
 * device reading). 0: a size from the input. */
static const uint32_t rx_sizes[16] = {
	VSOCK_HDR_SIZE, VSOCK_HDR_SIZE, VSOCK_HDR_SIZE + 1, 64, VSOCK_HDR_SIZE + 100, 144,
	300, 1024, 4096, 4096, VSOCK_HDR_SIZE + 4096, 20, VSOCK_HDR_SIZE + 8,
	VSOCK_HDR_SIZE + VSOCK_MAX_PKT_DATA, 8192, 0,
};

/* rx buffers: [count and size class][layout]. */
static void op_rx(struct harness *H, struct script *s)
{
	uint8_t a = take8(s), b = take8(s);
	uint32_t count = 1 + (a & 15), size = rx_sizes[a >> 4];
	if (!size)
		size = 1 + take8(s) * 16u;
	for (uint32_t i = 0; i < count && mem_room(H, size); i++) {
		uint8_t *p;
		uint64_t gpa = vtd_alloc(&H->t, size, (void **)&p);
		memset(p, RX_CANARY, size);
		uint32_t cut = (b & 3) == 1 ? VSOCK_HDR_SIZE : (b & 3) == 2 ? 10 : size;
		if (cut >= size) { /* one descriptor */
			if (!offer(H, VSOCK_QUEUE_RX, &p, &gpa, &size, 1, true))
				break;
			continue;
		}
		uint8_t *hv[2] = { p, p + cut };
		uint64_t gp[2] = { gpa, gpa + cut };
		uint32_t ln[2] = { cut, size - cut };
		if (!offer(H, VSOCK_QUEUE_RX, hv, gp, ln, 2, true))
			break;
	}
	if (!(b & 4))
		vtd_kick(&H->t, VSOCK_QUEUE_RX);
}

/* 0-127 bytes; 128 + 64k; 8-256 KiB (more than a default socket buffer takes: data
 * backs up in the device); a little under the device's credit; just over it. */
static uint32_t payload_len(struct script *s)
{
	uint8_t b = take8(s);
	if (b < 0x80)
		return b;
	if (b < 0xc0)
		return 128 + (b & 0x3fu) * 64;
	if (b < 0xe0)
		return 8192u * ((b & 0x1fu) + 1);
	if (b < 0xf0)
		return VSOCK_BUF_ALLOC - (b & 0xfu) * 64;
	return VSOCK_BUF_ALLOC + (b & 0xfu);
}

/* One guest packet: [op:3 host port:3 guest port:2][len class][flags] and raw values
 * where the flags ask: flags bits 0-1 SHUTDOWN flags, 2-3 credit fields (0, 1: the
 * guest's books; 2: buf_alloc 0; 3: raw u32 buf_alloc, fwd_cnt), 4-5 descriptor
 * layout, 6-7 == 3: a header the device must refuse (kind in the next byte). Host
 * port: services 1-3, the first two ephemeral ports, the newest host connection's
 * (3), the last rx packet's stream (6, both ports), a raw u32 (7). Guest port: 1000,
 * 1001, 1002, or the newest host connection's (3). */
static void queue_packet(struct harness *H, struct script *s)
{
	uint8_t a = take8(s);
	uint32_t len = payload_len(s);
	uint8_t fl = take8(s);
	struct vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .type = VSOCK_TYPE_STREAM,
		.op = a & 7, .flags = fl & 3, .len = len,
	};
	switch (a >> 3 & 7) {
	case 3: /* the newest host connection's port, guessed */
		h.dst_port = EPH + (H->connects ? H->connects - 1 : 0);
		break;
	case 6: /* the stream of the last packet the guest got (an answer) */
		h.dst_port = H->rx_hport;
		break;
	case 7:
		h.dst_port = take32(s);
		break;
	default: /* services 1-3, the first two ephemeral ports */
		h.dst_port = host_ports[(a >> 3 & 7) < 3 ? (a >> 3 & 7) : (a >> 3 & 7) - 1];
		break;
	}
	if ((a >> 3 & 7) == 6)
		h.src_port = H->rx_gport;
	else
		h.src_port = (a >> 6) == 3 ? H->newest_gport : guest_ports[a >> 6];
	struct gstream *g = gstream_of(H, h.dst_port, h.src_port);
	switch (fl >> 2 & 3) {
	case 2:
		h.buf_alloc = 0;
		h.fwd_cnt = g->fwd_cnt;
		break;
	case 3:
		h.buf_alloc = take32(s);
		h.fwd_cnt = take32(s);
		break;
	default:
		h.buf_alloc = g->buf_alloc;
		h.fwd_cnt = g->fwd_cnt;
		break;
	}
	bool valid = h.op != VSOCK_OP_INVALID;
	if ((fl >> 6) == 3) {
		valid = false;
		switch (take8(s) % 5) {
		case 0: h.src_cid = CID + 1; break;
		case 1: h.dst_cid = 1; break;
		case 2: h.type = 2; break;
		case 3: h.op = 8 + (h.op & 1) * 0xfff0; break;
		default: h.len = len + 1; break; /* past the chain */
		}
	}
	uint32_t total = VSOCK_HDR_SIZE + len;
	/* Layout: one descriptor; header | payload; header | payload in two; a cut
	 * anywhere (inside the header too). */
	uint32_t cuts[MAX_DESC] = { 0 };
	int n = 0;
	switch (len ? fl >> 4 & 3 : 0) {
	case 0: cuts[n++] = total; break;
	case 1: cuts[n++] = VSOCK_HDR_SIZE; cuts[n++] = total; break;
	case 2:
		cuts[n++] = VSOCK_HDR_SIZE;
		if (len > 1)
			cuts[n++] = VSOCK_HDR_SIZE + len / 2;
		cuts[n++] = total;
		break;
	default: cuts[n++] = 1 + take8(s) % (total - 1); cuts[n++] = total; break;
	}
	if (!mem_room(H, total) || H->q[VSOCK_QUEUE_TX].nfree < (uint32_t)n)
		return; /* never sent: the books stay as they are */
	uint8_t *p;
	uint64_t gpa = vtd_alloc(&H->t, total, (void **)&p);
	vsock_hdr_encode(&h, p);
	uint8_t tag = stream_tag(h.dst_port, h.src_port);
	for (uint32_t i = 0; i < len; i++)
		p[VSOCK_HDR_SIZE + i] = (uint8_t)(tag << 3 | ((g->tx_pos + i) & 7));
	if (valid && h.op == VSOCK_OP_RW)
		g->tx_pos += len;
	if (valid && (h.op == VSOCK_OP_REQUEST || h.op == VSOCK_OP_RESPONSE))
		g->fwd_cnt = 0; /* a new stream, as far as the guest can tell */
	uint8_t *hv[MAX_DESC];
	uint64_t gp[MAX_DESC];
	uint32_t ln[MAX_DESC];
	for (int i = 0, off = 0; i < n; off = (int)cuts[i++]) {
		hv[i] = p + off;
		gp[i] = gpa + (uint64_t)off;
		ln[i] = cuts[i] - (uint32_t)off;
	}
	offer(H, VSOCK_QUEUE_TX, hv, gp, ln, n, false);
}

/* A batch: [count-1:3, no kick when bits 3-4 are both set] then the packets. */
static void op_tx(struct harness *H, struct script *s)
{
	uint8_t a = take8(s);
	for (int i = 0; i <= (a & 7); i++)
		queue_packet(H, s);
	if ((a >> 3 & 3) != 3)
		vtd_kick(&H->t, VSOCK_QUEUE_TX);
}

static void op_kick(struct harness *H, struct script *s)
{
	vtd_kick(&H->t, take8(s) & 1 ? VSOCK_QUEUE_RX : VSOCK_QUEUE_TX);
}

/* A host client: [guest port:2 mode:3 garbage:3]. */
static void op_connect(struct harness *H, struct script *s)
{
	static const char *const garbage[8] = {
		"HELLO 52\n", "CONNECT\n", "CONNECT 4294967296\n", "CONNECT 5x\n",
		"CONNECT -1\n", "\n", "connect 1000\n", "CONNECT  1000\n",
	};
	uint8_t a = take8(s);
	uint32_t gport = guest_ports[a & 3];
	uint8_t mode = a >> 2 & 7;
	if (H->nep == MAX_EP)
		return;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	memcpy(addr.sun_path, uds, strlen(uds) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		abort();
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd); /* the device's backlog is full */
		return;
	}
	struct endpoint *e = new_endpoint(H, fd, EP_HOST_INIT);
	char line[48];
	int n = 0;
	e->gport = gport;
	switch (mode) {
	case 0: case 1: case 2:
		n = snprintf(line, sizeof(line), "CONNECT %u\n", gport);
		e->line_ok = true;
		break;
	case 3:
		n = snprintf(line, sizeof(line), "CONNECT %u\r\n", gport);
		e->line_ok = true;
		break;
	case 4: { /* split: the rest goes before the next write on this socket */
		int full = snprintf(line, sizeof(line), "CONNECT %u\n", gport);
		n = 1 + (a >> 5) % (full - 1);
		e->nrest = (uint8_t)(full - n);
		memcpy(e->rest, line + n, e->nrest);
		e->line_ok = true;
		break;
	}
	case 5:
		n = snprintf(line, sizeof(line), "%s", garbage[a >> 5]);
		break;
	case 6:
		break; /* says nothing: the device times it out */
	default:
		memset(line, '7', 40); /* past VSOCK_CMD_MAX with no newline */
		n = 40;
		break;
	}
	if (n && send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		e->line_ok = false;
	if (e->line_ok) {
		H->connects++;
		H->newest_gport = gport;
	}
}

static void accept_all(struct harness *H, struct listener *l, bool keep);

/* [service index]: starts listening there, or stops (dropping what waits). */
static void op_listen(struct harness *H, struct script *s)
{
	struct listener *l = &H->ls[take8(s) % NLISTEN];
	uint32_t port = host_ports[l - H->ls];
	char path[128];
	listen_path(path, sizeof(path), port);
	if (l->fd >= 0) {
		accept_all(H, l, false); /* what waits is checked, then dropped */
		close(l->fd);
		unlink(path);
		l->fd = -1;
		l->head = l->count = 0;
		return;
	}
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l->fd, 64) < 0)
		abort();
}

/* Accepts what waits on one service; the FIFO says which stream each one is. When
 * keep is false (the end of an input) each is read to the end and closed. */
static void accept_all(struct harness *H, struct listener *l, bool keep)
{
	uint32_t port = host_ports[l - H->ls];
	int fd;
	while (l->fd >= 0 && (keep ? H->nep < MAX_EP : true) &&
	       (fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (!l->count)
			die("accepted a connection to port %u that the device did not make", port);
		uint32_t gport = l->fifo[l->head];
		l->head = (l->head + 1) % FIFO_MAX;
		l->count--;
		struct endpoint tmp, *e = keep ? new_endpoint(H, fd, EP_GUEST_INIT) : &tmp;
		if (!keep)
			tmp = (struct endpoint){ .fd = fd, .kind = EP_GUEST_INIT, .last_ctr = -1 };
		e->bound = true;
		e->hport = port;
		e->gport = gport;
		if (!keep) {
			host_read(H, e, SIZE_MAX);
			close(fd);
		}
	}
}

static void op_accept(struct harness *H, struct script *s)
{
	uint8_t a = take8(s) % (NLISTEN + 1);
	for (int i = 0; i < NLISTEN; i++)
		if (a == NLISTEN || a == i)
			accept_all(H, &H->ls[i], true);
}

/* [socket][length class]: host bytes, the socket's own sequence. */
static void op_host_write(struct harness *H, struct script *s)
{
	struct endpoint *e = pick_endpoint(H, s);
	uint8_t b = take8(s);
	if (!e)
		return;
	if (e->nrest) {
		ssize_t n = send(e->fd, e->rest, e->nrest, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != e->nrest) {
			e->line_ok = false; /* only part of it went: never mind the rest */
			e->nrest = 0;
			return;
		}
		e->nrest = 0;
	}
	/* 1-64 bytes; 1-4 rx buffers' worth (one size of rx_sizes); multiples of 64, of
	 * 4 KiB; or all the socket takes. */
	size_t len;
	if (b < 0x40)
		len = 1 + (size_t)b;
	else if (b < 0x80)
		len = (rx_sizes[b & 15] > VSOCK_HDR_SIZE ? rx_sizes[b & 15] - VSOCK_HDR_SIZE : 1) *
		      (1 + (size_t)(b >> 4 & 3));
	else if (b < 0xc0)
		len = 64u * (b & 0x3fu) + 64;
	else if (b < 0xf0)
		len = 4096u * (b & 0xfu) + 4096;
	else
		len = sizeof(scratch);
	uint32_t eid = (uint32_t)(e - H->ep);
	for (size_t i = 0; i < len; i++)
		scratch[i] = host_byte(eid, e->sent + (uint32_t)i);
	ssize_t n = send(e->fd, scratch, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		e->sent += (uint32_t)n;
}

/* [socket][amount]: all that is there, or a little. */
static void op_host_read(struct harness *H, struct script *s)
{
	struct endpoint *e = pick_endpoint(H, s);
	uint8_t b = take8(s);
	if (e)
		host_read(H, e, b & 1 ? SIZE_MAX : 1 + (size_t)b * 16);
}

static void op_host_shut(struct harness *H, struct script *s)
{
	struct endpoint *e = pick_endpoint(H, s);
	if (e) {
		shutdown(e->fd, SHUT_WR);
		e->host_state = 1;
	}
}

/* [socket][how]: bit 0 reads everything first, so the close finds nothing unread. */
static void op_host_close(struct harness *H, struct script *s)
{
	struct endpoint *e = pick_endpoint(H, s);
	uint8_t b = take8(s);
	if (!e)
		return;
	if (b & 1)
		host_read(H, e, SIZE_MAX);
	int unread = 0;
	ioctl(e->fd, FIONREAD, &unread);
	e->host_state = unread > 0 ? 3 : 2;
	close(e->fd);
	e->fd = -1;
}

static void op_poll(struct harness *H, struct script *s)
{
	uint8_t rounds = 1 + (take8(s) & 3);
	for (uint8_t i = 0; i < rounds; i++) {
		vsock_poll(H->vs);
		settle(H, 31);
	}
}

static void op_expire(struct harness *H, struct script *s)
{
	static const uint32_t ms[8] = { 50, 150, 1000, 2001, 2100, 5001, 6000, 60000 };
	uint64_t later = timings_now() + ms[take8(s) & 7] * 1000000ULL;
	pthread_mutex_lock(&H->t.dev.lock);
	vsock_expire(H->vs, later);
	vsock_rx_process(H->vs);
	pthread_mutex_unlock(&H->t.dev.lock);
}

/* The driver resets the device and sets it up again. Chains the device held are
 * forgotten with it; the ones still in the rings are taken as the rings continue. */
static void op_reset(struct harness *H, struct script *s)
{
	pthread_mutex_lock(&H->t.dev.lock);
	H->t.dev.ops->reset(&H->t.dev);
	pthread_mutex_unlock(&H->t.dev.lock);
	if (H->vs->nconns || H->vs->rst_count || H->vs->rx_head >= 0)
		die("a reset left %u connections, %u RSTs", H->vs->nconns, H->vs->rst_count);
	for (uint32_t i = 0; i < 32; i++)
		H->gs[i].fwd_cnt = 0;
	H->t.dev.ops->activate(&H->t.dev);
}

/* [which]: a slow host from now on: the smallest send buffers on the device's sockets
 * (guest data backs up into its rings after a few KiB) and/or the host's (host
 * writes stop early), for the sockets open now and those to come. */
static void op_squeeze(struct harness *H, struct script *s)
{
	H->squeeze |= take8(s) & 3;
}

static void squeeze_sockets(struct harness *H)
{
	int size = 1;
	if (H->squeeze & 1)
		for (uint32_t i = 0; i < VSOCK_MAX_CONNS; i++) {
			struct vsock_conn *c = H->vs->conns[i];
			if (c && c->fd >= 0)
				setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		}
	if (H->squeeze & 2)
		for (uint32_t i = 0; i < H->nep; i++)
			if (H->ep[i].fd >= 0)
				setsockopt(H->ep[i].fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* [host port:3 guest port:2 value:3]: the buffer the guest advertises on a stream. */
static void op_credit(struct harness *H, struct script *s)
{
	static const uint32_t values[8] = { 0, 8, 100, 4096, 65536, 1u << 20, 0xffffffffu, 1 };
	uint8_t b = take8(s);
	uint32_t hport = host_ports[(b & 7) % 7], gport = guest_ports[b >> 3 & 3];
	gstream_of(H, hport, gport)->buf_alloc = values[b >> 5];
}

typedef void (*op_fn)(struct harness *H, struct script *s);

static const op_fn ops[] = {
	op_tx, op_tx, op_tx, op_rx, op_rx, op_connect, op_listen, op_accept, op_host_write,
	op_host_write, op_host_read, op_host_shut, op_host_close, op_poll, op_poll, op_expire,
	op_reset, op_squeeze, op_credit, op_kick,
};

/* ---- one input ---- */

static void start(struct harness *H)
{
	memset(H, 0, sizeof(*H));
	struct vsock_config cfg = { .guest_cid = CID, .uds_path = uds };
	if (vsock_backend_create(&cfg, &H->vs) < 0)
		abort();
	uint64_t features = F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_F_INDIRECT_DESC);
	if (vtd_init(&H->t, vsock_device_ops(), H->vs, MEM_MIB, features, 0) < 0 ||
	    vsock_attach(H->vs, &H->t.dev) < 0)
		abort();
	for (int q = 0; q < 2; q++) {
		for (uint32_t d = 0; d < QSIZE; d++)
			H->q[q].free[d] = (uint16_t)(QSIZE - 1 - d);
		H->q[q].nfree = QSIZE;
	}
	for (int i = 0; i < 32; i++)
		H->gs[i].buf_alloc = 65536;
	for (int i = 0; i < NLISTEN; i++)
		H->ls[i].fd = -1;
	H->newest_gport = guest_ports[0];
}

static void finish(struct harness *H)
{
	/* The guest keeps reading (a few 4 KiB buffers, one kick), then the device
	 * looks at its sockets once more. */
	struct script more = { (const uint8_t[]){ 0x93, 0x00 }, 2 };
	op_rx(H, &more);
	settle(H, 29);
	vsock_poll(H->vs);
	settle(H, 30);
	/* Every byte any host socket got, also those nobody accepted, under oracle (a). */
	for (int i = 0; i < NLISTEN; i++)
		accept_all(H, &H->ls[i], false);
	for (uint32_t i = 0; i < H->nep; i++)
		if (H->ep[i].fd >= 0) {
			host_read(H, &H->ep[i], SIZE_MAX);
			close(H->ep[i].fd);
		}
	for (int i = 0; i < NLISTEN; i++)
		if (H->ls[i].fd >= 0) {
			char path[128];
			listen_path(path, sizeof(path), host_ports[i]);
			close(H->ls[i].fd);
			unlink(path);
		}
	vtd_destroy(&H->t);
	vsock_backend_destroy(H->vs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	once();
	static struct harness H;
	int fds = count_fds();
	start(&H);
	cur = &H;
	struct script s = { data, size };
	for (int i = 0; s.n && i < MAX_OPS; i++) {
		uint32_t op = take8(&s) % (sizeof(ops) / sizeof(ops[0]));
		ops[op](&H, &s);
		settle(&H, op);
	}
	finish(&H);
	cur = NULL;
	if (count_fds() != fds)
		die("%d fds open after the input, %d before", count_fds(), fds);
	return 0;
}
