/* Console output: lines are assembled into one buffer and handed to the UART
 * in a single burst, so a line costs one exit per byte and one per 16. */
#include <stdbool.h>

#include "console.h"
#include "serial.h"
#include "spinlock.h"

static struct spinlock lock;
static char buf[1024];

void console_write(const char *s, size_t n)
{
	bool irq = spin_lock_irqsave(&lock);
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (len + 2 > sizeof(buf)) {
			serial_write(buf, len);
			len = 0;
		}
		if (s[i] == '\n')
			buf[len++] = '\r';
		buf[len++] = s[i];
	}
	serial_write(buf, len);
	spin_unlock_irqrestore(&lock, irq);
}
