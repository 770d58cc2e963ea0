/* The console: serial output with "\n" -> "\r\n", serialized between vCPUs. */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stddef.h>

void console_write(const char *s, size_t n);

#endif
