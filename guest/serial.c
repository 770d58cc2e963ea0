/* COM1 driver. Every port access is an exit to the VMM (~30 us on PVM hosts),
 * so output waits for LSR.THRE once per 16-byte FIFO load instead of once per
 * byte, and init skips the baud divisor (nothing virtual cares about it). */
#include <stdint.h>

#include "cpu.h"
#include "serial.h"

#define COM1 0x3f8
#define REG_DATA 0
#define REG_IER 1
#define REG_FCR 2
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define IER_RDA 0x01
#define FIFO_SIZE 16
#define THRE_SPINS 100000

#define RX_RING 256 /* power of two */

static bool present;
static bool rx_irq;
static char rx_ring[RX_RING];
static volatile unsigned rx_head, rx_tail;

bool serial_init(void)
{
	if (inb(COM1 + REG_LSR) == 0xff)
		return false;
	outb(COM1 + REG_LCR, 0x03); /* 8N1, DLAB off */
	/* FIFO on, transmit side cleared. The receive side is kept: input that came
	 * before the guest (typed ahead, or piped by argon run) is the user's. */
	outb(COM1 + REG_FCR, 0x05);
	outb(COM1 + REG_MCR, 0x0b); /* DTR RTS OUT2 (OUT2 gates the IRQ line) */
	present = true;
	return true;
}

static bool wait_thre(void)
{
	for (int i = 0; i < THRE_SPINS; i++)
		if (inb(COM1 + REG_LSR) & LSR_THRE)
			return true;
	return false;
}

void serial_write(const char *buf, size_t n)
{
	if (!present)
		return;
	while (n) {
		size_t chunk = n < FIFO_SIZE ? n : FIFO_SIZE;

		if (!wait_thre()) {
			present = false; /* a stuck UART must not hang the guest */
			return;
		}
		for (size_t i = 0; i < chunk; i++)
			outb(COM1 + REG_DATA, buf[i]);
		buf += chunk;
		n -= chunk;
	}
}

void serial_enable_rx_irq(void)
{
	if (!present)
		return;
	outb(COM1 + REG_IER, IER_RDA);
	rx_irq = true;
}

void serial_poll(void)
{
	if (!rx_irq)
		serial_rx_drain();
}

/* The only producer: the interrupt handler, or serial_poll with interrupts
 * masked. */
void serial_rx_drain(void)
{
	if (!present)
		return;
	while (inb(COM1 + REG_LSR) & LSR_DR) {
		char c = inb(COM1 + REG_DATA);

		if (rx_head - rx_tail < RX_RING)
			rx_ring[rx_head++ % RX_RING] = c;
	}
}

int serial_getc(void)
{
	int c;

	if (rx_tail == rx_head)
		return -1;
	c = (unsigned char)rx_ring[rx_tail % RX_RING];
	rx_tail++;
	return c;
}
