/* A 16550A UART on COM1: output to a host fd, input from a host fd, interrupt-driven
 * both ways through the in-kernel irqchip. */
#ifndef ARGON_DEVICES_SERIAL_H
#define ARGON_DEVICES_SERIAL_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct serial;

/* Creates the UART at LAYOUT_PORT_COM1 / LAYOUT_IRQ_COM1: guest output goes to
 * out_fd; in_fd (or -1 for none) is read on the VM's event loop. Returns 0 or -errno. */
int serial_create(struct vm *vm, int in_fd, int out_fd, struct serial **out);
/* The UART's registers and unread input, for snapshots (issue 9): what the guest
 * programmed (interrupt enables, line and modem control, divisor) and the bytes it
 * has not read yet. */
#define SERIAL_RX_FIFO_SIZE 64
struct serial_state {
	uint8_t ier, fcr, lcr, mcr, scr, dll, dlm;
	bool thr_interrupt; /* a THR-empty interrupt is pending */
	bool irq_level;	    /* the line as KVM's irqchip last saw it */
	uint8_t rx_count;   /* <= SERIAL_RX_FIFO_SIZE */
	uint8_t rx[SERIAL_RX_FIFO_SIZE];
};
/* The VM is paused. Output still buffered is written out first. */
void serial_get_state(struct serial *s, struct serial_state *st);
/* Takes st over (a restored VM, before its vCPUs run); refuses (-EINVAL) an rx_count
 * past the FIFO. Coalescing of THR writes follows the restored interrupt enables. */
int serial_set_state(struct serial *s, const struct serial_state *st);

/* Writes out whatever output is buffered. */
void serial_flush(struct serial *s);
void serial_destroy(struct serial *s);

#endif
