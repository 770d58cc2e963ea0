/* Stream sockets over virtio-vsock (virtio 1.2, 5.10.6): connect to the host
 * (CID 2), listen on a port, send and receive with credit flow control
 * (5.10.6.3): we advertise buf_alloc (our receive buffer per connection)
 * and fwd_cnt (bytes our side consumed) in every packet, and never send the
 * peer more than its buf_alloc - (tx_cnt - its fwd_cnt). */
#ifndef GUEST_VSOCK_SOCKET_H
#define GUEST_VSOCK_SOCKET_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/vsock.h"

#define VS_MAX_CONNS 8
#define VS_BUF_ALLOC (256u << 10) /* our receive buffer per connection */

enum vs_state { VS_FREE, VS_CONNECTING, VS_CONNECTED, VS_CLOSING };

struct vs_conn {
	enum vs_state state;
	uint32_t local_port, peer_port;
	uint8_t *rx_ring;	 /* VS_BUF_ALLOC bytes */
	uint32_t rx_head;	 /* bytes received (ring write position) */
	uint32_t fwd_cnt;	 /* bytes consumed (ring read position) */
	uint32_t fwd_cnt_sent;	 /* fwd_cnt the peer last heard */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;	 /* bytes sent */
	uint32_t peer_shutdown;	 /* VSOCK_SHUTDOWN_* the peer sent */
	bool reset;		 /* the peer sent RST (or refused) */
	bool fresh;		 /* accepted, not yet returned by vs_accept */
	uint64_t credit_wait_since; /* TSC when we first found no credit, 0 */
	uint64_t dropped;	 /* bytes beyond our buffer (a peer ignoring credit) */
};

/* Starts the device; false after a message naming cmd. */
bool vs_init(const char *cmd);
/* Starts it afresh with no connection; post_rx as vsock_restart. */
bool vs_restart(const char *cmd, bool post_rx);
uint64_t vs_guest_cid(void);

/* Accept connections to port (0 stops listening). */
void vs_listen(uint32_t port);
/* A connection accepted since the last call, or NULL. */
struct vs_conn *vs_accept(void);

/* Connects to the host's port, waiting up to timeout_us; NULL on refusal
 * or timeout (after a message naming cmd). */
struct vs_conn *vs_connect(uint32_t port, uint64_t timeout_us, const char *cmd);

/* Handles received packets; returns how many. */
int vs_poll(void);
/* Sleeps until something may have happened (or any interrupt). */
void vs_idle(void);

/* Sends up to len bytes as credit and transmit slots allow; returns how many. */
uint32_t vs_send(struct vs_conn *c, const void *data, uint32_t len);
/* Bytes received and not yet consumed. */
uint32_t vs_readable(const struct vs_conn *c);
/* Copies up to len received bytes out (buf may be NULL to drop them), and
 * tells the peer about the new room when it grew enough. */
uint32_t vs_recv(struct vs_conn *c, void *buf, uint32_t len);
/* Contiguous received bytes at the read position (for echoing in place). */
const uint8_t *vs_peek(const struct vs_conn *c, uint32_t *len);

/* Clean close (5.10.6.5): SHUTDOWN both ways, then wait up to timeout_us
 * for the peer's RST, else send RST. The slot is free afterwards. */
void vs_close(struct vs_conn *c, uint64_t timeout_us);
/* Immediate close: RST. */
void vs_reset(struct vs_conn *c);

/* Connection slot i (any state), for servers that walk them. */
struct vs_conn *vs_conn_at(int i);

/* Between socket.c and stream.c. */
struct vsock_dev *vs_dev(void);
struct vs_conn *vs_conn_new(uint32_t local_port, uint32_t peer_port, enum vs_state state);
bool vs_conn_control(struct vs_conn *c, uint16_t op, uint32_t flags);
uint32_t vs_next_port(void);

#endif
