/* virtio-vsock packets (virtio 1.2, 5.10.6): the 44-byte little-endian header, the
 * checks every guest header goes through, and the host's CONNECT line. Pure functions:
 * no state, no I/O, so the fuzzer can hammer them. */
#include <errno.h>
#include <string.h>

#include "devices/vsock.h"

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* 5.10.6: struct virtio_vsock_hdr, packed, every field little-endian. */
void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = get_le64(raw + 0);
	h->dst_cid = get_le64(raw + 8);
	h->src_port = get_le32(raw + 16);
	h->dst_port = get_le32(raw + 20);
	h->len = get_le32(raw + 24);
	h->type = get_le16(raw + 28);
	h->op = get_le16(raw + 30);
	h->flags = get_le32(raw + 32);
	h->buf_alloc = get_le32(raw + 36);
	h->fwd_cnt = get_le32(raw + 40);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_SIZE])
{
	put_le64(raw + 0, h->src_cid);
	put_le64(raw + 8, h->dst_cid);
	put_le32(raw + 16, h->src_port);
	put_le32(raw + 20, h->dst_port);
	put_le32(raw + 24, h->len);
	put_le16(raw + 28, h->type);
	put_le16(raw + 30, h->op);
	put_le32(raw + 32, h->flags);
	put_le32(raw + 36, h->buf_alloc);
	put_le32(raw + 40, h->fwd_cnt);
}

enum vsock_verdict vsock_hdr_check(const struct vsock_hdr *h, uint32_t payload_room,
				   uint64_t guest_cid, const char **why)
{
	/* 5.10.6.4: the driver MUST use guest_cid as the source; a full 64-bit compare
	 * also refuses the reserved upper half (5.10.6). Spoofed or misaddressed
	 * packets get no answer: an RST would go to an address that is not the guest's. */
	if (h->src_cid != guest_cid) {
		*why = "src_cid is not the guest's cid";
		return VSOCK_PKT_DROP;
	}
	if (h->dst_cid != VSOCK_HOST_CID) {
		*why = "dst_cid is not the host (2)";
		return VSOCK_PKT_DROP;
	}
	if (h->len > payload_room) {
		*why = "len runs past the buffers of the chain";
		return VSOCK_PKT_DROP;
	}
	if (h->type != VSOCK_TYPE_STREAM) {
		/* 5.10.6.4: RST for an unknown type, but never answer an RST. */
		*why = "socket type is not stream";
		return h->op == VSOCK_OP_RST ? VSOCK_PKT_DROP : VSOCK_PKT_RST;
	}
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST) {
		*why = "unknown op";
		return VSOCK_PKT_RST;
	}
	*why = NULL;
	return VSOCK_PKT_OK;
}

/* "CONNECT <port>\n", as Firecracker's hybrid vsock; a trailing "\r" is tolerated
 * for people typing at socat. */
int vsock_parse_connect(const char *line, uint32_t len, uint32_t *port)
{
	static const char verb[] = "CONNECT ";
	const uint32_t vlen = sizeof(verb) - 1;
	if (len < vlen + 2 || memcmp(line, verb, vlen) != 0 || line[len - 1] != '\n')
		return -EINVAL;
	uint32_t end = len - 1;
	if (line[end - 1] == '\r')
		end--;
	if (end <= vlen || end - vlen > 10)
		return -EINVAL;
	uint64_t v = 0;
	for (uint32_t i = vlen; i < end; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

int vsock_chain_iov(const struct virtq_chain *c, bool writable, uint32_t offset,
		    uint32_t len, struct iovec *iov, int max, uint32_t *covered)
{
	uint32_t first = writable ? c->nread : 0;
	uint32_t count = writable ? c->nwrite : c->nread;
	uint32_t done = 0;
	int n = 0;
	for (uint32_t i = first; i < first + count && done < len && n < max; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (offset >= b->len) {
			offset -= b->len;
			continue;
		}
		uint32_t take = b->len - offset;
		if (take > len - done)
			take = len - done;
		iov[n++] = (struct iovec){ .iov_base = b->hva + offset, .iov_len = take };
		done += take;
		offset = 0;
	}
	*covered = done;
	return n;
}
