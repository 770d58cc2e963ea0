/* Formatted output: a small vsnprintf (%d %i %u %x %X %s %c %p %%, width,
 * precision for %s,
 * '0' and '-' flags, l/ll/z lengths) and printf to the console. */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(__printf__, 3, 4)));
int printf(const char *fmt, ...) __attribute__((format(__printf__, 1, 2)));

#endif
