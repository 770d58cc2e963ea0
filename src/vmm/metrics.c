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
#include "devices/device_kind.h"
#include "devices/virtio/virtio.h"
#include "vmm/event_loop.h"
#include "vmm/timings.h"
#include "vmm/vcpu.h"
#include "vmm/vmm_state.h"

/* The VMM's metric families, in output order. */
enum family_id {
	F_STATE, F_UPTIME, F_GUEST_MEMORY, F_RSS, F_VCPUS, F_PAUSED,
	F_EXITS, F_VCPU_RUN, F_VCPU_CPU, F_VCPU_STEAL,
	F_ACCESSES, F_NOTIFIES, F_INTERRUPTS, F_POLL_WINDOWS, F_POLL_TIME,
	/* the device kinds' families come here */
	F_THROTTLED,
	F_API_REQUESTS, F_API_ERRORS, F_API_REFUSED,
	F_LOG_DROPPED, F_LOG_SUPPRESSED, F_METRICS_WRITTEN, F_METRICS_DROPPED,
	F_COUNT
};

#define FAMILY METRIC_FAMILY

static const struct metric_family families[F_COUNT] = {
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

const struct metric_family *const metrics_throttled = &families[F_THROTTLED];

struct sample {
	const struct metric_family *fam;
	unsigned rank, seq; /* output order: by family, then as added */
	char l1[64], l2[32];
	uint64_t value;
};

struct metrics_sink {
	struct sample *s;
	size_t n, cap;
	bool failed; /* out of memory: the rendering is refused */
};

/* A family's place in the output: the VMM's families before F_THROTTLED, then each
 * kind's in the order of device_kinds, then the rest of the VMM's. */
static unsigned family_rank(const struct metric_family *f)
{
	unsigned kinds = 0;
	for (int k = 0; device_kinds[k]; k++) {
		const struct device_kind *kind = device_kinds[k];
		if (f >= kind->families && f < kind->families + kind->nfamilies)
			return F_THROTTLED + kinds + (unsigned)(f - kind->families);
		kinds += (unsigned)kind->nfamilies;
	}
	unsigned id = (unsigned)(f - families);
	return id < F_THROTTLED ? id : id + kinds;
}

void metrics_add(struct metrics_sink *set, const struct metric_family *fam, const char *l1,
		 const char *l2, uint64_t value)
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
	*x = (struct sample){ .fam = fam, .rank = family_rank(fam), .seq = (unsigned)set->n,
			      .value = value };
	snprintf(x->l1, sizeof(x->l1), "%s", l1 ? l1 : "");
	snprintf(x->l2, sizeof(x->l2), "%s", l2 ? l2 : "");
	set->n++;
}

static void add(struct metrics_sink *set, enum family_id fam, const char *l1, const char *l2,
		uint64_t value)
{
	metrics_add(set, &families[fam], l1, l2, value);
}

static void addf(struct metrics_sink *set, enum family_id fam, uint64_t value, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void addf(struct metrics_sink *set, enum family_id fam, uint64_t value, const char *fmt, ...)
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

static void collect_process(struct metrics_sink *set, struct vmm *v)
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

static void collect_vcpus(struct metrics_sink *set, struct vm *vm)
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

static void collect_bus(struct metrics_sink *set, struct vmm *v, struct bus *bus)
{
	for (int i = 0; i < bus->nranges; i++) {
		struct bus_range *r = &bus->ranges[i];
		struct device *d = bus == &v->vm.mmio_bus ? device_set_at(&v->devices, r->base) : NULL;
		add(set, F_ACCESSES, bus->name, d ? d->label : r->ops->name,
		    __atomic_load_n(&r->accesses, __ATOMIC_RELAXED));
	}
}

/* Each device's transport counters, then whatever its kind counts. */
static void collect_devices(struct metrics_sink *set, struct vmm *v)
{
	struct event_loop_poll_stats poll;
	event_loop_poll_stats(v->vm.loop, &poll);
	add(set, F_POLL_WINDOWS, NULL, NULL, poll.windows);
	add(set, F_POLL_TIME, NULL, NULL, poll.ns);
	collect_bus(set, v, &v->vm.pio_bus);
	collect_bus(set, v, &v->vm.mmio_bus);
	for (int i = 0; i < v->devices.n; i++) {
		const struct device *d = &v->devices.items[i];
		add(set, F_NOTIFIES, d->label, NULL,
		    __atomic_load_n(&d->virtio->notifies, __ATOMIC_RELAXED));
		add(set, F_INTERRUPTS, d->label, NULL,
		    __atomic_load_n(&d->virtio->interrupts, __ATOMIC_RELAXED));
		if (d->kind->stats)
			d->kind->stats(d, set);
	}
}

static void collect_counters(struct metrics_sink *set, struct vmm *v)
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
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void collect(struct metrics_sink *set, struct vmm *v)
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
	const struct metric_family *f = s->fam;
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
	struct metrics_sink set = { 0 };
	struct text t = { .buf = malloc(16384), .cap = 16384 }; /* a scrape's usual size */
	t.failed = !t.buf;
	collect(&set, v);
	for (size_t i = 0; i < set.n && !set.failed; i++) {
		const struct metric_family *f = set.s[i].fam;
		if (i == 0 || set.s[i - 1].rank != set.s[i].rank)
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
	if (s->fam->ns)
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
	const struct metric_family *f = s->fam;
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
	struct metrics_sink set = { 0 };
	collect(&set, v);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	json_t *root = json_pack("{s:I}", "utc_timestamp_ms",
				 (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	int err = !root || set.failed;
	if (!err && v->cfg.metrics.emit_id) /* Firecracker's metrics.emit_id */
		err = json_object_set_new(root, "id", json_string(v->id));
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
