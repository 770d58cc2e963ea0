/* virtio-vsock (virtio 1.2, 5.10) in user space, Firecracker's hybrid model: the host
 * side of every guest stream is a unix-domain socket. Internal to the vsock files
 * (virtio_vsock.c and vsock_*.c) and their tests; the rest of argon sees only
 * virtio_vsock_create() in devices/virtio_vsock.h.
 *
 *   host -> guest: a host process connects to uds_path and writes "CONNECT <port>\n";
 *     the device sends the guest a REQUEST from an ephemeral host port and, on the
 *     guest's RESPONSE, answers "OK <host_port>\n" before relaying bytes.
 *   guest -> host: a guest REQUEST to host port P connects to "<uds_path>_P".
 *
 * All state is per connection and bounded: at most VSOCK_MAX_CONNS connections, each
 * holding at most VSOCK_BUF_ALLOC bytes the host has not read yet (the credit the
 * guest was given, 5.10.6.3), and a set of flags for the packets it owes the guest
 * (never a queue of packets). Host sockets are read only when the guest has credit
 * and has posted rx buffers, straight into those buffers. A stream's buffer exists
 * only while its host reads slower than its guest writes, so the worst case,
 * VSOCK_MAX_CONNS streams all full (256 MiB), needs a guest and hosts that both
 * keep it so.
 *
 * Lifetime: a connection is owned by its slot in vs->conns. A device pass (one
 * vsock_pass_begin/end bracket: a queue notification, an event-loop wakeup) walks
 * connections through pointers, and anything in it may end a stream (a host hang-up
 * met while reading, a guest RST, a timeout), so vsock_conn_free during a pass only
 * retires the connection: out of the hash and the rx list, its socket closed, its
 * gathered tx bytes dropped, state DEAD (every entry point ignores it), its slot
 * still held so no new stream takes it; the memory is released when the outermost
 * pass ends (vsock_conn_reap). Outside a pass nothing holds a connection and it is
 * released at once.
 *
 * Locking: everything runs under dev->lock, on the event loop thread, except reset
 * and read_config (vCPU threads, lock held too). The device's sockets live in its own
 * epoll set, which the VM's event loop watches as one fd, so a vCPU thread may close
 * them under the lock without racing the loop. */
#ifndef ARGON_DEVICES_VSOCK_H
#define ARGON_DEVICES_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "devices/virtio/virtio.h"
#include "devices/virtio_vsock.h" /* struct vsock_stats */

struct vsock_config;

/* virtio 1.2, 5.10.2 and 5.10.4. */
#define VSOCK_QUEUE_RX 0
#define VSOCK_QUEUE_TX 1
#define VSOCK_QUEUE_EVENT 2
#define VSOCK_NUM_QUEUES 3
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_CONFIG_SIZE 8 /* le64 guest_cid */
#define VSOCK_F_STREAM 0    /* 5.10.3 */

/* virtio 1.2, 5.10.6: the packet header and its constants. */
#define VSOCK_HDR_SIZE 44
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
/* 5.10.6.5: SHUTDOWN flags, permanent once sent. */
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u
#define VSOCK_SHUTDOWN_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

/* Limits. */
#define VSOCK_MAX_CONNS 1024
#define VSOCK_HASH_SIZE 2048		   /* buckets, a power of two */
#define VSOCK_BUF_ALLOC (256u * 1024)	   /* our buf_alloc per connection (5.10.6.3) */
#define VSOCK_CREDIT_LOW (VSOCK_BUF_ALLOC / 2) /* update the guest below this */
#define VSOCK_MAX_PKT_DATA (64u * 1024)	   /* payload per rx packet, as Linux's */
#define VSOCK_RST_QUEUE 64		   /* RSTs owed for packets with no connection */
#define VSOCK_CMD_MAX 32		   /* "CONNECT 4294967295\n" fits */
#define VSOCK_EPHEMERAL_BASE (1u << 30)	   /* host ports of host-initiated streams */
#define VSOCK_CMD_TIMEOUT_MS 5000	   /* host must send its CONNECT line */
#define VSOCK_CONNECT_TIMEOUT_MS 2000	   /* guest must answer a REQUEST */
#define VSOCK_SHUTDOWN_TIMEOUT_MS 2000	   /* 5.10.6.5: wait this long for an RST */
#define VSOCK_TIMER_PERIOD_MS 100
#define VSOCK_TX_BUDGET 256 /* chains per pass before yielding the loop */
#define VSOCK_BATCH_IOV 64  /* iovecs per writev / readv on a host socket */
#define VSOCK_RX_BATCH 64   /* rx chains one readv may fill */

/* epoll tags of the device's own epoll set: low 32 bits the kind (or slot +
 * VSOCK_TAG_CONN0), high 32 bits the slot's generation. */
#define VSOCK_TAG_LISTEN 1
#define VSOCK_TAG_TIMER 2
#define VSOCK_TAG_KICK 3
#define VSOCK_TAG_CONN0 16

/* A packet header in host byte order. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

/* What to do with a packet the guest sent. */
enum vsock_verdict {
	VSOCK_PKT_OK,	/* well formed: dispatch it */
	VSOCK_PKT_DROP, /* not addressed to us or not trustworthy: drop silently */
	VSOCK_PKT_RST,	/* addressed to us but unsupported: answer with RST */
};

/* vsock_packet.c */
void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE]);
/* Classifies a header the guest sent; payload_room is how many bytes follow the
 * header in the chain. *why names the rule broken (for logs) when not OK. */
enum vsock_verdict vsock_hdr_check(const struct vsock_hdr *h, uint32_t payload_room,
				   uint64_t guest_cid, const char **why);
/* Parses the host's "CONNECT <port>\n" line (len bytes, '\n' last). 0 or -EINVAL. */
int vsock_parse_connect(const char *line, uint32_t len, uint32_t *port);
/* iovecs for [offset, offset + len) of a chain's writable (or readable) part; returns
 * how many were filled (at most max), the bytes covered in *covered. */
int vsock_chain_iov(const struct virtq_chain *c, bool writable, uint32_t offset,
		    uint32_t len, struct iovec *iov, int max, uint32_t *covered);

/* Bytes accepted from the guest that the host has not read yet. Allocated on first
 * use, VSOCK_BUF_ALLOC bytes. */
struct vsock_ring {
	uint8_t *buf;
	uint32_t head, len;
};

/* A stream's states and the packets each takes (virtio 1.2, 5.10.6.4-5.10.6.5),
 * checked in vsock_tx.c (from the guest) and vsock_rx.c (to the guest):
 *
 * state                 from the guest                        to the guest
 * HOST_CMD              - (not hashed: unreachable)           -
 * HOST_CONNECTING,      none: the stream does not exist for   REQUEST (once an rx
 *   REQUEST not sent    the guest; RST replied, RST ignored   buffer is posted)
 * HOST_CONNECTING,      RESPONSE: ESTABLISHED, host gets OK;  -
 *   REQUEST sent        RST: refused, host sees EOF;
 *                       anything else: reset
 * ESTABLISHED           RW within credit (beyond: reset),     RESPONSE (guest-opened,
 *                       SHUTDOWN, CREDIT_UPDATE/REQUEST;      once), RW within the
 *                       RST: freed; REQUEST/RESPONSE dropped  guest's credit,
 *                                                             CREDIT_*, SHUTDOWN
 * CLOSING               SHUTDOWN, CREDIT_*; RW dropped (we    SHUTDOWN, CREDIT_UPDATE
 *                       shut both ways); RST: freed; timeout
 *                       sends our RST
 * RST_PENDING           RST: freed; anything else ignored     RST, then freed
 * DEAD                  - (not hashed: unreachable)           -
 *
 * A packet naming no stream is answered with RST unless it is one (5.10.6.5). */
enum vsock_conn_state {
	VSOCK_CONN_HOST_CMD,	    /* host connected to uds_path; its CONNECT line awaited */
	VSOCK_CONN_HOST_CONNECTING, /* REQUEST owed or sent to the guest; RESPONSE awaited */
	VSOCK_CONN_ESTABLISHED,
	VSOCK_CONN_CLOSING,	    /* we sent SHUTDOWN both ways; the guest's RST awaited */
	VSOCK_CONN_RST_PENDING,	    /* host side closed; an RST is owed to the guest */
	VSOCK_CONN_DEAD,	    /* freed during a pass: released when the pass ends */
};

/* Packets a connection owes the guest, sent in this order of priority. */
enum {
	VSOCK_P_RST = 1u << 0,
	VSOCK_P_REQUEST = 1u << 1,
	VSOCK_P_RESPONSE = 1u << 2,
	VSOCK_P_DATA = 1u << 3, /* the host socket has (or may have) data to read */
	VSOCK_P_CREDIT_REQUEST = 1u << 4,
	VSOCK_P_SHUTDOWN = 1u << 5,
	VSOCK_P_CREDIT_UPDATE = 1u << 6,
};

struct vsock_conn {
	uint32_t slot, gen;
	enum vsock_conn_state state;
	int fd;		 /* the unix socket, -1 once closed */
	uint32_t events; /* epoll interest now set */
	bool in_epoll;
	uint32_t host_port, guest_port; /* the stream's key once hashed */
	bool hashed;
	int32_t hash_next;
	bool guest_knows; /* the guest has seen (or sent) this stream's REQUEST */
	uint32_t pending; /* VSOCK_P_* */
	bool in_rx_list;
	int32_t rx_prev, rx_next;
	/* guest -> host (5.10.6.3: we are the receiver) */
	uint32_t rx_from_guest; /* payload bytes accepted from the guest */
	uint32_t fwd_cnt;	/* of those, bytes written to the host socket */
	uint32_t fwd_cnt_sent;	/* fwd_cnt as last told to the guest */
	struct vsock_ring ring;
	/* host -> guest (we are the sender) */
	uint32_t tx_cnt; /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool credit_requested;
	uint8_t peer_shut;  /* SHUTDOWN flags the guest sent */
	uint8_t local_shut; /* SHUTDOWN flags we sent (or owe) */
	bool host_eof;	    /* the host socket read 0: the host sends no more */
	bool host_hup;	    /* the host socket is gone both ways */
	bool host_wr_shut;  /* we shut the host socket for writing */
	uint64_t deadline_ns; /* 0: none */
	uint8_t cmd_len;
	char cmd[VSOCK_CMD_MAX];
};

/* Guest RW packets of one stream gathered for one writev (vsock_tx.c). Their chains
 * go back to the guest only after it: the iovecs point into them. */
struct vsock_tx_batch {
	struct vsock_conn *c; /* NULL: empty */
	uint32_t bytes;
	int niov;
	uint32_t nheads;
	struct iovec iov[VSOCK_BATCH_IOV];
	uint16_t heads[VSOCK_BATCH_IOV]; /* each chain adds at least one iovec */
};

/* rx chains after the held one that the same readv filled (vsock_rx.c): pushed right
 * after it, in order. */
struct vsock_rx_batch {
	uint32_t n;
	uint16_t head[VSOCK_RX_BATCH];
	uint32_t len[VSOCK_RX_BATCH]; /* payload bytes */
	uint8_t *hdr[VSOCK_RX_BATCH]; /* where the header goes: the chain's first writable
				       * buffer, at least VSOCK_HDR_SIZE long */
};

struct vsock {
	struct virtio_device *dev;
	struct event_loop *loop; /* where epfd is watched, once attached */
	uint64_t guest_cid;
	char *uds_path;
	int listen_fd, epfd, timer_fd, kick_fd;
	bool active; /* the driver set DRIVER_OK and has not reset since */
	bool timer_armed, listen_paused, tx_stalled, tx_more;
	bool reset_event_owed; /* restored: the guest is owed a TRANSPORT_RESET (5.10.6.6) */
	struct vsock_conn *conns[VSOCK_MAX_CONNS];
	uint32_t gens[VSOCK_MAX_CONNS];
	uint32_t nconns, ndeadlines; /* nconns counts DEAD ones until they are reaped */
	uint16_t dead[VSOCK_MAX_CONNS]; /* slots of DEAD connections */
	uint32_t ndead;
	int32_t buckets[VSOCK_HASH_SIZE];
	int32_t rx_head, rx_tail; /* connections owing the guest packets, round robin */
	struct { uint32_t host_port, guest_port; } rst[VSOCK_RST_QUEUE];
	uint32_t rst_head, rst_count;
	uint32_t next_port;
	struct vsock_stats stats;
	uint32_t pass_depth;   /* vsock_pass_begin() nesting */
	uint32_t used_pending; /* queues (bit per queue) with completions not yet signalled */
	struct vsock_tx_batch txb;
	struct vsock_rx_batch rxb;
	/* Scratch, here rather than on the stack: chains hold VIRTQ_MAX_SIZE buffers. */
	bool rx_held; /* rx_chain was popped and not yet used */
	struct virtq_chain rx_chain, tx_chain, rx_extra;
	struct iovec iov[VIRTQ_MAX_SIZE];
};

/* virtio_vsock.c: the backend without a transport (unit tests, fuzzing). */
int vsock_backend_create(const struct vsock_config *cfg, struct vsock **out);
/* Closes everything; call after the event loop the device was attached to is gone. */
void vsock_backend_destroy(struct vsock *vs);
/* Binds the backend to its transport and watches its epoll set on the VM's loop. */
int vsock_attach(struct vsock *vs, struct virtio_device *dev);
/* The ops table the transport drives. */
const struct virtio_device_ops *vsock_device_ops(void);
/* Handles whatever the device's sockets and timer have ready (what the event loop
 * calls); takes dev->lock. */
void vsock_poll(struct vsock *vs);
/* Runs the housekeeping timer while a deadline or a paused listener needs it. */
void vsock_timer_update(struct vsock *vs);
/* Wakes the device on the event loop (after activate, or to continue a long pass). */
void vsock_schedule(struct vsock *vs);
/* One pass of the device (an event-loop callback, nestable): completions are only
 * recorded (vsock_used) while it runs, and vsock_pass_end raises at most one
 * used-buffer interrupt for all queues, through EVENT_IDX suppression (virtio 1.2,
 * 2.7.10). */
void vsock_pass_begin(struct vsock *vs);
void vsock_pass_end(struct vsock *vs);
void vsock_used(struct vsock *vs, uint32_t q);

/* vsock_conn.c: the connection table. */
struct vsock_conn *vsock_conn_new(struct vsock *vs, int fd, enum vsock_conn_state state);
/* Ends the stream: at once outside a pass, at the pass's end inside one (above). */
void vsock_conn_free(struct vsock *vs, struct vsock_conn *c);
/* Releases the connections freed during the pass that just ended. */
void vsock_conn_reap(struct vsock *vs);
struct vsock_conn *vsock_conn_lookup(struct vsock *vs, uint32_t host_port, uint32_t guest_port);
struct vsock_conn *vsock_conn_by_tag(struct vsock *vs, uint64_t tag);
uint64_t vsock_conn_tag(const struct vsock_conn *c);
void vsock_conn_hash(struct vsock *vs, struct vsock_conn *c, uint32_t host_port,
		     uint32_t guest_port);
uint32_t vsock_alloc_port(struct vsock *vs, uint32_t guest_port);
void vsock_conn_want(struct vsock *vs, struct vsock_conn *c, uint32_t packets);
struct vsock_conn *vsock_rx_list_pop(struct vsock *vs);
void vsock_conn_set_deadline(struct vsock *vs, struct vsock_conn *c, uint64_t ms);
void vsock_conn_clear_deadline(struct vsock *vs, struct vsock_conn *c);
/* Brings the epoll interest in line with the state (read only with guest credit and
 * no read pending, write only with bytes buffered). */
void vsock_conn_sync(struct vsock *vs, struct vsock_conn *c);
/* Bytes the guest can still take on this stream (5.10.6.3), 0 when it is violated. */
uint32_t vsock_peer_credit(const struct vsock_conn *c);
bool vsock_conn_wants_read(const struct vsock_conn *c);
/* Takes the credit fields every guest packet carries (5.10.6.3). */
void vsock_conn_peer_credit_update(struct vsock *vs, struct vsock_conn *c,
				   const struct vsock_hdr *h);
/* Queues a CREDIT_UPDATE when the guest's view of our free space fell low. */
void vsock_conn_credit_check(struct vsock *vs, struct vsock_conn *c);
/* Closes the host side at once and owes the guest an RST (5.10.6.5), or frees the
 * connection when the guest never heard of it. */
void vsock_conn_reset(struct vsock *vs, struct vsock_conn *c, const char *why);
/* We tell the guest we send (SEND) or take (RCV) no more; both begins the orderly
 * close with its timeout. */
void vsock_conn_shutdown_local(struct vsock *vs, struct vsock_conn *c, uint32_t flags);
/* The host socket is gone both ways (hang-up, reset, broken pipe). */
void vsock_conn_host_gone(struct vsock *vs, struct vsock_conn *c);
void vsock_conn_free_all(struct vsock *vs);
/* Expires deadlines that passed by now. */
void vsock_expire(struct vsock *vs, uint64_t now_ns);
/* Queues an RST for a packet with no connection; false when the queue is full. */
bool vsock_rst_reply(struct vsock *vs, uint32_t host_port, uint32_t guest_port);

/* vsock_ring (in vsock_conn.c): the per-connection guest -> host buffer. */
uint32_t vsock_ring_room(const struct vsock_ring *r);
int vsock_ring_put_chain(struct vsock_ring *r, const struct virtq_chain *c, uint32_t offset,
			 uint32_t len);
/* Appends what iov[0..n) holds past its first skip bytes. 0, -ENOSPC or -ENOMEM. */
int vsock_ring_put_iov(struct vsock_ring *r, const struct iovec *iov, int n, uint32_t skip);
int vsock_ring_iov(const struct vsock_ring *r, struct iovec iov[2]);
void vsock_ring_consume(struct vsock_ring *r, uint32_t n);
void vsock_ring_free(struct vsock_ring *r);

/* vsock_uds.c: the unix-socket side. */
int vsock_uds_listen(const char *path, int *out_fd);
int vsock_uds_connect_port(const char *uds_path, uint32_t port);
/* Reads the host's command line without consuming what follows it: 1 complete, 0 more
 * to come, -errno to drop the connection. */
int vsock_uds_read_cmd(int fd, char *buf, uint8_t *len);
ssize_t vsock_uds_send(int fd, const struct iovec *iov, int n);
ssize_t vsock_uds_recv(int fd, const struct iovec *iov, int n);
void vsock_accept_all(struct vsock *vs);
void vsock_host_cmd(struct vsock *vs, struct vsock_conn *c);
/* Writes buffered guest bytes to the host socket; follows up on shutdowns. */
void vsock_flush_to_host(struct vsock *vs, struct vsock_conn *c);
/* Everything the guest sent reached the host: its shutdowns take effect. Returns
 * true when the stream ended (c is then reset). */
bool vsock_conn_after_drain(struct vsock *vs, struct vsock_conn *c);
void vsock_conn_on_events(struct vsock *vs, struct vsock_conn *c, uint32_t events);

/* vsock_tx.c: guest -> host. */
void vsock_tx_process(struct vsock *vs);
/* One packet the guest sent, its header at the start of chain (exposed for fuzzing).
 * Returns true when its payload joined vs->txb: the caller then records the chain's
 * head there (vsock_tx_flush gives it back), and must not give it back itself. */
bool vsock_tx_packet(struct vsock *vs, const struct virtq_chain *chain);
/* Writes the gathered packets with one writev (what the socket does not take goes to
 * the stream's ring) and gives their chains back to the guest. */
void vsock_tx_flush(struct vsock *vs);

/* vsock_rx.c: host -> guest. */
void vsock_rx_process(struct vsock *vs);
bool vsock_queues_usable(const struct vsock *vs);

#endif
