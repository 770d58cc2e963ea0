/* A 16550A UART on COM1: output to a host fd, input from a host fd, interrupt-driven
 * both ways through the in-kernel irqchip. */
#ifndef ARGON_DEVICES_SERIAL_H
#define ARGON_DEVICES_SERIAL_H

struct vm;
struct serial;

/* Creates the UART at LAYOUT_PORT_COM1 / LAYOUT_IRQ_COM1: guest output goes to
 * out_fd; in_fd (or -1 for none) is read on the VM's event loop. Returns 0 or -errno. */
int serial_create(struct vm *vm, int in_fd, int out_fd, struct serial **out);
/* Writes out whatever output is buffered. */
void serial_flush(struct serial *s);
void serial_destroy(struct serial *s);

#endif
