/* The few libc string functions a freestanding kernel needs (GCC may also
 * emit calls to memcpy/memset/memmove/memcmp on its own). */
#ifndef GUEST_STRING_H
#define GUEST_STRING_H

#include <stddef.h>
#include <stdint.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Parses a decimal or 0x-prefixed unsigned number filling the whole string.
 * Returns 0 and stores it in *out, or -1. */
int parse_u64(const char *s, uint64_t *out);

#endif
