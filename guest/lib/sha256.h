/* SHA-256 (FIPS 180-4), one-shot. Freestanding: builds in the guest and on
 * the host alike. */
#ifndef GUEST_LIB_SHA256_H
#define GUEST_LIB_SHA256_H

#include <stddef.h>
#include <stdint.h>

void sha256(const void *data, size_t len, uint8_t digest[32]);

#endif
