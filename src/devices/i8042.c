/* The i8042 keyboard controller and a PS/2 keyboard (IBM PS/2 Technical Reference:
 * "Keyboard/Auxiliary Device Controller" and "Keyboards (101- and 102-Key)"), as far
 * as Linux's i8042 and atkbd drivers and argon-guest use them (drivers/input/serio/
 * i8042.c, drivers/input/keyboard/atkbd.c): status register, command byte, self-tests,
 * keyboard enable/disable, output port, the reset line, keyboard commands answered
 * as a real keyboard does, and IRQ 1. There is no aux (mouse) port: its commands go
 * unanswered, as on a controller without one.
 *
 * Two queues feed the output buffer: replies to the guest's last command (controller
 * or keyboard; a new command drops unread ones) and, behind them, the keyboard's
 * scan codes (I8042_KBD_BUFFER bytes; held while the guest disables the keyboard
 * interface). Port 0x60 reads the next byte; IRQ 1 follows "output buffer full and
 * command byte bit 0", with a fresh edge for every byte the guest is handed.
 *
 * Scan codes: the keyboard speaks set 2. The controller translates to set 1 only
 * while the guest sets command-byte bit 6 (XLATE), as a PC's 8042 does. argon starts
 * with XLATE clear, as Firecracker does: Linux then drives the keyboard "direct"
 * (serio type 8042, atkbd expects set 2) and argon-guest decodes set 2. A guest that
 * turns XLATE on receives set 1 (only the codes this keyboard can send are in the
 * translation table).
 *
 * Locking: one mutex; vCPU threads (port accesses), the event loop (coalesced
 * writes drained on its timer) and the API thread (Ctrl+Alt+Del) all take it. Writes
 * to the command port are coalesced by KVM (no exit); they are applied in order
 * before any later exit is handled, so a status or data read always sees them. */
#include "devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "vmm/vm.h"

/* Status register (port 0x64, read). */
#define STS_OBF 0x01	  /* output buffer full: port 0x60 has a byte */
#define STS_SYS 0x04	  /* system flag: command byte bit 2 */
#define STS_CMD 0x08	  /* the last write went to port 0x64 */
#define STS_UNLOCKED 0x10 /* keyboard not inhibited by the key lock */

/* Command byte. */
#define CTR_KBD_INT 0x01
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40
/* After a PC's POST: keyboard interrupt on, system flag set; XLATE clear (above). */
#define CTR_DEFAULT (CTR_KBD_INT | CTR_SYS)
/* Output port: bit 0 is the CPU reset line (active low), bit 1 the A20 gate. */
#define OUTP_RESET_LINE 0x01
#define OUTP_DEFAULT 0x03

/* Controller commands (port 0x64). */
enum {
	CMD_READ_CTR = 0x20,
	CMD_WRITE_CTR = 0x60,
	CMD_AUX_DISABLE = 0xa7,
	CMD_AUX_ENABLE = 0xa8,
	CMD_SELF_TEST = 0xaa,
	CMD_KBD_TEST = 0xab,
	CMD_KBD_DISABLE = 0xad,
	CMD_KBD_ENABLE = 0xae,
	CMD_READ_OUTP = 0xd0,
	CMD_WRITE_OUTP = 0xd1,
	CMD_PULSE = 0xf0, /* 0xf0-0xff: pulse output port bits 0-3 where the command has 0 */
};
#define SELF_TEST_OK 0x55
#define KBD_TEST_OK 0x00

/* Keyboard commands (port 0x60) and replies. */
enum {
	KBD_SET_LEDS = 0xed,
	KBD_ECHO = 0xee,
	KBD_SCANCODE_SET = 0xf0,
	KBD_GET_ID = 0xf2,
	KBD_SET_RATE = 0xf3,
	KBD_DEFAULT_DISABLE = 0xf5,
	KBD_SET_DEFAULT = 0xf6,
	KBD_RESEND = 0xfe,
	KBD_RESET = 0xff,
};
#define KBD_ACK 0xfa
#define KBD_NAK 0xfe /* "resend": unknown command or bad parameter */
#define KBD_BAT_OK 0xaa
#define KBD_ID0 0xab /* MF2 keyboard: 0xab 0x83 */
#define KBD_ID1 0x83
#define KBD_SET2 2
#define SET2_BREAK 0xf0

#define REPLY_MAX I8042_REPLY_MAX

struct byte_queue {
	uint8_t *buf;
	unsigned cap, head, count;
};

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	void (*irq_hook)(void *ctx, int level);
	void *irq_ctx;
	uint8_t ctr, outp;
	uint8_t ctl_pending; /* controller command awaiting its byte on port 0x60, or 0 */
	uint8_t kbd_pending; /* keyboard command awaiting its parameter, or 0 */
	uint8_t last_out;    /* what port 0x60 reads when nothing is queued */
	uint8_t kbd_last;    /* the keyboard's last byte, for KBD_RESEND */
	bool last_write_cmd;
	bool xlate_break; /* translating: a set-2 break prefix was swallowed */
	bool irq_level;
	struct byte_queue reply, keys;
	uint8_t reply_buf[REPLY_MAX], keys_buf[I8042_KBD_BUFFER];
};

/* ---- queues ---- */

static bool q_push(struct byte_queue *q, uint8_t b)
{
	if (q->count == q->cap)
		return false;
	q->buf[(q->head + q->count++) % q->cap] = b;
	return true;
}

static uint8_t q_pop(struct byte_queue *q)
{
	uint8_t b = q->buf[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return b;
}

static void q_clear(struct byte_queue *q)
{
	q->head = q->count = 0;
}

/* ---- IRQ 1 ---- */

static void set_irq(struct i8042 *k, int level)
{
	k->irq_level = level;
	if (k->irq_hook)
		k->irq_hook(k->irq_ctx, level);
	else
		vm_set_irq_line(k->vm, LAYOUT_IRQ_I8042, level);
}

static bool keys_visible(const struct i8042 *k)
{
	return k->keys.count && !(k->ctr & CTR_KBD_DISABLE);
}

static bool output_full(const struct i8042 *k)
{
	return k->reply.count || keys_visible(k);
}

/* The line is "output buffer full and interrupts on". fresh: the guest was just
 * handed a byte or changed the command byte, so a byte still waiting gets a new
 * edge (the IOAPIC pin is edge-triggered). */
static void update_irq_locked(struct i8042 *k, bool fresh)
{
	bool level = output_full(k) && (k->ctr & CTR_KBD_INT);
	if (k->irq_level && (fresh || !level))
		set_irq(k, 0);
	if (level && !k->irq_level)
		set_irq(k, 1);
}

/* ---- the keyboard ---- */

/* The 8042's set 2 -> set 1 translation for the codes this keyboard sends (Ctrl,
 * Alt, Del, the ID and the scan-code-set reply); bytes >= 0x80 pass unchanged. */
static uint8_t xlate_byte(uint8_t b)
{
	switch (b) {
	case 0x02: return 0x41;
	case 0x11: return 0x38; /* Alt */
	case 0x14: return 0x1d; /* Ctrl */
	case 0x71: return 0x53; /* Del (after 0xe0) */
	case 0x83: return 0x41;
	default: return b;
	}
}

/* A byte from the keyboard into q, through the translation when it is on. Returns
 * false when q is full. */
static bool kbd_emit(struct i8042 *k, struct byte_queue *q, uint8_t b)
{
	k->kbd_last = b;
	if (!(k->ctr & CTR_XLATE))
		return q_push(q, b);
	if (b == SET2_BREAK) {
		k->xlate_break = true;
		return true;
	}
	b = xlate_byte(b) | (k->xlate_break && b < 0x80 ? 0x80 : 0);
	k->xlate_break = false;
	return q_push(q, b);
}

static void kbd_reply(struct i8042 *k, uint8_t b)
{
	kbd_emit(k, &k->reply, b);
}

/* The parameter byte of KBD_SET_LEDS, KBD_SET_RATE or KBD_SCANCODE_SET. Only set 2
 * exists here: asking for another is refused, so a driver falls back to set 2. */
static void kbd_parameter(struct i8042 *k, uint8_t cmd, uint8_t b)
{
	if (cmd != KBD_SCANCODE_SET || b == KBD_SET2) {
		kbd_reply(k, KBD_ACK);
	} else if (b == 0) { /* which set? */
		kbd_reply(k, KBD_ACK);
		kbd_reply(k, KBD_SET2);
	} else {
		kbd_reply(k, KBD_NAK);
	}
}

static void kbd_command(struct i8042 *k, uint8_t b)
{
	uint8_t pending = k->kbd_pending;
	k->kbd_pending = 0;
	if (pending) {
		kbd_parameter(k, pending, b);
		return;
	}
	switch (b) {
	case KBD_SET_LEDS:
	case KBD_SET_RATE:
	case KBD_SCANCODE_SET:
		k->kbd_pending = b;
		kbd_reply(k, KBD_ACK);
		break;
	case KBD_ECHO:
		kbd_reply(k, KBD_ECHO);
		break;
	case KBD_GET_ID:
		kbd_reply(k, KBD_ACK);
		kbd_reply(k, KBD_ID0);
		kbd_reply(k, KBD_ID1);
		break;
	case KBD_RESEND:
		kbd_reply(k, k->kbd_last);
		break;
	case KBD_RESET:
		q_clear(&k->keys); /* a reset keyboard forgets what it held */
		kbd_reply(k, KBD_ACK);
		kbd_reply(k, KBD_BAT_OK);
		break;
	case KBD_DEFAULT_DISABLE:
	case KBD_SET_DEFAULT:
		q_clear(&k->keys);
		kbd_reply(k, KBD_ACK);
		break;
	default: /* 0xf4 enable, 0xf7-0xfd (set 3 key types): nothing to change */
		kbd_reply(k, b >= KBD_SET_LEDS ? KBD_ACK : KBD_NAK);
		break;
	}
}

/* ---- the controller ---- */

static void reset_line(struct i8042 *k)
{
	log_info("guest reset through the i8042 controller");
	vm_request_stop(k->vm, EXIT_GUEST_OK);
}

/* A command's data byte, written to port 0x60 after the command. */
static void ctl_data(struct i8042 *k, uint8_t cmd, uint8_t b)
{
	if (cmd == CMD_WRITE_CTR) {
		k->ctr = b;
	} else if (cmd == CMD_WRITE_OUTP) {
		k->outp = b;
		if (!(b & OUTP_RESET_LINE))
			reset_line(k);
	}
}

static void ctl_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR: q_push(&k->reply, k->ctr); break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP: k->ctl_pending = cmd; break;
	case CMD_AUX_DISABLE: k->ctr |= CTR_AUX_DISABLE; break;
	case CMD_AUX_ENABLE: k->ctr &= (uint8_t)~CTR_AUX_DISABLE; break;
	case CMD_SELF_TEST: q_push(&k->reply, SELF_TEST_OK); break;
	case CMD_KBD_TEST: q_push(&k->reply, KBD_TEST_OK); break;
	case CMD_KBD_DISABLE: k->ctr |= CTR_KBD_DISABLE; break;
	case CMD_KBD_ENABLE: k->ctr &= (uint8_t)~CTR_KBD_DISABLE; break;
	case CMD_READ_OUTP: q_push(&k->reply, k->outp); break;
	default:
		if (cmd >= CMD_PULSE && !(cmd & OUTP_RESET_LINE))
			reset_line(k); /* 0xfe, the usual one */
		break; /* anything else, aux commands included, goes unanswered */
	}
}

static void write_cmd_port(struct i8042 *k, uint8_t cmd)
{
	k->last_write_cmd = true;
	k->ctl_pending = 0;
	q_clear(&k->reply);
	ctl_command(k, cmd);
}

static void write_data_port(struct i8042 *k, uint8_t b)
{
	uint8_t cmd = k->ctl_pending;
	k->last_write_cmd = false;
	k->ctl_pending = 0;
	if (cmd) {
		ctl_data(k, cmd, b);
		return;
	}
	q_clear(&k->reply);
	kbd_command(k, b);
}

static uint8_t read_data_port(struct i8042 *k)
{
	if (k->reply.count)
		k->last_out = q_pop(&k->reply);
	else if (keys_visible(k))
		k->last_out = q_pop(&k->keys);
	return k->last_out; /* an empty buffer reads its last byte again */
}

static uint8_t status(const struct i8042 *k)
{
	return (output_full(k) ? STS_OBF : 0) | (k->ctr & CTR_SYS ? STS_SYS : 0) |
	       (k->last_write_cmd ? STS_CMD : 0) | STS_UNLOCKED;
}

/* ---- the bus: ports 0x60-0x64, of which 0x60 and 0x64 are the controller's ---- */

#define OFF_DATA 0
#define OFF_CMD (LAYOUT_PORT_I8042_CMD - LAYOUT_PORT_I8042_DATA)

/* One byte wide: a wider access uses its low byte and reads zeros above it. Ports
 * 0x61-0x63 sit inside the range (one range: one line in the metrics) but are not
 * the controller's: all-ones, as with nothing behind them (KVM's PIT answers 0x61). */
static bool controller_port(uint64_t offset)
{
	return offset == OFF_DATA || offset == OFF_CMD;
}

static void i8042_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	memset(data, controller_port(offset) ? 0 : 0xff, len);
	if (!controller_port(offset))
		return;
	pthread_mutex_lock(&k->lock);
	if (offset == OFF_CMD) {
		data[0] = status(k);
	} else {
		data[0] = read_data_port(k);
		update_irq_locked(k, true);
	}
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	if (!controller_port(offset))
		return;
	pthread_mutex_lock(&k->lock);
	bool ctr_write = offset == OFF_DATA && k->ctl_pending == CMD_WRITE_CTR;
	if (offset == OFF_CMD)
		write_cmd_port(k, data[0]);
	else
		write_data_port(k, data[0]);
	update_irq_locked(k, ctr_write);
	pthread_mutex_unlock(&k->lock);
}

static const struct bus_device_ops i8042_ops = {
	.name = "i8042",
	.read = i8042_read,
	.write = i8042_write,
};

/* ---- the VMM's side ---- */

/* Set 2: press Ctrl, Alt, Del (an extended key), then release them in reverse, as a
 * keyboard sends them; the releases keep the guest's modifier state true when it
 * does not reboot. Firecracker sends the three presses only. */
static const uint8_t ctrl_alt_del[] = {
	0x14, 0x11, 0xe0, 0x71, 0xe0, SET2_BREAK, 0x71, SET2_BREAK, 0x11, SET2_BREAK, 0x14,
};

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	int err = 0;
	if (k->keys.cap - k->keys.count < sizeof(ctrl_alt_del)) {
		err = -ENOSPC;
	} else {
		for (size_t i = 0; i < sizeof(ctrl_alt_del); i++)
			kbd_emit(k, &k->keys, ctrl_alt_del[i]);
		update_irq_locked(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return err;
}

static uint8_t q_copy_out(const struct byte_queue *q, uint8_t *out)
{
	for (unsigned i = 0; i < q->count; i++)
		out[i] = q->buf[(q->head + i) % q->cap];
	return (uint8_t)q->count;
}

static void q_copy_in(struct byte_queue *q, const uint8_t *in, uint8_t n)
{
	q_clear(q);
	for (uint8_t i = 0; i < n; i++)
		q_push(q, in[i]);
}

void i8042_get_state(struct i8042 *k, struct i8042_state *st)
{
	pthread_mutex_lock(&k->lock);
	*st = (struct i8042_state){ .ctr = k->ctr, .outp = k->outp, .ctl_pending = k->ctl_pending,
				    .kbd_pending = k->kbd_pending, .last_out = k->last_out,
				    .kbd_last = k->kbd_last, .last_write_cmd = k->last_write_cmd,
				    .xlate_break = k->xlate_break, .irq_level = k->irq_level };
	st->nreply = q_copy_out(&k->reply, st->reply);
	st->nkeys = q_copy_out(&k->keys, st->keys);
	pthread_mutex_unlock(&k->lock);
}

int i8042_set_state(struct i8042 *k, const struct i8042_state *st)
{
	if (st->nreply > REPLY_MAX || st->nkeys > I8042_KBD_BUFFER)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->ctr = st->ctr;
	k->outp = st->outp;
	k->ctl_pending = st->ctl_pending;
	k->kbd_pending = st->kbd_pending;
	k->last_out = st->last_out;
	k->kbd_last = st->kbd_last;
	k->last_write_cmd = st->last_write_cmd;
	k->xlate_break = st->xlate_break;
	k->irq_level = st->irq_level; /* as the restored irqchip has the line */
	q_copy_in(&k->reply, st->reply, st->nreply);
	q_copy_in(&k->keys, st->keys, st->nkeys);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

void i8042_set_irq_hook(struct i8042 *k, void (*fn)(void *ctx, int level), void *ctx)
{
	k->irq_hook = fn;
	k->irq_ctx = ctx;
}

int i8042_create(struct vm *vm, struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm = vm;
	k->ctr = CTR_DEFAULT;
	k->outp = OUTP_DEFAULT;
	k->reply = (struct byte_queue){ .buf = k->reply_buf, .cap = REPLY_MAX };
	k->keys = (struct byte_queue){ .buf = k->keys_buf, .cap = I8042_KBD_BUFFER };
	pthread_mutex_init(&k->lock, NULL);
	int err = bus_register(&vm->pio_bus, LAYOUT_PORT_I8042_DATA, OFF_CMD + 1, &i8042_ops, k);
	if (err) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return err;
	}
	/* Commands cost the guest no exit (see the top); failing that, they exit. */
	vm_coalesce_pio(vm, LAYOUT_PORT_I8042_CMD, 1, true);
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}
