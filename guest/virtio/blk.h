/* virtio-blk driver (virtio 1.2, 5.2): one request queue, requests submitted
 * in batches and completed by polling. */
#ifndef GUEST_VIRTIO_BLK_H
#define GUEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtqueue.h"

#define BLK_SECTOR 512

/* 5.2.3: feature bits. */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13

/* 5.2.6: request types and status. */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define BLK_STATUS_PENDING 0xff /* ours: not completed yet */

#define BLK_ID_BYTES 20

/* 5.2.6.2: one discard range. */
struct blk_discard_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk_req {
	struct {
		uint32_t type, reserved;
		uint64_t sector;
	} hdr;		    /* device-readable */
	volatile uint8_t status; /* device-writable */
	void *data;	    /* NULL for FLUSH */
	uint32_t len;	    /* bytes of data */
	uint64_t tag;	    /* the caller's */
};

struct blk_dev {
	struct virtio_dev *vdev;
	struct virtq vq;
	int disk;
	uint64_t capacity; /* sectors of 512 bytes */
	uint32_t size_max; /* bytes per segment we use */
	uint32_t max_segs; /* data segments per request */
	uint32_t blk_size;
	uint32_t max_discard_sectors, max_discard_seg;
	bool read_only;
};

/* The disk-th virtio-blk device, started on first use; NULL (after a
 * message naming cmd) when there is none or it cannot start. */
struct blk_dev *blk_open(int disk, const char *cmd);

/* Largest data length of one request. */
uint32_t blk_max_bytes(const struct blk_dev *b);

/* Queues r (not visible to the device until blk_kick). Returns 0, or -1
 * when the queue is full. */
int blk_submit(struct blk_dev *b, struct blk_req *r);
bool blk_kick(struct blk_dev *b);
/* A completed request, or NULL. */
struct blk_req *blk_poll(struct blk_dev *b);
/* Waits up to timeout_us for a completion; NULL on timeout. */
struct blk_req *blk_wait(struct blk_dev *b, uint64_t timeout_us);

/* One request, synchronously. Returns its virtio status, or -1 on timeout. */
int blk_do(struct blk_dev *b, struct blk_req *r);

/* Fills a request header. */
void blk_req_init(struct blk_req *r, uint32_t type, uint64_t sector, void *data, uint32_t len);

#endif
