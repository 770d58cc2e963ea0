#include "vmm/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "devices/virtio/virtio.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_devices.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vcpu.h"
#include "vmm/vmm_state.h"

/* The metric families, in output order. Names follow Prometheus' conventions
 * (_total for counters, base units); `ns` families are counted in nanoseconds and
 * shown in seconds. */
enum family_id {
	F_STATE, F_UPTIME, F_GUEST_MEMORY, F_RSS, F_VCPUS, F_PAUSED,
	F_EXITS, F_VCPU_RUN, F_VCPU_CPU, F_VCPU_STEAL,
	F_ACCESSES, F_NOTIFIES, F_INTERRUPTS, F_POLL_WINDOWS, F_POLL_TIME,
	F_BLOCK_BYTES, F_BLOCK_OPS, F_BLOCK_ERRORS,
	F_NET_BYTES, F_NET_PACKETS, F_NET_DROPPED, F_NET_ERRORS,
	F_VSOCK_BYTES, F_VSOCK_PACKETS, F_VSOCK_ERRORS, F_VSOCK_CONNECTIONS,
	F_ENTROPY_BYTES, F_ENTROPY_REQUESTS, F_ENTROPY_ERRORS,
	F_BALLOON_TARGET, F_BALLOON_ACTUAL,
	F_THROTTLED,
	F_API_REQUESTS, F_API_ERRORS, F_API_REFUSED,
	F_LOG_DROPPED, F_LOG_SUPPRESSED, F_METRICS_WRITTEN, F_METRICS_DROPPED,
	F_COUNT
};

#define FAMILY(n, t, h, l1, l2, in_ns) \
	{ .name = n, .type = t, .help = h, .label1 = l1, .label2 = l2, .ns = in_ns }

static const struct family {
	const char *name, *type, *help, *label1, *label2;
	bool ns;
} families[F_COUNT] = {
	[F_STATE] = FAMILY("argon_vm_state", "gauge",
			"1 for the VM's current state",
			"state", NULL, false),
	[F_UPTIME] = FAMILY("argon_uptime_seconds", "gauge",
			"Time since argon-vmm started",
			NULL, NULL, true),
	[F_GUEST_MEMORY] = FAMILY("argon_guest_memory_bytes", "gauge",
			"Guest RAM configured",
			NULL, NULL, false),
	[F_RSS] = FAMILY("argon_vmm_rss_bytes", "gauge",
			"Resident set size of the argon-vmm process",
			NULL, NULL, false),
	[F_VCPUS] = FAMILY("argon_vcpus", "gauge",
			"vCPUs configured",
			NULL, NULL, false),
	[F_PAUSED] = FAMILY("argon_vm_paused_seconds_total", "counter",
			"Time spent paused",
			NULL, NULL, true),
	[F_EXITS] = FAMILY("argon_vcpu_exits_total", "counter",
			"vCPU exits to argon-vmm by KVM exit reason",
			"reason", NULL, false),
	[F_VCPU_RUN] = FAMILY("argon_vcpu_run_seconds_total", "counter",
			"Time each vCPU spent in KVM_RUN",
			"vcpu", NULL, true),
	[F_VCPU_CPU] = FAMILY("argon_vcpu_cpu_seconds_total", "counter",
			"Host CPU time of each vCPU thread",
			"vcpu", NULL, true),
	[F_VCPU_STEAL] = FAMILY("argon_vcpu_steal_seconds_total", "counter",
			"Time each vCPU thread was runnable but waited for a host CPU",
			"vcpu", NULL, true),
	[F_ACCESSES] = FAMILY("argon_device_accesses_total", "counter",
			"Guest port I/O and MMIO accesses that reached argon-vmm, per device",
			"bus", "device", false),
	[F_NOTIFIES] = FAMILY("argon_virtio_notifies_total", "counter",
			"Queue notifications from the guest, per virtio device",
			"device", NULL, false),
	[F_INTERRUPTS] = FAMILY("argon_virtio_interrupts_total", "counter",
			"Interrupts sent to the guest, per virtio device",
			"device", NULL, false),
	[F_POLL_WINDOWS] = FAMILY("argon_device_poll_windows_total", "counter",
			"Times the device thread polled busy queues instead of sleeping",
			NULL, NULL, false),
	[F_POLL_TIME] = FAMILY("argon_device_poll_seconds_total", "counter",
			"Time the device thread spent polling (its CPU, which sleeping "
			"would have left to others)",
			NULL, NULL, true),
	[F_BLOCK_BYTES] = FAMILY("argon_block_bytes_total", "counter",
			"Bytes read and written per drive",
			"drive", "op", false),
	[F_BLOCK_OPS] = FAMILY("argon_block_ops_total", "counter",
			"Requests completed per drive and kind",
			"drive", "op", false),
	[F_BLOCK_ERRORS] = FAMILY("argon_block_errors_total", "counter",
			"Requests failed by the host (io) or refused as malformed or "
			"unsupported (bad_request)",
			"drive", "kind", false),
	[F_NET_BYTES] = FAMILY("argon_net_bytes_total", "counter",
			"Bytes per interface and direction",
			"iface", "direction", false),
	[F_NET_PACKETS] = FAMILY("argon_net_packets_total", "counter",
			"Frames per interface and direction",
			"iface", "direction", false),
	[F_NET_DROPPED] = FAMILY("argon_net_dropped_total", "counter",
			"Frames dropped",
			"iface", "direction", false),
	[F_NET_ERRORS] = FAMILY("argon_net_errors_total", "counter",
			"Malformed chains and tap errors",
			"iface", "direction", false),
	[F_VSOCK_BYTES] = FAMILY("argon_vsock_bytes_total", "counter",
			"Stream payload bytes, tx = guest to host", "direction", NULL, false),
	[F_VSOCK_PACKETS] = FAMILY("argon_vsock_packets_total", "counter",
			"vsock packets, tx = from the guest", "direction", NULL, false),
	[F_VSOCK_ERRORS] = FAMILY("argon_vsock_errors_total", "counter",
			"Guest packets dropped as malformed or misaddressed (dropped), resets "
			"sent (rst), connections refused (refused), data beyond the credit "
			"we gave (credit)",
			"kind", NULL, false),
	[F_VSOCK_CONNECTIONS] = FAMILY("argon_vsock_connections", "gauge",
			"vsock streams open now", NULL, NULL, false),
	[F_ENTROPY_BYTES] = FAMILY("argon_entropy_bytes_total", "counter",
			"Random bytes given",
			NULL, NULL, false),
	[F_ENTROPY_REQUESTS] = FAMILY("argon_entropy_requests_total", "counter",
			"Entropy requests",
			NULL, NULL, false),
	[F_ENTROPY_ERRORS] = FAMILY("argon_entropy_errors_total", "counter",
			"Failed entropy requests",
			NULL, NULL, false),
	[F_BALLOON_TARGET] = FAMILY("argon_balloon_target_bytes", "gauge",
			"Balloon size asked for",
			NULL, NULL, false),
	[F_BALLOON_ACTUAL] = FAMILY("argon_balloon_actual_bytes", "gauge",
			"Balloon size the guest holds",
			NULL, NULL, false),
	[F_THROTTLED] = FAMILY("argon_rate_limiter_throttled_total", "counter",
			"Times a rate limiter made a device wait",
			"device", NULL, false),
	[F_API_REQUESTS] = FAMILY("argon_api_requests_total", "counter",
			"API requests per endpoint",
			"endpoint", NULL, false),
	[F_API_ERRORS] = FAMILY("argon_api_errors_total", "counter",
			"API requests answered with an error status, per endpoint",
			"endpoint", NULL, false),
	[F_API_REFUSED] = FAMILY("argon_api_connections_refused_total", "counter",
			"API connections refused because too many were open",
			NULL, NULL, false),
	[F_LOG_DROPPED] = FAMILY("argon_log_lines_dropped_total", "counter",
			"Log lines lost to a full buffer or a refusing destination",
			NULL, NULL, false),
	[F_LOG_SUPPRESSED] = FAMILY("argon_log_lines_suppressed_total", "counter",
			"Log lines a guest triggered that the rate limits held back",
			NULL, NULL, false),
	[F_METRICS_WRITTEN] = FAMILY("argon_metrics_lines_written_total", "counter",
			"JSON lines written to the metrics file",
			NULL, NULL, false),
	[F_METRICS_DROPPED] = FAMILY("argon_metrics_lines_dropped_total", "counter",
			"JSON lines the metrics file could not take",
			NULL, NULL, false),
};

struct sample {
	enum family_id fam;
	unsigned seq;
	char l1[64], l2[32];
	uint64_t value;
};

struct sample_set {
	struct sample *s;
	size_t n, cap;
	bool failed; /* out of memory: the rendering is refused */
};

static void add(struct sample_set *set, enum family_id fam, const char *l1, const char *l2,
		uint64_t value)
{
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 128;
		struct sample *s = realloc(set->s, cap * sizeof(*s));
		if (!s) {
			set->failed = true;
			return;
		}
		set->s = s;
		set->cap = cap;
	}
	struct sample *x = &set->s[set->n];
	*x = (struct sample){ .fam = fam, .seq = (unsigned)set->n, .value = value };
	snprintf(x->l1, sizeof(x->l1), "%s", l1 ? l1 : "");
	snprintf(x->l2, sizeof(x->l2), "%s", l2 ? l2 : "");
	set->n++;
}

static void addf(struct sample_set *set, enum family_id fam, uint64_t value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void addf(struct sample_set *set, enum family_id fam, uint64_t value, const char *fmt, ...)
{
	char l1[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l1, sizeof(l1), fmt, ap);
	va_end(ap);
	add(set, fam, l1, NULL, value);
}

/* ---- collection ---- */

/* The first two numbers of a small /proc file (one read, no stdio). */
static void read_two(const char *path, unsigned long long *a, unsigned long long *b)
{
	char buf[128];
	*a = *b = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		if (sscanf(buf, "%llu %llu", a, b) != 2)
			*a = *b = 0;
	}
}

static uint64_t rss_bytes(void)
{
	unsigned long long size, resident;
	read_two("/proc/self/statm", &size, &resident);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* /proc/self/task/TID/schedstat: time on a CPU, time runnable but waiting (ns). */
static void schedstat(int tid, uint64_t *cpu, uint64_t *wait)
{
	char path[64];
	unsigned long long c = 0, w = 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", tid);
	if (tid > 0)
		read_two(path, &c, &w);
	*cpu = c;
	*wait = w;
}

static void collect_process(struct sample_set *set, struct vmm *v)
{
	for (enum vmm_state s = VMM_NOT_STARTED; s <= VMM_PAUSED; s++)
		add(set, F_STATE, vmm_state_name(s), NULL, v->state == s);
	add(set, F_UPTIME, NULL, NULL, timings_now() - v->process_start);
	add(set, F_GUEST_MEMORY, NULL, NULL, v->cfg.mem_mib << 20);
	add(set, F_RSS, NULL, NULL, rss_bytes());
	add(set, F_VCPUS, NULL, NULL, (uint64_t)v->cfg.vcpus);
	uint64_t paused = 0;
	if (v->vm_created) {
		pthread_mutex_lock(&v->vm.pause.lock);
		paused = v->vm.pause.paused_total_ns;
		if (v->vm.pause.paused)
			paused += timings_now() - v->vm.pause.paused_at_ns;
		pthread_mutex_unlock(&v->vm.pause.lock);
	}
	add(set, F_PAUSED, NULL, NULL, paused);
}

static void collect_vcpus(struct sample_set *set, struct vm *vm)
{
	for (uint32_t r = 0; r < EXIT_REASON_MAX; r++) {
		uint64_t n = __atomic_load_n(&vm->exits.by_reason[r], __ATOMIC_RELAXED);
		if (n)
			add(set, F_EXITS, exit_reason_name(r), NULL, n);
	}
	for (int i = 0; vm->vcpus && i < vm->nvcpus; i++) {
		struct vcpu *c = &vm->vcpus[i];
		uint64_t cpu, wait;
		schedstat(__atomic_load_n(&c->tid, __ATOMIC_RELAXED), &cpu, &wait);
		addf(set, F_VCPU_RUN, __atomic_load_n(&c->run_ns, __ATOMIC_RELAXED), "%d", i);
		addf(set, F_VCPU_CPU, cpu, "%d", i);
		addf(set, F_VCPU_STEAL, wait, "%d", i);
	}
}

/* "block:rootfs", "net:eth0", "vsock", "entropy", "balloon": the k-th device of a
 * kind was made from the k-th entry of that kind in the configuration. */
static void device_label(struct vmm *v, int index, char *out, size_t len)
{
	struct virtio_device *dev = v->vm.virtio[index];
	int k = 0;
	for (int i = 0; i < index; i++)
		k += v->vm.virtio[i]->ops->device_id == dev->ops->device_id;
	uint32_t id = dev->ops->device_id;
	if (id == VIRTIO_ID_BLOCK && k < v->cfg.ndrives)
		snprintf(out, len, "block:%s", v->cfg.drives[k].drive_id);
	else if (id == VIRTIO_ID_NET && k < v->cfg.nnets)
		snprintf(out, len, "net:%s", v->cfg.nets[k].iface_id);
	else if (id == VIRTIO_ID_RNG)
		snprintf(out, len, "entropy");
	else
		snprintf(out, len, "%s", dev->ops->name);
}

static void collect_bus(struct sample_set *set, struct vmm *v, struct bus *bus)
{
	for (int i = 0; i < bus->nranges; i++) {
		struct bus_range *r = &bus->ranges[i];
		char label[64];
		snprintf(label, sizeof(label), "%s", r->ops->name);
		for (int d = 0; d < v->vm.nvirtio; d++)
			if (bus == &v->vm.mmio_bus && v->vm.virtio[d]->mmio_base == r->base)
				device_label(v, d, label, sizeof(label));
		add(set, F_ACCESSES, bus->name, label, __atomic_load_n(&r->accesses, __ATOMIC_RELAXED));
	}
}

static void collect_block(struct sample_set *set, struct virtio_device *dev, const char *label)
{
	struct virtio_blk_stats s;
	virtio_blk_get_stats(dev, &s);
	const char *drive = label + strlen("block:");
	add(set, F_BLOCK_BYTES, drive, "read", s.read_bytes);
	add(set, F_BLOCK_BYTES, drive, "write", s.write_bytes);
	add(set, F_BLOCK_OPS, drive, "read", s.read_ops);
	add(set, F_BLOCK_OPS, drive, "write", s.write_ops);
	add(set, F_BLOCK_OPS, drive, "flush", s.flush_ops);
	add(set, F_BLOCK_OPS, drive, "discard", s.discard_ops);
	add(set, F_BLOCK_OPS, drive, "write_zeroes", s.write_zeroes_ops);
	add(set, F_BLOCK_OPS, drive, "get_id", s.get_id_ops);
	add(set, F_BLOCK_ERRORS, drive, "io", s.io_errors);
	add(set, F_BLOCK_ERRORS, drive, "bad_request", s.bad_requests);
	add(set, F_THROTTLED, label, NULL, s.throttled);
}

static void collect_net(struct sample_set *set, struct virtio_device *dev, const char *label)
{
	struct virtio_net_stats s;
	virtio_net_get_stats(dev, &s);
	const char *iface = label + strlen("net:");
	add(set, F_NET_BYTES, iface, "rx", s.rx_bytes);
	add(set, F_NET_BYTES, iface, "tx", s.tx_bytes);
	add(set, F_NET_PACKETS, iface, "rx", s.rx_packets);
	add(set, F_NET_PACKETS, iface, "tx", s.tx_packets);
	add(set, F_NET_DROPPED, iface, "rx", s.rx_dropped);
	add(set, F_NET_DROPPED, iface, "tx", s.tx_dropped);
	add(set, F_NET_ERRORS, iface, "rx", s.rx_errors);
	add(set, F_NET_ERRORS, iface, "tx", s.tx_errors);
	addf(set, F_THROTTLED, s.rx_throttled, "%s:rx", label);
	addf(set, F_THROTTLED, s.tx_throttled, "%s:tx", label);
}

static void collect_vsock(struct sample_set *set, struct virtio_device *dev)
{
	struct vsock_stats s;
	uint32_t open_streams;
	virtio_vsock_get_stats(dev, &s, &open_streams);
	add(set, F_VSOCK_BYTES, "tx", NULL, s.tx_bytes);
	add(set, F_VSOCK_BYTES, "rx", NULL, s.rx_bytes);
	add(set, F_VSOCK_PACKETS, "tx", NULL, s.tx_packets);
	add(set, F_VSOCK_PACKETS, "rx", NULL, s.rx_packets);
	add(set, F_VSOCK_ERRORS, "dropped", NULL, s.dropped);
	add(set, F_VSOCK_ERRORS, "rst", NULL, s.rst_sent);
	add(set, F_VSOCK_ERRORS, "refused", NULL, s.refused);
	add(set, F_VSOCK_ERRORS, "credit", NULL, s.credit_violations);
	add(set, F_VSOCK_CONNECTIONS, NULL, NULL, open_streams);
}

static void collect_entropy(struct sample_set *set, struct virtio_device *dev)
{
	struct virtio_rng_stats s;
	virtio_rng_get_stats(dev, &s);
	add(set, F_ENTROPY_BYTES, NULL, NULL, s.bytes);
	add(set, F_ENTROPY_REQUESTS, NULL, NULL, s.requests);
	add(set, F_ENTROPY_ERRORS, NULL, NULL, s.errors);
	add(set, F_THROTTLED, "entropy", NULL, s.throttled);
}

static void collect_balloon(struct sample_set *set, struct virtio_device *dev)
{
	struct virtio_balloon_stats s;
	if (virtio_balloon_get_stats(dev, &s))
		return;
	add(set, F_BALLOON_TARGET, NULL, NULL, (uint64_t)s.target_pages << VIRTIO_BALLOON_PFN_SHIFT);
	add(set, F_BALLOON_ACTUAL, NULL, NULL, (uint64_t)s.actual_pages << VIRTIO_BALLOON_PFN_SHIFT);
}

static void collect_devices(struct sample_set *set, struct vmm *v)
{
	struct event_loop_poll_stats poll;
	event_loop_poll_stats(v->vm.loop, &poll);
	add(set, F_POLL_WINDOWS, NULL, NULL, poll.windows);
	add(set, F_POLL_TIME, NULL, NULL, poll.ns);
	collect_bus(set, v, &v->vm.pio_bus);
	collect_bus(set, v, &v->vm.mmio_bus);
	for (int i = 0; i < v->vm.nvirtio; i++) {
		struct virtio_device *dev = v->vm.virtio[i];
		char label[64];
		device_label(v, i, label, sizeof(label));
		add(set, F_NOTIFIES, label, NULL, __atomic_load_n(&dev->notifies, __ATOMIC_RELAXED));
		add(set, F_INTERRUPTS, label, NULL,
		    __atomic_load_n(&dev->interrupts, __ATOMIC_RELAXED));
		uint32_t id = dev->ops->device_id;
		if (id == VIRTIO_ID_BLOCK && strncmp(label, "block:", 6) == 0)
			collect_block(set, dev, label);
		else if (id == VIRTIO_ID_NET && strncmp(label, "net:", 4) == 0)
			collect_net(set, dev, label);
		else if (id == VIRTIO_ID_VSOCK)
			collect_vsock(set, dev);
		else if (id == VIRTIO_ID_RNG)
			collect_entropy(set, dev);
		else if (id == VIRTIO_ID_BALLOON)
			collect_balloon(set, dev);
	}
}

static void collect_counters(struct sample_set *set, struct vmm *v)
{
	struct metrics *m = &v->metrics;
	for (int i = 0; i < m->nendpoints; i++) {
		struct api_endpoint_stats *e = &m->endpoints[i];
		add(set, F_API_REQUESTS, e->name, NULL, __atomic_load_n(&e->requests, __ATOMIC_RELAXED));
		add(set, F_API_ERRORS, e->name, NULL, __atomic_load_n(&e->errors, __ATOMIC_RELAXED));
	}
	add(set, F_API_REFUSED, NULL, NULL,
	    __atomic_load_n(&m->api_connections_refused, __ATOMIC_RELAXED));
	add(set, F_LOG_DROPPED, NULL, NULL, log_lines_dropped());
	add(set, F_LOG_SUPPRESSED, NULL, NULL, log_lines_suppressed());
	add(set, F_METRICS_WRITTEN, NULL, NULL, m->lines_written);
	add(set, F_METRICS_DROPPED, NULL, NULL, m->lines_dropped);
}

static int by_family(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	if (x->fam != y->fam)
		return x->fam < y->fam ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void collect(struct sample_set *set, struct vmm *v)
{
	collect_process(set, v);
	if (v->vm_created && v->state != VMM_NOT_STARTED) {
		collect_vcpus(set, &v->vm);
		collect_devices(set, v);
	}
	collect_counters(set, v);
	if (set->n)
		qsort(set->s, set->n, sizeof(set->s[0]), by_family);
}

/* ---- Prometheus text ---- */

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !t->failed; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
		} else if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		} else {
			size_t cap = (t->cap + (size_t)n + 1) * 2;
			char *b = realloc(t->buf, cap);
			t->failed = !b;
			t->buf = b ? b : t->buf;
			t->cap = b ? cap : t->cap;
		}
	}
}

/* Label values escaped as the text format asks: backslash, quote, newline. */
static void text_label(struct text *t, const char *name, const char *value)
{
	text_printf(t, "%s=\"", name);
	for (const char *c = value; *c;) {
		size_t plain = strcspn(c, "\\\"\n");
		text_printf(t, "%.*s", (int)plain, c);
		c += plain;
		if (*c) {
			text_printf(t, "%s", *c == '\\' ? "\\\\" : *c == '"' ? "\\\"" : "\\n");
			c++;
		}
	}
	text_printf(t, "\"");
}

static void text_sample(struct text *t, const struct sample *s)
{
	const struct family *f = &families[s->fam];
	text_printf(t, "%s", f->name);
	if (f->label1) {
		text_printf(t, "{");
		text_label(t, f->label1, s->l1);
		if (f->label2) {
			text_printf(t, ",");
			text_label(t, f->label2, s->l2);
		}
		text_printf(t, "}");
	}
	if (f->ns)
		text_printf(t, " %llu.%09llu\n", (unsigned long long)(s->value / 1000000000ULL),
			    (unsigned long long)(s->value % 1000000000ULL));
	else
		text_printf(t, " %llu\n", (unsigned long long)s->value);
}

char *metrics_prometheus(struct vmm *v)
{
	struct sample_set set = { 0 };
	struct text t = { .buf = malloc(16384), .cap = 16384 }; /* a scrape's usual size */
	t.failed = !t.buf;
	collect(&set, v);
	for (size_t i = 0; i < set.n && !set.failed; i++) {
		const struct family *f = &families[set.s[i].fam];
		if (i == 0 || set.s[i - 1].fam != set.s[i].fam)
			text_printf(&t, "# HELP %s %s.\n# TYPE %s %s\n", f->name, f->help, f->name,
				    f->type);
		text_sample(&t, &set.s[i]);
	}
	free(set.s);
	if (set.failed || t.failed || !t.buf) {
		free(t.buf);
		return NULL;
	}
	return t.buf;
}

/* ---- JSON line ---- */

static json_t *json_value(const struct sample *s)
{
	if (families[s->fam].ns)
		return json_real((double)s->value / 1e9);
	return json_integer((json_int_t)s->value);
}

/* obj[key], created as an object when missing. */
static json_t *child(json_t *obj, const char *key)
{
	json_t *c = json_object_get(obj, key);
	if (!c && json_object_set_new(obj, key, json_object()) == 0)
		c = json_object_get(obj, key);
	return c;
}

static int json_sample(json_t *root, const struct sample *s)
{
	const struct family *f = &families[s->fam];
	const char *key = f->name + strlen("argon_");
	if (!f->label1)
		return json_object_set_new(root, key, json_value(s));
	json_t *obj = child(root, key);
	if (obj && f->label2)
		obj = child(obj, s->l1);
	return obj ? json_object_set_new(obj, f->label2 ? s->l2 : s->l1, json_value(s)) : -1;
}

char *metrics_json(struct vmm *v)
{
	struct sample_set set = { 0 };
	collect(&set, v);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	json_t *root = json_pack("{s:I}", "utc_timestamp_ms",
				 (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	int err = !root || set.failed;
	for (size_t i = 0; i < set.n && !err; i++)
		err = json_sample(root, &set.s[i]);
	free(set.s);
	char *out = err ? NULL : json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

/* ---- the metrics file ---- */

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	m->period_ms = METRICS_DEFAULT_PERIOD_MS;
}

void metrics_close(struct metrics *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int metrics_open(struct metrics *m, const char *path, uint32_t period_ms, char *err,
		 size_t errlen)
{
	int fd = -1;
	struct stat st;
	if (path && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	else if (path)
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
			  0600);
	if (path && fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	metrics_close(m);
	m->fd = fd;
	m->period_ms = period_ms ? period_ms : METRICS_DEFAULT_PERIOD_MS;
	m->next_flush_ns = timings_now() + (uint64_t)m->period_ms * 1000000ULL;
	return 0;
}

int64_t metrics_due_in(const struct metrics *m, uint64_t now_ns)
{
	if (m->fd < 0)
		return -1;
	return m->next_flush_ns > now_ns ? (int64_t)(m->next_flush_ns - now_ns) : 0;
}

int metrics_flush(struct vmm *v)
{
	struct metrics *m = &v->metrics;
	if (m->fd < 0)
		return 0;
	m->next_flush_ns = timings_now() + (uint64_t)m->period_ms * 1000000ULL;
	char *line = metrics_json(v);
	if (!line) {
		m->lines_dropped++;
		return -ENOMEM;
	}
	size_t len = strlen(line);
	line[len] = '\n'; /* in place of the terminator: written as len + 1 bytes */
	ssize_t n = write(m->fd, line, len + 1);
	int rc = n == (ssize_t)(len + 1) ? 0 : n < 0 ? -errno : -EAGAIN;
	free(line);
	if (rc)
		m->lines_dropped++;
	else
		m->lines_written++;
	return rc;
}
