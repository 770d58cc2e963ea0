/* 16550A UART (National Semiconductor PC16550D data sheet). Output is buffered and
 * written in batches; while the guest polls (THR-empty interrupt off), its writes to
 * THR are coalesced by KVM and cost no exit. */
#include "devices/serial.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "common/log.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"

enum { REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RX_DATA 0x01
#define IER_THR_EMPTY 0x02
#define IIR_NONE 0x01
#define IIR_THR_EMPTY 0x02
#define IIR_RX_DATA 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define LSR_TX_EMPTY 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_DCD 0x80

#define RX_FIFO_SIZE SERIAL_RX_FIFO_SIZE
#define SERIAL_FLUSH_PERIOD_NS 10000000ULL
#define OUT_BUF_SIZE 4096

struct serial {
	struct vm *vm;
	pthread_mutex_t lock;
	int in_fd, out_fd;
	bool in_watched;
	uint8_t ier, fcr, lcr, mcr, scr, dll, dlm;
	bool thr_interrupt; /* THR-empty interrupt pending until IIR read or THR write */
	bool irq_level;
	uint8_t rx[RX_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint8_t out[OUT_BUF_SIZE];
	size_t out_len;
	bool coalescing;
};

static void flush_locked(struct serial *s)
{
	size_t done = 0;
	while (done < s->out_len) {
		ssize_t n = write(s->out_fd, s->out + done, s->out_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* output closed: the guest's console output is dropped */
		done += (size_t)n;
	}
	s->out_len = 0;
}

static uint8_t iir_locked(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO_ENABLED : 0;
	if ((s->ier & IER_RX_DATA) && s->rx_count)
		return fifo | IIR_RX_DATA;
	if ((s->ier & IER_THR_EMPTY) && s->thr_interrupt)
		return fifo | IIR_THR_EMPTY;
	return fifo | IIR_NONE;
}

/* The line follows the interrupt condition; each rise is an edge for the IOAPIC. */
static void update_irq_locked(struct serial *s)
{
	bool level = (iir_locked(s) & IIR_NONE) == 0;
	if (level != s->irq_level) {
		s->irq_level = level;
		vm_set_irq_line(s->vm, LAYOUT_IRQ_COM1, level);
	}
}

static void rx_push_locked(struct serial *s, uint8_t byte)
{
	if (s->rx_count == RX_FIFO_SIZE)
		return; /* overrun: the byte is lost, as on the real part */
	s->rx[(s->rx_head + s->rx_count) % RX_FIFO_SIZE] = byte;
	s->rx_count++;
}

static uint8_t rx_pop_locked(struct serial *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t byte = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % RX_FIFO_SIZE;
	s->rx_count--;
	return byte;
}

static void transmit_locked(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_push_locked(s, byte);
		return;
	}
	timings_mark(&s->vm->timings.first_byte);
	s->out[s->out_len++] = byte;
	if (byte == '\n' || s->out_len == OUT_BUF_SIZE)
		flush_locked(s);
}

static uint8_t msr_locked(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback: the modem outputs appear on the inputs (Linux's probe checks this). */
	return (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
			 ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
}

static uint8_t read_locked(struct serial *s, uint64_t reg)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case REG_DATA:
		return dlab ? s->dll : rx_pop_locked(s);
	case REG_IER:
		return dlab ? s->dlm : s->ier;
	case REG_IIR_FCR: {
		uint8_t iir = iir_locked(s);
		if ((iir & 0x0f) == IIR_THR_EMPTY)
			s->thr_interrupt = false; /* reading IIR acknowledges THR empty */
		return iir;
	}
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return (s->rx_count ? LSR_DATA_READY : 0) | LSR_THR_EMPTY | LSR_TX_EMPTY;
	case REG_MSR:
		return msr_locked(s);
	default:
		return s->scr;
	}
}

/* Returns true when the THR-empty interrupt was switched on or off. */
static bool write_locked(struct serial *s, uint64_t reg, uint8_t v)
{
	bool dlab = s->lcr & LCR_DLAB;
	uint8_t old_ier = s->ier;
	switch (reg) {
	case REG_DATA:
		if (dlab) {
			s->dll = v;
		} else {
			transmit_locked(s, v);
			s->thr_interrupt = true; /* we transmit at once: THR is empty again */
		}
		break;
	case REG_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		s->ier = v & 0x0f;
		if ((s->ier & IER_THR_EMPTY) && !(old_ier & IER_THR_EMPTY))
			s->thr_interrupt = true;
		break;
	case REG_IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_count = 0;
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & 0x1f;
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	return (old_ier ^ s->ier) & IER_THR_EMPTY;
}

static void rx_space_changed_locked(struct serial *s);

static void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	data[0] = read_locked(s, offset);
	memset(data + 1, 0, len - 1);
	if (offset == REG_DATA)
		rx_space_changed_locked(s);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	bool thr_irq_toggled = write_locked(s, offset, data[0]);
	bool coalesce = !(s->ier & IER_THR_EMPTY);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: changing the zone drains the ring, which calls back here.
	 * Coalesce THR writes only while the guest polls; with the THR-empty interrupt
	 * on, each write must exit so the interrupt can follow it. */
	if (thr_irq_toggled && s->coalescing != coalesce &&
	    vm_coalesce_pio(s->vm, LAYOUT_PORT_COM1, 1, coalesce) == 0)
		s->coalescing = coalesce;
}

static const struct bus_device_ops serial_ops = {
	.name = "serial",
	.read = serial_read,
	.write = serial_write,
};

static void serial_input(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	uint8_t buf[RX_FIFO_SIZE];
	size_t room = RX_FIFO_SIZE - s->rx_count;
	ssize_t n = room ? read(s->in_fd, buf, room) : 0;
	if (n > 0) {
		for (ssize_t i = 0; i < n; i++)
			rx_push_locked(s, buf[i]);
		update_irq_locked(s);
	} else if ((room && (n == 0 || (errno != EINTR && errno != EAGAIN))) ||
		   (!room && (events & (EPOLLHUP | EPOLLERR)))) {
		/* End of input: stop watching so an EOF does not spin the loop. */
		event_loop_remove(s->vm->loop, s->in_fd);
		s->in_fd = -1;
	}
	rx_space_changed_locked(s);
	pthread_mutex_unlock(&s->lock);
}

/* Stop reading the host while the FIFO is full, so input waits in the host's buffer
 * rather than being dropped; start again when the guest makes room. */
static void rx_space_changed_locked(struct serial *s)
{
	if (s->in_fd < 0)
		return;
	bool want = s->rx_count < RX_FIFO_SIZE;
	if (want != s->in_watched &&
	    event_loop_modify(s->vm->loop, s->in_fd, want ? EPOLLIN : 0) == 0)
		s->in_watched = want;
}

/* Output the guest left in KVM's coalesced ring, or a partial line (a prompt) in our
 * buffer, would otherwise wait for the guest's next exit. */
static void serial_tick(void *opaque, uint32_t events)
{
	struct serial *s = opaque;
	vm_drain_coalesced(s->vm);
	serial_flush(s);
}

int serial_create(struct vm *vm, int in_fd, int out_fd, struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	s->in_fd = in_fd;
	s->out_fd = out_fd;
	pthread_mutex_init(&s->lock, NULL);
	int err = bus_register(&vm->pio_bus, LAYOUT_PORT_COM1, 8, &serial_ops, s);
	if (!err && in_fd >= 0) {
		err = event_loop_add(vm->loop, in_fd, EPOLLIN, serial_input, s);
		s->in_watched = err == 0;
		if (err == -EPERM) { /* a regular file or /dev/null: nothing will ever arrive */
			s->in_fd = -1;
			err = 0;
		}
	}
	if (!err) {
		int timer = event_loop_add_timer(vm->loop, SERIAL_FLUSH_PERIOD_NS, serial_tick, s);
		err = timer < 0 ? timer : 0;
	}
	if (err) {
		free(s);
		return err;
	}
	s->coalescing = vm_coalesce_pio(vm, LAYOUT_PORT_COM1, 1, true) == 0;
	*out = s;
	return 0;
}

void serial_get_state(struct serial *s, struct serial_state *st)
{
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	*st = (struct serial_state){ .ier = s->ier, .fcr = s->fcr, .lcr = s->lcr, .mcr = s->mcr,
				     .scr = s->scr, .dll = s->dll, .dlm = s->dlm,
				     .thr_interrupt = s->thr_interrupt,
				     .irq_level = s->irq_level, .rx_count = (uint8_t)s->rx_count };
	for (unsigned i = 0; i < s->rx_count; i++)
		st->rx[i] = s->rx[(s->rx_head + i) % RX_FIFO_SIZE];
	pthread_mutex_unlock(&s->lock);
}

int serial_set_state(struct serial *s, const struct serial_state *st)
{
	if (st->rx_count > RX_FIFO_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = st->ier & 0x0f;
	s->fcr = st->fcr & 0xc9;
	s->lcr = st->lcr;
	s->mcr = st->mcr & 0x1f;
	s->scr = st->scr;
	s->dll = st->dll;
	s->dlm = st->dlm;
	s->thr_interrupt = st->thr_interrupt;
	/* The irqchip's restored state holds the line as it was: no new edge. */
	s->irq_level = st->irq_level;
	s->rx_head = 0;
	s->rx_count = st->rx_count;
	memcpy(s->rx, st->rx, st->rx_count);
	bool coalesce = !(s->ier & IER_THR_EMPTY);
	pthread_mutex_unlock(&s->lock);
	if (s->coalescing != coalesce && vm_coalesce_pio(s->vm, LAYOUT_PORT_COM1, 1, coalesce) == 0)
		s->coalescing = coalesce;
	return 0;
}

void serial_flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	serial_flush(s);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
