/* virtio-rng driver (virtio 1.2, 5.4): one request queue of device-writable
 * buffers the device fills with entropy. */
#ifndef GUEST_VIRTIO_RNG_H
#define GUEST_VIRTIO_RNG_H

#include <stdint.h>

/* Fills up to len bytes of buf (buf must stay valid until return); returns
 * the bytes the device wrote, or -1 when there is no device (after a
 * message naming cmd). Requests of up to 4 KiB are issued together. */
int64_t rng_read(void *buf, uint32_t len, uint64_t timeout_us, const char *cmd);

#endif
