/* vsock-bench PORT [SECONDS]: stream throughput to and from the host. First
 * a connection to host port PORT that the guest fills for SECONDS (2; the
 * host side reads and discards), then one to PORT+1 that the host fills
 * while the guest reads and discards. */
#include "commands/commands.h"
#include "cpu.h"
#include "power.h"
#include "printf.h"
#include "timer.h"
#include "virtio/virtqueue.h"
#include "vsock/socket.h"

#define CONNECT_TIMEOUT_US 5000000
#define CLOSE_TIMEOUT_US 1000000
#define CHUNK 65536

static uint8_t chunk[CHUNK];

static uint64_t mib_s(uint64_t bytes, uint64_t cycles)
{
	uint64_t ns = tsc_to_ns(cycles);

	return ns ? bytes / 1024 * 1000000000ul / ns / 1024 : 0;
}

/* Returns bytes sent; *cycles the time taken. */
static uint64_t run_tx(struct vs_conn *c, uint64_t seconds, uint64_t *cycles)
{
	uint64_t t0 = rdtsc(), end = deadline_after_us(seconds * 1000000), bytes = 0;

	while (!deadline_passed(end) && !c->reset) {
		uint32_t n = vs_send(c, chunk, CHUNK);

		bytes += n;
		if (!vs_poll() && !n)
			vs_idle();
	}
	*cycles = rdtsc() - t0;
	return bytes;
}

static uint64_t run_rx(struct vs_conn *c, uint64_t seconds, uint64_t *cycles)
{
	uint64_t t0 = rdtsc(), end = deadline_after_us(seconds * 1000000), bytes = 0;

	while (!deadline_passed(end) && !c->reset) {
		uint32_t n = vs_recv(c, 0, vs_readable(c));

		bytes += n;
		if (!vs_poll() && !n)
			vs_idle();
	}
	*cycles = rdtsc() - t0;
	return bytes;
}

static int vsock_bench(int argc, char **argv)
{
	uint64_t port, seconds, tx, rx, tx_c, rx_c, kicks0;
	struct vs_conn *c;

	if (argc < 2 || argc > 3 || arg_u64(argc, argv, 1, 0, 1, 0xfffffffe, &port) ||
	    arg_u64(argc, argv, 2, 2, 1, 3600, &seconds))
		return STATUS_USAGE;
	if (!vs_init("vsock-bench"))
		return STATUS_FAILED;
	kicks0 = vs_dev()->txq.kicks;
	if (!(c = vs_connect((uint32_t)port, CONNECT_TIMEOUT_US, "vsock-bench")))
		return STATUS_FAILED;
	tx = run_tx(c, seconds, &tx_c);
	vs_close(c, CLOSE_TIMEOUT_US);
	if (!(c = vs_connect((uint32_t)port + 1, CONNECT_TIMEOUT_US, "vsock-bench")))
		return STATUS_FAILED;
	rx = run_rx(c, seconds, &rx_c);
	vs_close(c, CLOSE_TIMEOUT_US);
	printf("vsock-bench: tx_mib_s %lu rx_mib_s %lu\n", mib_s(tx, tx_c), mib_s(rx, rx_c));
	printf("vsock-bench: tx_bytes %lu rx_bytes %lu tx_kicks %lu\n", tx, rx,
	       vs_dev()->txq.kicks - kicks0);
	return tx && rx ? STATUS_OK : STATUS_FAILED;
}

const struct command cmd_vsock_bench = { "vsock-bench", "PORT [S]",
					 "stream MiB/s to host PORT, from PORT+1", vsock_bench };
