/* libFuzzer target for the descriptor-chain walker: the input is a whole split ring
 * (descriptor table, available ring, used-event index) plus indirect tables, laid
 * into guest memory as a hostile driver would; the walker pops chains until it runs
 * dry or the ring breaks. Invariants (trap on violation): every popped chain has at
 * most VIRTQ_MAX_SIZE buffers, every buffer lies inside guest RAM, readable buffers
 * come first and the totals add up, and no more chains are popped than the index
 * allows.
 *
 * Input: [0] flags (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC), [1] avail->idx, then
 * 16 * QSIZE bytes of descriptors, then 2 * QSIZE bytes of the available ring, then
 * the first 4 KiB of the data region (where addresses with bit 63 clear are folded).
 * Build and run: make fuzz, then make fuzz-run (see README). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "virtio_test_driver.h"

#define QSIZE 16
#define DATA_GPA 0x200000ULL
#define DATA_SIZE 0x10000ULL

static const struct virtio_device_ops fuzz_ops = {
	.name = "fuzz", .device_id = 99, .num_queues = 1, .queue_max_size = QSIZE,
};

static void check_chain(struct vtd *t, const struct virtq_chain *c)
{
	uint64_t read = 0, write = 0;
	if ((uint32_t)c->nread + c->nwrite > VIRTQ_MAX_SIZE)
		__builtin_trap();
	for (uint32_t i = 0; i < (uint32_t)c->nread + c->nwrite; i++) {
		const struct virtq_buf *b = &c->bufs[i];
		if (guest_mem_ptr(&t->vm.mem, b->gpa, b->len) != b->hva || b->len == 0)
			__builtin_trap();
		*(i < c->nread ? &read : &write) += b->len;
	}
	if (read != c->read_len || write != c->write_len)
		__builtin_trap();
}

/* Folds fuzzer addresses into the data region most of the time so chains get deep. */
static void lay_out_descriptors(struct vtd *t, const uint8_t *in)
{
	struct vtd_desc *table = vtd_desc_table(t, 0);
	for (int i = 0; i < QSIZE; i++) {
		struct vtd_desc d;
		memcpy(&d, in + 16 * i, 16);
		if (!(d.addr >> 63))
			d.addr = DATA_GPA + d.addr % DATA_SIZE;
		if (!(d.len >> 31))
			d.len %= 0x2000;
		table[i] = d;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t need = 2 + 16 * QSIZE + 2 * QSIZE;
	if (size < need)
		return 0;
	static struct vtd t;
	static struct virtq_chain chain;
	log_init("fuzz", LOG_ERROR); /* warnings about hostile rings are expected */
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) |
			    ((data[0] & 1) ? 1ULL << VIRTIO_F_EVENT_IDX : 0) |
			    ((data[0] & 2) ? 1ULL << VIRTIO_F_INDIRECT_DESC : 0);
	if (vtd_init(&t, &fuzz_ops, NULL, 4, features, QSIZE))
		__builtin_trap();
	lay_out_descriptors(&t, data + 2);
	uint16_t *avail = guest_mem_ptr(&t.vm.mem, t.q[0].avail_gpa, 4 + 2 * QSIZE);
	memcpy(avail + 2, data + 2 + 16 * QSIZE, 2 * QSIZE);
	size_t rest = size - need;
	memcpy(guest_mem_ptr(&t.vm.mem, DATA_GPA, DATA_SIZE), data + need,
	       rest < 4096 ? rest : 4096);
	vtd_set_avail_idx(&t, 0, data[1]);
	struct virtq *vq = &t.dev.queues[0];
	int popped = 0, rc;
	while ((rc = virtq_pop(vq, &chain)) != 0 && rc != -5) {
		if (rc == 1)
			check_chain(&t, &chain);
		virtq_push(vq, chain.head, 0);
		virtq_should_notify(vq);
		if (++popped > QSIZE)
			__builtin_trap(); /* more than the index can ever offer */
	}
	vtd_destroy(&t);
	return 0;
}
