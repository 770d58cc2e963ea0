/* The i8042 keyboard controller at ports 0x60/0x64 with a PS/2 keyboard behind it, on
 * ISA IRQ 1: enough for Linux's i8042 and atkbd drivers and for argon-guest, the
 * reset line (ends the VM), and Ctrl+Alt+Del typed by the VMM (Firecracker's
 * SendCtrlAltDel). No aux (mouse) port. */
#ifndef ARGON_DEVICES_I8042_H
#define ARGON_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct i8042;

/* How many bytes the keyboard holds for the guest (a PS/2 keyboard's buffer). */
#define I8042_KBD_BUFFER 16

/* Creates the controller on vm's PIO bus; IRQ 1 goes to vm's irqchip. Returns 0 or
 * -errno. */
int i8042_create(struct vm *vm, struct i8042 **out);
/* After the vCPUs have stopped and the coalesced ring was drained. NULL is fine. */
void i8042_destroy(struct i8042 *k);

/* Types Ctrl+Alt+Del (press, then release) on the keyboard and raises IRQ 1 if the
 * guest enabled it. All of it or nothing: -ENOSPC when the keyboard's buffer cannot
 * hold the whole sequence (the guest is not reading it). Any thread. */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* The controller and keyboard state, for snapshots (issue 9): command byte, output
 * port, commands awaiting their byte, and the queued bytes the guest has not read. */
#define I8042_REPLY_MAX 4
struct i8042_state {
	uint8_t ctr, outp, ctl_pending, kbd_pending, last_out, kbd_last;
	bool last_write_cmd, xlate_break, irq_level;
	uint8_t nreply, nkeys; /* <= I8042_REPLY_MAX, I8042_KBD_BUFFER */
	uint8_t reply[I8042_REPLY_MAX], keys[I8042_KBD_BUFFER];
};
/* The VM is paused. */
void i8042_get_state(struct i8042 *k, struct i8042_state *st);
/* A restored VM, before its vCPUs run; -EINVAL for counts past the queues. */
int i8042_set_state(struct i8042 *k, const struct i8042_state *st);

/* Tests: IRQ 1 level changes go to fn instead of KVM_IRQ_LINE. Call before use. */
void i8042_set_irq_hook(struct i8042 *k, void (*fn)(void *ctx, int level), void *ctx);

#endif
