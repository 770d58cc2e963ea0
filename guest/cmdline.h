/* The kernel command line: finding argon.cmd and splitting command strings. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies the value of key=value from cmdline into out (quotes around the
 * value, or around the whole parameter, are removed). Returns true when the
 * key is present. */
bool cmdline_get(const char *cmdline, const char *key, char *out, size_t outlen);

/* Like cmdline_get, for the n-th (from 0) occurrence of key. */
bool cmdline_get_nth(const char *cmdline, const char *key, int n, char *out, size_t outlen);

/* A virtio_mmio.device= value, "<size>@<base>:<irq>[:<id>]" as Linux reads it
 * (size with an optional K, M or G suffix; numbers decimal or 0x hex). */
struct mmio_device_arg {
	uint64_t size, base;
	uint32_t irq;
};

/* Parses s into *out; returns false when it is malformed. */
bool parse_mmio_device(const char *s, struct mmio_device_arg *out);

/* Splits s in place at whitespace into at most max words. Returns the count,
 * or -1 when there are more than max. */
int split_words(char *s, char **argv, int max);

#endif
