/* vsock-echo, vsock-connect: stream sockets over virtio-vsock to the host
 * (CID 2). In Firecracker's hybrid model a host process reaches a guest port
 * through the VM's unix socket ("CONNECT <port>\n"), and a guest connection
 * to host port P reaches the unix socket <uds_path>_P. */
#include "commands/commands.h"
#include "power.h"
#include "printf.h"
#include "string.h"
#include "virtio/virtqueue.h"
#include "vsock/socket.h"

#define CONNECT_TIMEOUT_US 5000000
#define REPLY_TIMEOUT_US 5000000
#define CLOSE_TIMEOUT_US 1000000
#define MSG_MAX 512

struct echo_stats {
	uint64_t connections, bytes, dropped;
};

/* Echoes what c has received, as far as the peer's credit allows; returns
 * the bytes echoed. The peer's data is consumed (credit returned) only once
 * it is echoed, so a peer that does not read stalls itself, not us. */
static uint32_t echo_some(struct vs_conn *c)
{
	uint32_t total = 0, n, sent;
	const uint8_t *p;

	while (vs_readable(c)) {
		p = vs_peek(c, &n);
		if (!(sent = vs_send(c, p, n)))
			break;
		vs_recv(c, 0, sent);
		total += sent;
	}
	return total;
}

/* One pass over the connections to port; returns true when anything moved. */
static bool serve(uint32_t port, struct echo_stats *st)
{
	bool moved = false;

	while (vs_accept())
		moved = true;
	for (int i = 0; i < VS_MAX_CONNS; i++) {
		struct vs_conn *c = vs_conn_at(i);
		uint32_t n;

		if (c->state != VS_CONNECTED || c->local_port != port)
			continue;
		n = echo_some(c);
		st->bytes += n;
		moved |= n > 0;
		/* 5.10.6.5: a peer's SHUTDOWN is answered with RST once we are done. */
		if (c->reset || (c->peer_shutdown & VSOCK_SHUTDOWN_RCV) ||
		    ((c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && !vs_readable(c))) {
			st->dropped += c->dropped;
			vs_reset(c);
			st->connections++;
			moved = true;
		}
	}
	return moved;
}

/* vsock-echo [PORT] [SECONDS] [N]: until SECONDS pass (0: no limit), N
 * connections have closed (0: no limit), or a key is typed. */
static int vsock_echo(int argc, char **argv)
{
	uint64_t port, seconds, max_conns, end;
	struct echo_stats st = { 0, 0, 0 };

	if (argc > 4 || arg_u64(argc, argv, 1, 1234, 1, 0xffffffff, &port) ||
	    arg_u64(argc, argv, 2, 0, 0, 1000000, &seconds) ||
	    arg_u64(argc, argv, 3, 0, 0, 1000000, &max_conns))
		return STATUS_USAGE;
	if (!vs_init("vsock-echo"))
		return STATUS_FAILED;
	vs_listen((uint32_t)port);
	printf("vsock-echo: listening cid %lu port %lu\n", vs_guest_cid(), port);
	end = seconds ? deadline_after_us(seconds * 1000000) : 0;
	while (!deadline_passed(end) && !console_key_pressed() &&
	       (!max_conns || st.connections < max_conns)) {
		bool moved = vs_poll() > 0;

		if (!serve((uint32_t)port, &st) && !moved)
			vs_idle();
	}
	vs_listen(0);
	/* dropped: bytes that arrived beyond the credit we gave (a peer's fault). */
	printf("vsock-echo: connections %lu bytes %lu dropped %lu\n", st.connections, st.bytes,
	       st.dropped);
	return STATUS_OK;
}

static uint32_t join_args(int argc, char **argv, int from, char *out, uint32_t max)
{
	uint32_t n = 0;

	for (int i = from; i < argc; i++)
		n += snprintf(out + n, max - n, i + 1 < argc ? "%s " : "%s\n", argv[i]);
	return n < max ? n : max - 1;
}

/* Sends len bytes, then reads until as many came back, a newline, the
 * peer's shutdown, or the timeout. Returns the bytes received. */
static uint32_t exchange(struct vs_conn *c, const char *msg, uint32_t len, char *reply)
{
	uint64_t end = deadline_after_us(REPLY_TIMEOUT_US);
	uint32_t sent = 0, got = 0;

	while (!deadline_passed(end) && !c->reset && got < len &&
	       !(got && reply[got - 1] == '\n') && !(c->peer_shutdown & VSOCK_SHUTDOWN_SEND)) {
		bool moved = vs_poll() > 0;
		uint32_t n;

		if (sent < len && (n = vs_send(c, msg + sent, len - sent))) {
			sent += n;
			moved = true;
		}
		if ((n = vs_recv(c, reply + got, len - got))) {
			got += n;
			moved = true;
		}
		if (!moved)
			vs_idle();
	}
	return got;
}

/* vsock-connect PORT MSG...: sends MSG and a newline to host port PORT and
 * prints what comes back. */
static int vsock_connect(int argc, char **argv)
{
	static char msg[MSG_MAX], reply[MSG_MAX];
	uint64_t port;
	uint32_t len, got;
	struct vs_conn *c;

	if (argc < 3 || arg_u64(argc, argv, 1, 0, 1, 0xffffffff, &port)) {
		printf("vsock-connect: expected PORT MSG\n");
		return STATUS_USAGE;
	}
	len = join_args(argc, argv, 2, msg, sizeof(msg));
	if (!vs_init("vsock-connect") ||
	    !(c = vs_connect((uint32_t)port, CONNECT_TIMEOUT_US, "vsock-connect")))
		return STATUS_FAILED;
	got = exchange(c, msg, len, reply);
	vs_close(c, CLOSE_TIMEOUT_US);
	if (got && reply[got - 1] == '\n')
		got--;
	reply[got] = 0;
	printf("vsock-connect: reply %s\n", reply);
	return got ? STATUS_OK : STATUS_FAILED;
}

const struct command cmd_vsock_echo = { "vsock-echo", "[PORT] [S] [N]",
					"echo vsock connections to PORT (1234)", vsock_echo };
const struct command cmd_vsock_connect = { "vsock-connect", "PORT MSG",
					   "send MSG to the host's PORT, print the reply",
					   vsock_connect };
