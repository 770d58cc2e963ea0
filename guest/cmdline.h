/* The kernel command line: finding argon.cmd and splitting command strings. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the value of key=value from cmdline into out (quotes around the
 * value, or around the whole parameter, are removed). Returns true when the
 * key is present. */
bool cmdline_get(const char *cmdline, const char *key, char *out, size_t outlen);

/* Splits s in place at whitespace into at most max words. Returns the count,
 * or -1 when there are more than max. */
int split_words(char *s, char **argv, int max);

#endif
