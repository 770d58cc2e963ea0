/* libFuzzer target for the readers of the VM's own state in a snapshot file
 * (snapshot/state_sections.h): a hostile payload in section vcpu/0, irqchip, pit,
 * clock, vm, serial and i8042. The container around it is well formed (its own
 * checks are the format's target), so every byte reaches the section readers, which
 * must refuse or accept without reading past the payload, and accept only what they
 * can vouch for: MSR indices in the host's list, counts within bounds.
 *
 * Input: byte 0 picks the section (mod 7); the rest is its payload. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "snapshot/state_sections.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = { "vcpu", "irqchip", "pit", "clock", "vm", "serial",
				      "i8042" };

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A snapshot file of one section kind/id holding payload. */
static uint8_t *container(const char *kind, const char *id, const uint8_t *payload, size_t len,
			  size_t *out_len)
{
	size_t kl = strlen(kind), il = strlen(id), n = 24 + 2 + kl + 2 + il + 16 + len;
	uint8_t *f = calloc(1, n), *p = f + 24;
	memcpy(f, SNAP_MAGIC, 8);
	le(f + 8, SNAP_FORMAT_VERSION, 4), le(f + 12, SNAP_ARCH_X86_64, 4), le(f + 16, 1, 4);
	le(f + 20, crc32(0, f, 20), 4);
	le(p, kl, 2), memcpy(p + 2, kind, kl), p += 2 + kl;
	le(p, il, 2), memcpy(p + 2, id, il), p += 2 + il;
	le(p, 1, 4), le(p + 4, len, 8), le(p + 12, crc32(0, payload, (uInt)len), 4);
	memcpy(p + 16, payload, len);
	*out_len = n;
	return f;
}

static void read_one(int which, const struct snap_reader *r, const struct vcpu_state_host *host)
{
	char err[512];
	struct vm_state vs;
	struct serial_state ss;
	struct i8042_state ks;
	struct snapshot_machine m;
	struct vcpu_state *s = vcpu_state_alloc();
	int rc = 0;
	switch (which) {
	case 0:
		rc = vcpu_section_read(r, "fuzz", 0, host, s, err, sizeof(err));
		if (rc == 0)
			for (uint32_t i = 0; i < s->nmsrs; i++)
				if (!vcpu_state_host_has_msr(host, s->msrs[i].index))
					abort();
		if (rc == 0 && (s->nmsrs > host->nmsrs || s->ncpuid > VCPU_STATE_MAX_CPUID))
			abort();
		break;
	case 1:
	case 2:
	case 3:
		rc = vm_sections_read(r, "fuzz", &vs, err, sizeof(err)); /* irqchip first */
		break;
	case 4:
		rc = machine_section_read(r, "fuzz", 32, 1ull << 40, &m, err, sizeof(err));
		break;
	case 5:
		rc = serial_section_read(r, "fuzz", &ss, err, sizeof(err));
		if (rc == 0 && ss.rx_count > SERIAL_RX_FIFO_SIZE)
			abort();
		break;
	default:
		rc = i8042_section_read(r, "fuzz", &ks, err, sizeof(err));
		if (rc == 0 && (ks.nreply > I8042_REPLY_MAX || ks.nkeys > I8042_KBD_BUFFER))
			abort();
		break;
	}
	if (rc && !strstr(err, "snapshot fuzz: ")) /* one line naming the file */
		abort();
	vcpu_state_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vcpu_state_host host;
	if (host.nmsrs == 0) {
		const uint32_t msrs[] = { 0x10, 0x174, 0x175, 0x176, 0x1a0, 0x2ff, 0xc0000080,
					  0xc0000081, 0x4b564d01, 0x4b564d10, 0x4b564d11, 0x6e0 };
		memcpy(host.msrs, msrs, sizeof(msrs));
		host.nmsrs = sizeof(msrs) / sizeof(msrs[0]);
		host.xsave = true;
		host.xsave_size = 8192;
		host.xcrs = true;
	}
	if (size < 1)
		return 0;
	int which = data[0] % 7;
	size_t len;
	uint8_t *file = container(kinds[which], which == 0 ? "0" : "", data + 1, size - 1, &len);
	struct snap_reader *r;
	char err[512];
	if (snap_reader_open_buffer("fuzz", file, len, &r, err, sizeof(err)) == 0) {
		read_one(which, r, &host);
		snap_reader_close(r);
	}
	free(file);
	return 0;
}
