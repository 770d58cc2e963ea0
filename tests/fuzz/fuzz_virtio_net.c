/* libFuzzer target for virtio-net's transmit and receive parsing: the input is a
 * script for a hostile driver (raw descriptors, indirect tables, avail indices, kicks,
 * resets) and a hostile host side (frames of any size arriving on the "tap"), played
 * against the device through the fake driver, with a SOCK_SEQPACKET socket as the
 * tap. A crash, a sanitizer report or a broken invariant (__builtin_trap) is a
 * finding.
 *
 * Input: [0] negotiated features (bit 0 MRG_RXBUF, 1 EVENT_IDX, 2 INDIRECT_DESC,
 * 3 HOST_TSO4, 4 CSUM, 5 HOST_TSO6, 6 GUEST_CSUM, 7 GUEST_TSO4), then up to 64 ops:
 * 0-1 raw descriptors + a head, 2 a frame from the host, 3 a kick, 4 one event-loop
 * pass, 5 a raw avail->idx, 6 bytes into the buffer arena, 7 a device reset.
 * Build and run: make build/fuzz/fuzz_virtio_net, or make fuzz and make fuzz-run.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio_net.h"
#include "vmm/event_loop.h"
#include "virtio_test_driver.h"

#define FUZZ_MEM_MIB 4
#define FUZZ_QSIZE 8
#define ARENA_SIZE (256u << 10) /* buffers the descriptors point into */
#define MAX_FRAME (12 + 65550)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static uint8_t next8(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static uint16_t next16(struct input *in)
{
	return (uint16_t)(next8(in) | next8(in) << 8);
}

struct fuzz {
	struct vtd t;
	struct virtio_net *net;
	int host;
	uint64_t arena_gpa;
	uint8_t *arena;
};

static uint64_t features_from(uint8_t b)
{
	static const unsigned bits[] = {
		VIRTIO_NET_F_MRG_RXBUF, VIRTIO_F_EVENT_IDX,	 VIRTIO_F_INDIRECT_DESC,
		VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM,	 VIRTIO_NET_F_HOST_TSO6,
		VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4,
	};
	uint64_t f = 1ULL << VIRTIO_F_VERSION_1;
	for (unsigned i = 0; i < 8; i++)
		if (b & (1u << i))
			f |= 1ULL << bits[i];
	return f;
}

/* An address: mostly inside the arena, sometimes anywhere (outside RAM, the rings). */
static uint64_t fuzz_addr(struct fuzz *z, struct input *in)
{
	uint8_t kind = next8(in);
	if (kind < 224)
		return z->arena_gpa + (uint64_t)next16(in) * 4;
	if (kind < 240)
		return (uint64_t)next16(in) << 8;
	uint64_t a = 0;
	for (int i = 0; i < 8; i++)
		a = a << 8 | next8(in);
	return a;
}

/* Writes n raw descriptors at their table slots and publishes the first as a head. */
static void op_descriptors(struct fuzz *z, struct input *in)
{
	uint32_t q = next8(in) & 1;
	struct vtd_desc *table = vtd_desc_table(&z->t, q);
	unsigned n = next8(in) % 6 + 1;
	uint16_t head = next8(in) % FUZZ_QSIZE, slot = head;
	for (unsigned i = 0; i < n; i++) {
		table[slot].addr = fuzz_addr(z, in);
		table[slot].len = next8(in) < 200 ? next16(in) % 4096 : next16(in) * 16u;
		table[slot].flags = next8(in) & 7;
		table[slot].next = next8(in) % (FUZZ_QSIZE + 2);
		slot = table[slot].next % FUZZ_QSIZE;
	}
	vtd_add_head(&z->t, q, head);
}

/* The host side: a frame of any size arrives on the tap. */
static void op_host_frame(struct fuzz *z, struct input *in)
{
	static uint8_t frame[MAX_FRAME + 16];
	uint32_t len = next8(in) < 240 ? next16(in) % 2048 : next16(in) % (MAX_FRAME + 16);
	for (uint32_t i = 0; i < len; i++)
		frame[i] = (uint8_t)(i * 31 + len);
	if (len && in->left)
		memcpy(frame, in->p, len < in->left ? len : in->left);
	if (send(z->host, frame, len, MSG_DONTWAIT) < 0)
		return; /* socket full: fine */
}

/* Frames the device wrote to the tap must be whole: a header and at least an
 * Ethernet header, no more than a tap takes. */
static void drain_host(struct fuzz *z)
{
	static uint8_t buf[MAX_FRAME + 16];
	ssize_t n;
	while ((n = recv(z->host, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
		if (n < 12 + 14 || n > MAX_FRAME)
			__builtin_trap();
}

/* Used entries name real heads; transmit ones report 0 bytes written. */
static void check_used(struct fuzz *z)
{
	uint32_t id, len;
	for (uint32_t q = 0; q < 2; q++)
		while (vtd_get_used(&z->t, q, &id, &len))
			if (id >= FUZZ_QSIZE || (q == VIRTIO_NET_TXQ && len) || len > MAX_FRAME)
				__builtin_trap();
}

static void run_op(struct fuzz *z, struct input *in)
{
	uint8_t op = next8(in) % 8;
	switch (op) {
	case 0: case 1: op_descriptors(z, in); break;
	case 2: op_host_frame(z, in); break;
	case 3: vtd_kick(&z->t, next8(in) & 1); break;
	case 4: event_loop_run_once(z->t.vm.loop, 0); break;
	case 5: vtd_set_avail_idx(&z->t, next8(in) & 1, next16(in)); break;
	case 6: {
		uint32_t n = next16(in) % 512, off = next16(in) * 4u % ARENA_SIZE;
		for (uint32_t i = 0; i < n && off + i < ARENA_SIZE; i++)
			z->arena[off + i] = next8(in);
		break;
	}
	default:
		pthread_mutex_lock(&z->t.dev.lock);
		virtio_net_ops.reset(&z->t.dev);
		pthread_mutex_unlock(&z->t.dev.lock);
		break;
	}
	drain_host(z);
	check_used(z);
}

static int fuzz_init(struct fuzz *z, uint8_t feature_byte)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	struct tap tap;
	struct net_config cfg = { .iface_id = "fuzz", .tap_fd = -1 };
	if (tap_from_packet_fd(&tap, sv[0]) || virtio_net_backend_new(&cfg, &tap, &z->net))
		abort();
	z->host = sv[1];
	if (vtd_init(&z->t, &virtio_net_ops, z->net, FUZZ_MEM_MIB, features_from(feature_byte),
		     FUZZ_QSIZE))
		abort();
	z->arena_gpa = vtd_alloc(&z->t, ARENA_SIZE, (void **)&z->arena);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz z;
	log_set_level(LOG_ERROR); /* ring-broken warnings would flood the output */
	struct input in = { data, size };
	memset(&z, 0, sizeof(z));
	fuzz_init(&z, next8(&in));
	for (int ops = 0; in.left && ops < 64; ops++)
		run_op(&z, &in);
	vtd_destroy(&z.t);
	virtio_net_backend_free(z.net);
	close(z.host);
	return 0;
}
