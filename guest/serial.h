/* COM1, a 16550A: polled FIFO output, interrupt-driven input. */
#ifndef GUEST_SERIAL_H
#define GUEST_SERIAL_H

#include <stdbool.h>
#include <stddef.h>

/* Sets 8N1 with the FIFO on and receive interrupts off. Returns false when
 * no UART answers (output is then dropped). */
bool serial_init(void);

/* Writes n bytes, 16 at a time after one "transmitter empty" check. */
void serial_write(const char *buf, size_t n);

/* Enables the receive-data interrupt (call once its IOAPIC pin is routed). */
void serial_enable_rx_irq(void);

/* Interrupt handler and poller: move received bytes into the input ring. */
void serial_rx_drain(void);

/* Drains the UART when no interrupt was routed to it (call with interrupts
 * masked); a no-op otherwise. */
void serial_poll(void);

/* Next received byte, or -1. */
int serial_getc(void);

#endif
