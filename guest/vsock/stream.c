/* vsock streams (socket.h): connecting, sending within the peer's credit
 * (5.10.6.3), receiving and returning credit, closing (5.10.6.5). */
#include "cpu.h"
#include "printf.h"
#include "string.h"
#include "timer.h"
#include "vsock/socket.h"

#define CREDIT_REQUEST_US 100000

static bool passed(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) >= 0;
}

struct vs_conn *vs_connect(uint32_t port, uint64_t timeout_us, const char *cmd)
{
	struct vs_conn *c = vs_conn_new(vs_next_port(), port, VS_CONNECTING);
	uint64_t end = deadline_after_us(timeout_us);

	if (!c) {
		printf("%s: too many vsock connections\n", cmd);
		return 0;
	}
	c->peer_buf_alloc = 0;
	vs_conn_control(c, VSOCK_OP_REQUEST, 0);
	while (c->state == VS_CONNECTING && !c->reset && !passed(end))
		if (!vs_poll())
			vs_idle();
	if (c->state == VS_CONNECTED && !c->reset)
		return c;
	printf("%s: connection to host port %u %s\n", cmd, port, c->reset ? "refused" : "timed out");
	vs_reset(c);
	return 0;
}

/* Bytes the peer can still take (its buf_alloc minus what is in flight). */
static uint32_t credit(const struct vs_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* Out of credit for a while: ask (5.10.6.3, CREDIT_REQUEST), once per wait. */
static void starved(struct vs_conn *c)
{
	uint64_t now = rdtsc();

	if (!c->credit_wait_since) {
		c->credit_wait_since = now;
	} else if (tsc_to_ns(now - c->credit_wait_since) > CREDIT_REQUEST_US * 1000) {
		vs_conn_control(c, VSOCK_OP_CREDIT_REQUEST, 0);
		c->credit_wait_since = 0;
	}
}

uint32_t vs_send(struct vs_conn *c, const void *data, uint32_t len)
{
	struct vsock_dev *v = vs_dev();
	uint32_t sent = 0;

	if (c->state != VS_CONNECTED || c->reset || (c->peer_shutdown & VSOCK_SHUTDOWN_RCV))
		return 0;
	while (sent < len) {
		uint32_t n = len - sent, room = credit(c);
		struct vsock_hdr h;

		if (!room) {
			starved(c);
			break;
		}
		n = n < room ? n : room;
		n = n < VSOCK_PKT_MAX ? n : VSOCK_PKT_MAX;
		h = (struct vsock_hdr){ .src_cid = v->guest_cid, .dst_cid = VSOCK_HOST_CID,
					.src_port = c->local_port, .dst_port = c->peer_port,
					.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RW,
					.buf_alloc = VS_BUF_ALLOC, .fwd_cnt = c->fwd_cnt };
		if (!vsock_send(v, &h, (const uint8_t *)data + sent, n))
			break;
		c->fwd_cnt_sent = c->fwd_cnt;
		c->tx_cnt += n;
		sent += n;
		c->credit_wait_since = 0;
	}
	vsock_kick(v);
	return sent;
}

uint32_t vs_readable(const struct vs_conn *c)
{
	return c->rx_head - c->fwd_cnt;
}

const uint8_t *vs_peek(const struct vs_conn *c, uint32_t *len)
{
	uint32_t at = c->fwd_cnt % VS_BUF_ALLOC, n = vs_readable(c);

	*len = n < VS_BUF_ALLOC - at ? n : VS_BUF_ALLOC - at;
	return c->rx_ring + at;
}

/* The peer hears about freed room once a quarter of the buffer is free
 * again: often enough that it never stalls, rarely enough to be cheap. */
uint32_t vs_recv(struct vs_conn *c, void *buf, uint32_t len)
{
	uint32_t done = 0;

	while (done < len && vs_readable(c)) {
		uint32_t n;
		const uint8_t *p = vs_peek(c, &n);

		n = n < len - done ? n : len - done;
		if (buf)
			memcpy((uint8_t *)buf + done, p, n);
		c->fwd_cnt += n;
		done += n;
	}
	if (c->fwd_cnt - c->fwd_cnt_sent >= VS_BUF_ALLOC / 4 && !c->reset)
		vs_conn_control(c, VSOCK_OP_CREDIT_UPDATE, 0);
	return done;
}

void vs_reset(struct vs_conn *c)
{
	if (!c->reset)
		vs_conn_control(c, VSOCK_OP_RST, 0);
	c->state = VS_FREE;
}

void vs_close(struct vs_conn *c, uint64_t timeout_us)
{
	uint64_t end = deadline_after_us(timeout_us);

	if (!c->reset) {
		c->state = VS_CLOSING;
		vs_conn_control(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
		while (!c->reset && !passed(end)) {
			vs_recv(c, 0, vs_readable(c)); /* data in flight is dropped */
			if (!vs_poll())
				vs_idle();
		}
	}
	vs_reset(c);
}
