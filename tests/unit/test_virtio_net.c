/* virtio-net through the fake driver, with a SOCK_SEQPACKET socket standing in for
 * the tap (one frame per message, like a tap): transmit reaches the "tap", receive
 * fills buffers (mergeable across chains), the tap is left alone while the guest has
 * no buffers, hostile chains cost one frame, offloads the driver did not take (or
 * took before a reset) never reach it, rate limiters park and resume work.
 * When /dev/net/tun is usable the tap itself is checked too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/tap.h"
#include "devices/virtio_net.h"
#include "vmm/event_loop.h"
#include "virtio_test_driver.h"

#define QSIZE 16
#define HDR 12
#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define F(bit) (1ULL << (bit))
#define BASE_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_NET_F_MAC) | \
		       F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CSUM))
#define MRG_FEATURES (BASE_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF))

struct fixture {
	struct vtd t;
	struct virtio_net *net;
	int host;   /* the test's end of the socket that plays the tap */
	int devfd;  /* the device's end */
};

static int setup_with(void **state, uint64_t features, const struct net_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct tap tap;
	assert_int_equal(tap_from_packet_fd(&tap, sv[0]), 0);
	struct net_config def = { .iface_id = "eth0", .tap_fd = -1 };
	assert_int_equal(virtio_net_backend_new(cfg ? cfg : &def, &tap, &f->net), 0);
	assert_int_equal(vtd_init(&f->t, &virtio_net_ops, f->net, 16, features, QSIZE), 0);
	f->host = sv[1];
	f->devfd = sv[0];
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, BASE_FEATURES, NULL);
}

static int setup_mrg(void **state)
{
	return setup_with(state, MRG_FEATURES, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vtd_destroy(&f->t);
	virtio_net_backend_free(f->net);
	close(f->host);
	free(f);
	return 0;
}

static struct virtio_net_stats stats(struct fixture *f)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(&f->t.dev, &s);
	return s;
}

/* A transmit chain: the header then the frame, split in two readable buffers. */
static uint16_t post_tx(struct fixture *f, const struct virtio_net_hdr *hdr,
			const uint8_t *frame, uint32_t len)
{
	uint8_t *a, *b;
	uint32_t first = len / 2;
	uint64_t ga = vtd_alloc(&f->t, HDR + first, (void **)&a);
	uint64_t gb = vtd_alloc(&f->t, len - first, (void **)&b);
	memcpy(a, hdr, HDR);
	memcpy(a + HDR, frame, first);
	memcpy(b, frame + first, len - first);
	struct vtd_buf bufs[] = { { ga, HDR + first, false }, { gb, len - first, false } };
	return vtd_add_chain(&f->t, TXQ, bufs, 2);
}

static uint16_t post_rx(struct fixture *f, uint32_t len, uint8_t **hva)
{
	uint64_t gpa = vtd_alloc(&f->t, len, (void **)hva);
	struct vtd_buf buf = { gpa, len, true };
	return vtd_add_chain(&f->t, RXQ, &buf, 1);
}

static void fill_frame(uint8_t *frame, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		frame[i] = (uint8_t)(seed + i * 7);
}

/* The "host" sends one frame (header of zeros, then the bytes) into the device. */
static void host_send(struct fixture *f, const uint8_t *frame, uint32_t len)
{
	uint8_t msg[HDR + 70000] = { 0 };
	memcpy(msg + HDR, frame, len);
	assert_int_equal(send(f->host, msg, HDR + len, 0), (ssize_t)(HDR + len));
}

static ssize_t host_recv(struct fixture *f, uint8_t *buf, size_t len)
{
	return recv(f->host, buf, len, MSG_DONTWAIT);
}

static void used_is(struct fixture *f, uint32_t q, uint16_t head, uint32_t len)
{
	uint32_t id, l;
	assert_int_equal(vtd_get_used(&f->t, q, &id, &l), 1);
	assert_int_equal(id, head);
	assert_int_equal(l, len);
}

/* ---- transmit ---- */

static void tx_frame_reaches_the_tap(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[60], got[200];
	fill_frame(frame, sizeof(frame), 1);
	struct virtio_net_hdr hdr = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
				      .csum_offset = 16 };
	uint16_t head = post_tx(f, &hdr, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_memory_equal(got, &hdr, HDR);
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	used_is(f, TXQ, head, 0);
	assert_true(vtd_interrupts(&f->t) > 0);
	struct virtio_net_stats s = stats(f);
	assert_int_equal(s.tx_packets, 1);
	assert_int_equal(s.tx_bytes, sizeof(frame));
	assert_int_equal(s.tx_errors, 0);
}

/* 2.7.10: after draining, avail_event says "kick me at the next chain" only. */
static void tx_publishes_avail_event(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[60] = { 0 };
	struct virtio_net_hdr hdr = { 0 };
	for (int i = 0; i < 3; i++)
		post_tx(f, &hdr, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	uint16_t *avail_event = guest_mem_ptr(&f->t.vm.mem, f->t.q[TXQ].used_gpa + 4 + 8 * QSIZE, 2);
	assert_int_equal(*avail_event, 3);
	assert_int_equal(stats(f).tx_packets, 3);
}

static void expect_tx_dropped(struct fixture *f, uint16_t head, uint64_t errors)
{
	vtd_kick(&f->t, TXQ);
	used_is(f, TXQ, head, 0);
	assert_int_equal(stats(f).tx_errors, errors);
	uint8_t got[100];
	assert_int_equal(host_recv(f, got, sizeof(got)), -1);
}

static void tx_hostile_chains_cost_one_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t *p;
	uint64_t g = vtd_alloc(&f->t, 200, (void **)&p);
	memset(p, 0, 200);
	/* A device-writable buffer in a transmit chain: wrong direction. */
	struct vtd_buf wrong[] = { { g, 100, false }, { g + 100, 100, true } };
	expect_tx_dropped(f, vtd_add_chain(&f->t, TXQ, wrong, 2), 1);
	/* Shorter than the header, and a header with no Ethernet frame after it. */
	struct vtd_buf short_hdr = { g, 8, false }, hdr_only = { g, HDR + 10, false };
	expect_tx_dropped(f, vtd_add_chain(&f->t, TXQ, &short_hdr, 1), 2);
	expect_tx_dropped(f, vtd_add_chain(&f->t, TXQ, &hdr_only, 1), 3);
	/* A zero-length descriptor (the walker refuses the chain). */
	struct vtd_buf zero[] = { { g, HDR, false }, { g, 0, false } };
	expect_tx_dropped(f, vtd_add_chain(&f->t, TXQ, zero, 2), 4);
	/* Offloads the driver did not negotiate, and flags it may not set. */
	struct virtio_net_hdr tso = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1400 };
	struct virtio_net_hdr ufo = { .gso_type = VIRTIO_NET_HDR_GSO_UDP };
	struct virtio_net_hdr flags = { .flags = 0x80 };
	uint8_t frame[60] = { 0 };
	expect_tx_dropped(f, post_tx(f, &tso, frame, sizeof(frame)), 5);
	expect_tx_dropped(f, post_tx(f, &ufo, frame, sizeof(frame)), 6);
	expect_tx_dropped(f, post_tx(f, &flags, frame, sizeof(frame)), 7);
	/* The device carries on. */
	struct virtio_net_hdr ok = { 0 };
	uint16_t head = post_tx(f, &ok, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	used_is(f, TXQ, head, 0);
	uint8_t got[100];
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_int_equal(stats(f).tx_packets, 1);
}

static void tx_negotiated_tso_passes(void **state)
{
	struct fixture *f = *state;
	struct virtio_net_hdr tso = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				      .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1400 };
	uint8_t frame[3000], got[4000];
	fill_frame(frame, sizeof(frame), 3);
	uint16_t head = post_tx(f, &tso, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	used_is(f, TXQ, head, 0);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_memory_equal(got + HDR, frame, sizeof(frame));
}

static int setup_tso(void **state)
{
	return setup_with(state, BASE_FEATURES | F(VIRTIO_NET_F_HOST_TSO4), NULL);
}

/* ---- receive ---- */

static void rx_fills_a_buffer(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf, frame[100];
	uint16_t head = post_rx(f, 2048, &buf);
	fill_frame(frame, sizeof(frame), 9);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, head, HDR + sizeof(frame));
	struct virtio_net_hdr hdr;
	memcpy(&hdr, buf, HDR);
	assert_int_equal(hdr.num_buffers, 1); /* 5.1.6.4: 1 without mergeable buffers */
	assert_memory_equal(buf + HDR, frame, sizeof(frame));
	assert_int_equal(stats(f).rx_packets, 1);
	assert_int_equal(stats(f).rx_bytes, sizeof(frame));
	assert_true(vtd_interrupts(&f->t) > 0);
}

static void rx_mergeable_spans_chains(void **state)
{
	struct fixture *f = *state;
	uint8_t *b[3], frame[150];
	uint16_t heads[3];
	for (int i = 0; i < 3; i++)
		heads[i] = post_rx(f, 64, &b[i]);
	fill_frame(frame, sizeof(frame), 5);
	host_send(f, frame, sizeof(frame)); /* 162 bytes: 64 + 64 + 34 */
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, heads[0], 64);
	used_is(f, RXQ, heads[1], 64);
	used_is(f, RXQ, heads[2], 34);
	struct virtio_net_hdr hdr;
	memcpy(&hdr, b[0], HDR);
	assert_int_equal(hdr.num_buffers, 3);
	assert_memory_equal(b[0] + HDR, frame, 52);
	assert_memory_equal(b[1], frame + 52, 64);
	assert_memory_equal(b[2], frame + 116, 34);
}

/* A frame larger than the chains posted so far waits, holding them, for more. */
static void rx_mergeable_waits_mid_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t *b[3], frame[150];
	uint16_t h0 = post_rx(f, 64, &b[0]);
	fill_frame(frame, sizeof(frame), 6);
	host_send(f, frame, sizeof(frame));
	event_loop_run_once(f->t.vm.loop, 100);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, RXQ, &id, &len), 0);
	uint16_t h1 = post_rx(f, 64, &b[1]);
	uint16_t h2 = post_rx(f, 64, &b[2]);
	vtd_kick(&f->t, RXQ);
	used_is(f, RXQ, h0, 64);
	used_is(f, RXQ, h1, 64);
	used_is(f, RXQ, h2, 34);
	assert_memory_equal(b[2], frame + 116, 34);
}

/* A frame needing more chains than the whole ring can hold is dropped, not waited for
 * forever: its chains go back empty. */
static void rx_mergeable_frame_beyond_the_ring_is_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t *b, frame[500];
	uint16_t heads[QSIZE];
	for (int i = 0; i < QSIZE; i++)
		heads[i] = post_rx(f, 16, &b); /* 16 x 16 bytes < 512 */
	fill_frame(frame, sizeof(frame), 7);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	for (int i = 0; i < QSIZE; i++)
		used_is(f, RXQ, heads[i], 0);
	assert_int_equal(stats(f).rx_dropped, 1);
	assert_int_equal(stats(f).rx_packets, 0);
}

static int pending_bytes(int fd)
{
	int n = 0;
	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* No buffers: the device takes one frame, stops polling the tap, and nothing spins;
 * a kick after the guest posts buffers brings everything in. */
static void rx_without_buffers_stops_reading(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[80];
	fill_frame(frame, sizeof(frame), 2);
	host_send(f, frame, sizeof(frame));
	host_send(f, frame, sizeof(frame));
	assert_true(event_loop_run_once(f->t.vm.loop, 100) >= 1); /* reads one, parks */
	assert_int_equal(pending_bytes(f->devfd), HDR + sizeof(frame)); /* still in the tap */
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_loop_run_once(f->t.vm.loop, 20), 0);
	uint8_t *b1, *b2;
	uint16_t h1 = post_rx(f, 256, &b1), h2 = post_rx(f, 256, &b2);
	vtd_kick(&f->t, RXQ);
	used_is(f, RXQ, h1, HDR + sizeof(frame));
	used_is(f, RXQ, h2, HDR + sizeof(frame));
	assert_int_equal(stats(f).rx_packets, 2);
	assert_int_equal(stats(f).rx_dropped, 0);
}

static void rx_hostile_chains_are_returned(void **state)
{
	struct fixture *f = *state;
	uint8_t *p, *good, frame[100];
	uint64_t g = vtd_alloc(&f->t, 256, (void **)&p);
	struct vtd_buf readable = { g, 256, false }, tiny = { g, 8, true };
	struct vtd_buf mixed[] = { { g, 100, false }, { g + 100, 100, true } };
	uint16_t h_readable = vtd_add_chain(&f->t, RXQ, &readable, 1);
	uint16_t h_tiny = vtd_add_chain(&f->t, RXQ, &tiny, 1);
	uint16_t h_mixed = vtd_add_chain(&f->t, RXQ, mixed, 2);
	uint16_t h_good = post_rx(f, 512, &good);
	fill_frame(frame, sizeof(frame), 4);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h_readable, 0);
	used_is(f, RXQ, h_tiny, 0);
	used_is(f, RXQ, h_mixed, 0);
	used_is(f, RXQ, h_good, HDR + sizeof(frame));
	assert_memory_equal(good + HDR, frame, sizeof(frame));
	assert_int_equal(stats(f).rx_errors, 3);
}

/* Without mergeable buffers a frame must fit one chain, or it is dropped. */
static void rx_frame_too_big_is_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t *small, *big, frame[1500];
	uint16_t h_small = post_rx(f, 512, &small);
	fill_frame(frame, sizeof(frame), 8);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h_small, 0);
	assert_int_equal(stats(f).rx_dropped, 1);
	uint16_t h_big = post_rx(f, 2048, &big);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h_big, HDR + sizeof(frame));
}

/* 5.1.6.4.1 (virtio 1.2): flags reach the guest only with GUEST_CSUM. */
static void rx_flags_need_guest_csum(void **state)
{
	struct fixture *f = *state;
	uint8_t msg[HDR + 64] = { 2 /* VIRTIO_NET_HDR_F_DATA_VALID */ }, *b1, *b2;
	uint16_t h1 = post_rx(f, 256, &b1);
	assert_int_equal(send(f->host, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h1, sizeof(msg));
	assert_int_equal(b1[0], 0);
	/* The same driver again, now with GUEST_CSUM. */
	f->t.dev.driver_features |= F(VIRTIO_NET_F_GUEST_CSUM);
	assert_int_equal(virtio_net_ops.activate(&f->t.dev), 0);
	uint16_t h2 = post_rx(f, 256, &b2);
	assert_int_equal(send(f->host, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h2, sizeof(msg));
	assert_int_equal(b2[0], 2);
}

/* The "host" sends one frame with the header given. */
static void host_send_hdr(struct fixture *f, const struct virtio_net_hdr *hdr,
			  const uint8_t *frame, uint32_t len)
{
	uint8_t msg[HDR + 256];
	assert_true(len <= sizeof(msg) - HDR);
	memcpy(msg, hdr, HDR);
	memcpy(msg + HDR, frame, len);
	assert_int_equal(send(f->host, msg, HDR + len, 0), (ssize_t)(HDR + len));
}

/* 5.1.6.4.1: the driver is never handed an offload it did not negotiate. A tap can
 * still hold frames built for the offloads of the driver before a reset (a partial
 * checksum, a TSO super-frame); they cannot be fixed up here, so they are dropped,
 * and plain frames behind them arrive. */
static void rx_offloads_the_driver_did_not_take_are_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[64], *b1, *b2;
	fill_frame(frame, sizeof(frame), 3);
	const struct virtio_net_hdr csum = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					     .csum_start = 34, .csum_offset = 16 };
	struct virtio_net_hdr tso4 = csum, udp = csum, plain = { 0 };
	tso4.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	tso4.gso_size = 1448;
	udp.gso_type = VIRTIO_NET_HDR_GSO_UDP;
	uint16_t h1 = post_rx(f, 256, &b1);
	host_send_hdr(f, &csum, frame, sizeof(frame)); /* no GUEST_CSUM */
	host_send_hdr(f, &tso4, frame, sizeof(frame));
	host_send_hdr(f, &plain, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h1, HDR + sizeof(frame));
	assert_memory_equal(b1, &plain, HDR - 2); /* all but num_buffers */
	assert_int_equal(stats(f).rx_dropped, 2);
	/* A driver with GUEST_CSUM but no GUEST_TSO4: checksums pass, segments do not. */
	f->t.dev.driver_features |= F(VIRTIO_NET_F_GUEST_CSUM);
	assert_int_equal(virtio_net_ops.activate(&f->t.dev), 0);
	uint16_t h2 = post_rx(f, 256, &b2);
	host_send_hdr(f, &tso4, frame, sizeof(frame));
	host_send_hdr(f, &udp, frame, sizeof(frame));
	host_send_hdr(f, &csum, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h2, HDR + sizeof(frame));
	assert_int_equal(b2[0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
	assert_int_equal(b2[1], VIRTIO_NET_HDR_GSO_NONE);
	assert_int_equal(stats(f).rx_dropped, 4);
	assert_int_equal(stats(f).rx_packets, 2);
}

/* A runt from the tap (shorter than header + Ethernet header) never reaches the guest. */
static void rx_runt_is_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf, runt[HDR + 4] = { 0 }, frame[64];
	uint16_t head = post_rx(f, 256, &buf);
	assert_int_equal(send(f->host, runt, sizeof(runt), 0), (ssize_t)sizeof(runt));
	fill_frame(frame, sizeof(frame), 1);
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, head, HDR + sizeof(frame));
	assert_int_equal(stats(f).rx_dropped, 1);
}

/* A broken ring sets NEEDS_RESET and the tap is left alone from then on. */
static void rx_broken_ring_needs_reset(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[64] = { 0 };
	vtd_set_avail_idx(&f->t, RXQ, 1000);
	host_send(f, frame, sizeof(frame));
	event_loop_run_once(f->t.vm.loop, 100);
	assert_true(f->t.dev.status & VIRTIO_STATUS_NEEDS_RESET);
	host_send(f, frame, sizeof(frame));
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_loop_run_once(f->t.vm.loop, 20), 0);
}

/* A reset forgets held chains and the pending frame; the device starts clean. */
static void reset_forgets_frames_in_flight(void **state)
{
	struct fixture *f = *state;
	uint8_t *b, frame[150] = { 0 };
	post_rx(f, 64, &b);
	host_send(f, frame, sizeof(frame));
	event_loop_run_once(f->t.vm.loop, 100);
	pthread_mutex_lock(&f->t.dev.lock);
	virtio_net_ops.reset(&f->t.dev);
	pthread_mutex_unlock(&f->t.dev.lock);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, RXQ, &id, &len), 0);
	assert_int_equal(stats(f).rx_dropped, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(event_loop_run_once(f->t.vm.loop, 20), 0);
}

/* ---- rate limiting ---- */

static int setup_limited(void **state)
{
	/* One operation per 100 ms in each direction. */
	struct net_config cfg = { .iface_id = "eth0", .tap_fd = -1 };
	cfg.tx_rate_limiter.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 100 };
	cfg.rx_rate_limiter.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 100 };
	return setup_with(state, BASE_FEATURES, &cfg);
}

static void tx_rate_limiter_parks_then_resumes(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[60] = { 0 }, got[100];
	struct virtio_net_hdr hdr = { 0 };
	uint16_t h1 = post_tx(f, &hdr, frame, sizeof(frame));
	uint16_t h2 = post_tx(f, &hdr, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	used_is(f, TXQ, h1, 0);
	uint32_t id, len;
	assert_int_equal(vtd_get_used(&f->t, TXQ, &id, &len), 0);
	assert_int_equal(stats(f).tx_throttled, 1);
	vtd_kick(&f->t, TXQ); /* a kick while throttled changes nothing */
	assert_int_equal(vtd_get_used(&f->t, TXQ, &id, &len), 0);
	assert_int_equal(vtd_wait_used(&f->t, TXQ, 1000), 1);
	used_is(f, TXQ, h2, 0);
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
	assert_int_equal(host_recv(f, got, sizeof(got)), HDR + sizeof(frame));
}

static void rx_rate_limiter_parks_then_resumes(void **state)
{
	struct fixture *f = *state;
	uint8_t *b1, *b2, frame[64] = { 0 };
	uint16_t h1 = post_rx(f, 256, &b1), h2 = post_rx(f, 256, &b2);
	host_send(f, frame, sizeof(frame));
	host_send(f, frame, sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h1, HDR + sizeof(frame));
	assert_int_equal(vtd_wait_used(&f->t, RXQ, 1000), 1);
	used_is(f, RXQ, h2, HDR + sizeof(frame));
	assert_true(stats(f).rx_throttled >= 1);
}

static int setup_slow(void **state)
{
	/* One transmit per 10 s: only a new limiter can release the second frame soon. */
	struct net_config cfg = { .iface_id = "eth0", .tap_fd = -1 };
	cfg.tx_rate_limiter.ops = (struct token_bucket_config){ .size = 1, .refill_time_ms = 10000 };
	return setup_with(state, BASE_FEATURES, &cfg);
}

/* PATCH /network-interfaces: a new limiter takes over, parked work goes at once. */
static void rate_limiters_change_at_runtime(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[60] = { 0 };
	struct virtio_net_hdr hdr = { 0 };
	uint16_t h1 = post_tx(f, &hdr, frame, sizeof(frame));
	uint16_t h2 = post_tx(f, &hdr, frame, sizeof(frame));
	vtd_kick(&f->t, TXQ);
	used_is(f, TXQ, h1, 0);
	struct rate_limiter_config unlimited = { 0 };
	assert_int_equal(virtio_net_set_rate_limiters(&f->t.dev, NULL, &unlimited), 0);
	assert_int_equal(vtd_wait_used(&f->t, TXQ, 500), 1);
	used_is(f, TXQ, h2, 0);
	struct virtio_device other = f->t.dev;
	static const struct virtio_device_ops not_net = { .name = "x" };
	other.ops = &not_net;
	assert_int_equal(virtio_net_set_rate_limiters(&other, &unlimited, NULL), -EINVAL);
}

/* ---- configuration ---- */

static void config_has_mac_and_link_up(void **state)
{
	struct fixture *f = *state;
	uint8_t cfg[10];
	virtio_net_ops.read_config(&f->t.dev, 0, cfg, sizeof(cfg));
	assert_int_equal(cfg[0] & 1, 0); /* unicast */
	assert_int_equal(cfg[0] & 2, 2); /* locally administered */
	assert_int_equal(cfg[6], 1);	 /* VIRTIO_NET_S_LINK_UP */
	assert_int_equal(cfg[8], 1);	 /* one queue pair */
	uint64_t feat = virtio_net_ops.features(&f->t.dev);
	assert_true(feat & F(VIRTIO_NET_F_MRG_RXBUF));
	assert_true(feat & F(VIRTIO_NET_F_MAC));
	assert_true(feat & F(VIRTIO_NET_F_GUEST_TSO4));
}

static void mac_given_or_derived_deterministically(void **state)
{
	(void)state;
	struct net_config a = { .iface_id = "eth0", .tap_fd = -1 };
	struct net_config b = { .iface_id = "eth1", .tap_fd = -1 };
	struct net_config given = { .iface_id = "eth0", .tap_fd = -1, .has_guest_mac = true,
				    .guest_mac = { 0x02, 1, 2, 3, 4, 5 } };
	struct net_config multicast = given;
	multicast.guest_mac[0] = 0x01;
	uint8_t m[4][10];
	const struct net_config *cfgs[] = { &a, &a, &b, &given };
	for (int i = 0; i < 4; i++) {
		struct tap tap = { .fd = -1 };
		struct virtio_net *net;
		assert_int_equal(virtio_net_backend_new(cfgs[i], &tap, &net), 0);
		struct virtio_device dev = { .backend = net };
		virtio_net_ops.read_config(&dev, 0, m[i], 10);
		virtio_net_backend_free(net);
	}
	assert_memory_equal(m[0], m[1], 6);
	assert_memory_not_equal(m[0], m[2], 6);
	assert_memory_equal(m[3], given.guest_mac, 6);
	struct tap tap = { .fd = -1 };
	struct virtio_net *net;
	assert_int_equal(virtio_net_backend_new(&multicast, &tap, &net), -EINVAL);
}

/* ---- the tap itself (needs /dev/net/tun and CAP_NET_ADMIN) ---- */

static bool can_tap(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIPPED: missing: root, which the tap tests need\n");
		return false;
	}
	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		fprintf(stderr, "SKIPPED: missing: /dev/net/tun (%s), which the tap tests need\n",
			strerror(errno));
		return false;
	}
	return true;
}

static void tap_name(char *name, size_t len)
{
	snprintf(name, len, "argt%d", (int)getpid() % 100000);
}

static void tap_created_configured_and_removed(void **state)
{
	(void)state;
	if (!can_tap())
		skip();
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name));
	struct tap tap;
	assert_int_equal(tap_open(&tap, name), 0);
	assert_true(if_nametoindex(name) != 0);
	int hdr = 0;
	assert_int_equal(ioctl(tap.fd, TUNGETVNETHDRSZ, &hdr), 0);
	assert_int_equal(hdr, HDR);
	assert_true(fcntl(tap.fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(tap_set_offload(&tap, TAP_OFFLOAD_CSUM | TAP_OFFLOAD_TSO4 |
						       TAP_OFFLOAD_TSO6), 0);
	/* A second open of a single-queue tap is refused with a clear error. */
	struct tap again;
	assert_int_equal(tap_open(&again, name), -EBUSY);
	tap_close(&tap);
	assert_int_equal(if_nametoindex(name), 0); /* not persistent: gone with the fd */
}

static void tap_bad_names_and_fds_are_refused(void **state)
{
	(void)state;
	struct tap tap;
	assert_int_equal(tap_open(&tap, ""), -EINVAL);
	assert_int_equal(tap_open(&tap, "a-name-far-too-long-for-linux"), -EINVAL);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(tap_adopt_fd(&tap, p[0]), -EINVAL);
	close(p[0]);
	close(p[1]);
}

/* A frame through a real tap: the guest's transmit shows up on the host interface. */
static void tx_through_a_real_tap(void **state)
{
	(void)state;
	if (!can_tap())
		skip();
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name));
	struct net_config cfg = { .iface_id = "eth0", .host_dev_name = name, .tap_fd = -1 };
	struct tap tap;
	assert_int_equal(tap_open(&tap, name), 0);
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x88b5));
	assert_true(ps >= 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
				   .sll_ifindex = (int)if_nametoindex(name) };
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);
	struct fixture f = { 0 };
	assert_int_equal(virtio_net_backend_new(&cfg, &tap, &f.net), 0);
	assert_int_equal(vtd_init(&f.t, &virtio_net_ops, f.net, 16, BASE_FEATURES, QSIZE), 0);
	uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x06, 1, 2, 3, 4, 5, 0x88, 0xb5 };
	memcpy(frame + 14, "argon", 5);
	struct virtio_net_hdr hdr = { 0 };
	uint16_t head = post_tx(&f, &hdr, frame, sizeof(frame));
	vtd_kick(&f.t, TXQ);
	used_is(&f, TXQ, head, 0);
	assert_int_equal(stats(&f).tx_packets, 1);
	uint8_t got[200];
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(ps, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(recv(ps, got, sizeof(got), 0), sizeof(frame));
	assert_memory_equal(got + 14, "argon", 5);
	close(ps);
	vtd_destroy(&f.t);
	virtio_net_backend_free(f.net);
}

static int open_raw_tap(const char *name)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	return fd;
}

/* An ethtool flag of the interface (ETHTOOL_GTSO, ETHTOOL_GTXCSUM): what the host's
 * stack may hand the tap unsegmented or with a partial checksum. */
static uint32_t ethtool_flag(const char *name, uint32_t cmd)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct ethtool_value ev = { .cmd = cmd };
	struct ifreq ifr = { .ifr_data = (void *)&ev };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(s, SIOCETHTOOL, &ifr), 0);
	close(s);
	return ev.data;
}

/* The offloads a driver negotiated go with it at reset: until the next driver says
 * what it takes, the host's stack segments and checksums for the tap, or frames the
 * next driver never negotiated would queue up for it meanwhile. */
static void reset_takes_the_offloads_back(void **state)
{
	(void)state;
	if (!can_tap())
		skip();
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name));
	struct net_config cfg = { .iface_id = "eth0", .host_dev_name = name, .tap_fd = -1 };
	struct tap tap;
	assert_int_equal(tap_open(&tap, name), 0);
	struct fixture f = { 0 };
	assert_int_equal(virtio_net_backend_new(&cfg, &tap, &f.net), 0);
	uint64_t feat = BASE_FEATURES | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4);
	assert_int_equal(vtd_init(&f.t, &virtio_net_ops, f.net, 16, feat, QSIZE), 0);
	uint32_t tso = ethtool_flag(name, ETHTOOL_GTSO), csum = ethtool_flag(name, ETHTOOL_GTXCSUM);
	pthread_mutex_lock(&f.t.dev.lock);
	virtio_net_ops.reset(&f.t.dev);
	pthread_mutex_unlock(&f.t.dev.lock);
	uint32_t tso_after = ethtool_flag(name, ETHTOOL_GTSO);
	uint32_t csum_after = ethtool_flag(name, ETHTOOL_GTXCSUM);
	vtd_destroy(&f.t);
	virtio_net_backend_free(f.net); /* the tap goes before a failure can leave it */
	assert_int_equal(tso, 1);
	assert_int_equal(csum, 1);
	assert_int_equal(tso_after, 0);
	assert_int_equal(csum_after, 0);
}

/* A tap opened by a parent (tap_fd) is adopted; one without IFF_VNET_HDR is refused. */
static void tap_fd_from_a_parent_is_adopted(void **state)
{
	(void)state;
	if (!can_tap())
		skip();
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name));
	struct tap tap;
	assert_int_equal(tap_adopt_fd(&tap, open_raw_tap(name)), 0);
	assert_string_equal(tap.name, name);
	assert_true(fcntl(tap.fd, F_GETFL) & O_NONBLOCK);
	tap_close(&tap);
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	assert_int_equal(tap_adopt_fd(&tap, fd), -EINVAL);
	close(fd);
}

/* A frame the host sends on the tap interface lands in the guest's buffers (the host
 * may add its own IPv6 chatter: look for ours among what arrives). */
static void rx_through_a_real_tap(void **state)
{
	(void)state;
	if (!can_tap())
		skip();
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name));
	struct net_config cfg = { .iface_id = "eth0", .host_dev_name = name, .tap_fd = -1 };
	struct tap tap;
	assert_int_equal(tap_open(&tap, name), 0);
	struct fixture f = { 0 };
	assert_int_equal(virtio_net_backend_new(&cfg, &tap, &f.net), 0);
	uint64_t feat = MRG_FEATURES | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4);
	assert_int_equal(vtd_init(&f.t, &virtio_net_ops, f.net, 16, feat, QSIZE), 0);
	uint8_t *bufs[QSIZE];
	for (int i = 0; i < QSIZE; i++)
		post_rx(&f, 2048, &bufs[i]);
	vtd_kick(&f.t, RXQ);
	int ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	assert_true(ps >= 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(name),
				   .sll_halen = 6 };
	uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x06, 9, 9, 9, 9, 9, 0x88, 0xb5 };
	memcpy(frame + 14, "to-guest", 8);
	assert_int_equal(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&sll, sizeof(sll)),
			 sizeof(frame));
	bool found = false;
	for (int i = 0; i < QSIZE && !found && vtd_wait_used(&f.t, RXQ, 1000); i++) {
		uint32_t id, len;
		assert_int_equal(vtd_get_used(&f.t, RXQ, &id, &len), 1);
		found = len == HDR + sizeof(frame) && !memcmp(bufs[id] + HDR, frame, sizeof(frame));
	}
	assert_true(found);
	close(ps);
	vtd_destroy(&f.t);
	virtio_net_backend_free(f.net);
}

int main(void)
{
	log_init("test", LOG_ERROR);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tx_frame_reaches_the_tap, setup, teardown),
		cmocka_unit_test_setup_teardown(tx_publishes_avail_event, setup, teardown),
		cmocka_unit_test_setup_teardown(tx_hostile_chains_cost_one_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(tx_negotiated_tso_passes, setup_tso, teardown),
		cmocka_unit_test_setup_teardown(rx_fills_a_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_mergeable_spans_chains, setup_mrg, teardown),
		cmocka_unit_test_setup_teardown(rx_mergeable_waits_mid_frame, setup_mrg, teardown),
		cmocka_unit_test_setup_teardown(rx_mergeable_frame_beyond_the_ring_is_dropped,
						setup_mrg, teardown),
		cmocka_unit_test_setup_teardown(rx_without_buffers_stops_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_hostile_chains_are_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_frame_too_big_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_runt_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_flags_need_guest_csum, setup, teardown),
		cmocka_unit_test_setup_teardown(rx_offloads_the_driver_did_not_take_are_dropped,
						setup, teardown),
		cmocka_unit_test_setup_teardown(rx_broken_ring_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_forgets_frames_in_flight, setup_mrg, teardown),
		cmocka_unit_test_setup_teardown(tx_rate_limiter_parks_then_resumes, setup_limited,
						teardown),
		cmocka_unit_test_setup_teardown(rx_rate_limiter_parks_then_resumes, setup_limited,
						teardown),
		cmocka_unit_test_setup_teardown(rate_limiters_change_at_runtime, setup_slow, teardown),
		cmocka_unit_test_setup_teardown(config_has_mac_and_link_up, setup, teardown),
		cmocka_unit_test(mac_given_or_derived_deterministically),
		cmocka_unit_test(tap_created_configured_and_removed),
		cmocka_unit_test(tap_bad_names_and_fds_are_refused),
		cmocka_unit_test(tx_through_a_real_tap),
		cmocka_unit_test(tap_fd_from_a_parent_is_adopted),
		cmocka_unit_test(reset_takes_the_offloads_back),
		cmocka_unit_test(rx_through_a_real_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
