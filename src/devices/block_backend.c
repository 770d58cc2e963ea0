/* Asynchronous image I/O: a small step machine turns each operation into system
 * calls ("primitives"), and two engines run them: io_uring, or worker threads. The
 * step machine is shared, so both engines handle short transfers, write-through,
 * and the fallbacks for discard and write-zeroes the same way. */
#include "devices/block_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define BLOCK_THREADS 4
#define ZERO_CHUNK (64 * 1024)
#define IO_MAX_RETRIES 16 /* EINTR/EAGAIN on one system call */

enum prim_kind { PRIM_READV, PRIM_WRITEV, PRIM_ZERO_WRITEV, PRIM_FDATASYNC, PRIM_FALLOCATE };
/* How a range is zeroed or discarded, best first. */
enum zero_method { METHOD_PUNCH, METHOD_ZERO_RANGE, METHOD_WRITE };

/* One system call. */
struct block_prim {
	enum prim_kind kind;
	uint64_t off, len;
	int mode;
	const struct iovec *iov;
	int iovcnt;
};

struct io_list {
	struct block_io *head, *tail;
};

struct block_threads {
	pthread_t tids[BLOCK_THREADS];
	unsigned n;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct io_list todo, done;
	bool stop, ready;
};

struct block_engine_ops;

struct block_backend {
	int fd, efd;
	bool owns_efd; /* efd is ours to close (not the caller's notify_fd) */
	char *path, *name;
	uint64_t size;
	bool read_only;
	unsigned depth, inflight;
	uint64_t submitted; /* operations accepted, for tests and metrics */
	const struct block_engine_ops *engine;
	int fault[BLOCK_OP_COUNT];
	struct io_uring ring;
	bool ring_up;
	unsigned unsubmitted;
	struct block_threads threads;
};

struct block_engine_ops {
	const char *name;
	int (*init)(struct block_backend *bb);
	void (*fini)(struct block_backend *bb);
	int (*submit)(struct block_backend *bb, struct block_io *io);
	void (*kick)(struct block_backend *bb);
	unsigned (*reap)(struct block_backend *bb, block_done_fn fn, void *opaque);
	bool (*finished)(struct block_backend *bb); /* a reap would find something */
};

/* The source of written zeroes; never written itself. */
static uint8_t zero_buf[ZERO_CHUNK];

/* ---- The step machine, shared by both engines ---- */

static void start_range(struct block_io *io)
{
	io->range_done = 0;
	io->method = io->op == BLOCK_OP_DISCARD || io->ranges[io->range].unmap ? METHOD_PUNCH
										 : METHOD_ZERO_RANGE;
}

static void zero_write_prim(struct block_io *io, struct block_prim *p)
{
	const struct block_range *r = &io->ranges[io->range];
	uint64_t left = r->len - io->range_done;
	int n = 0;
	while (left && n < BLOCK_IO_ZERO_IOVS) {
		size_t chunk = left < ZERO_CHUNK ? (size_t)left : ZERO_CHUNK;
		io->zero_iov[n++] = (struct iovec){ .iov_base = zero_buf, .iov_len = chunk };
		left -= chunk;
	}
	*p = (struct block_prim){ .kind = PRIM_ZERO_WRITEV, .off = r->offset + io->range_done,
				  .iov = io->zero_iov, .iovcnt = n };
}

static void range_prim(struct block_io *io, struct block_prim *p)
{
	const struct block_range *r = &io->ranges[io->range];
	if (io->method == METHOD_WRITE) {
		zero_write_prim(io, p);
		return;
	}
	int mode = io->method == METHOD_PUNCH ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;
	*p = (struct block_prim){ .kind = PRIM_FALLOCATE, .off = r->offset, .len = r->len,
				  .mode = mode | FALLOC_FL_KEEP_SIZE };
}

/* The next system call io needs. */
static void next_prim(struct block_io *io, struct block_prim *p)
{
	bool data = io->op == BLOCK_OP_READ || io->op == BLOCK_OP_WRITE;
	if (data && io->iovcnt)
		*p = (struct block_prim){ .kind = io->op == BLOCK_OP_READ ? PRIM_READV : PRIM_WRITEV,
					  .off = io->offset, .iov = io->iov, .iovcnt = io->iovcnt };
	else if (data || io->op == BLOCK_OP_FLUSH)
		*p = (struct block_prim){ .kind = PRIM_FDATASYNC }; /* a flush, or write-through */
	else
		range_prim(io, p);
	io->last_prim = p->kind;
}

static bool finish(struct block_io *io, int err)
{
	io->result = err;
	return true;
}

/* Drops n transferred bytes from the front of the buffers, and empty buffers. */
static void iov_advance(struct block_io *io, uint64_t n)
{
	while (io->iovcnt && (n || io->iov->iov_len == 0)) {
		if (n >= io->iov->iov_len) {
			n -= io->iov->iov_len;
			io->iov++;
			io->iovcnt--;
			continue;
		}
		io->iov->iov_base = (uint8_t *)io->iov->iov_base + n;
		io->iov->iov_len -= n;
		n = 0;
	}
}

static bool step_transfer(struct block_io *io, int64_t res)
{
	if (res < 0)
		return finish(io, (int)res);
	if (res == 0)
		return finish(io, -EIO); /* end of file: the image shrank under us */
	io->offset += (uint64_t)res;
	iov_advance(io, (uint64_t)res);
	if (io->iovcnt)
		return false;
	return io->op == BLOCK_OP_WRITE && io->sync ? false : finish(io, 0);
}

static bool next_range(struct block_io *io)
{
	if (++io->range >= io->nranges)
		return finish(io, 0);
	start_range(io);
	return false;
}

static bool step_fallocate(struct block_io *io, int64_t res)
{
	if (res == -EOPNOTSUPP) {
		if (io->op == BLOCK_OP_DISCARD)
			return next_range(io); /* discarding is advice; this filesystem ignores it */
		io->method++;		       /* PUNCH -> ZERO_RANGE -> writing zeroes */
		return false;
	}
	return res < 0 ? finish(io, (int)res) : next_range(io);
}

static bool step_zero_write(struct block_io *io, int64_t res)
{
	if (res <= 0)
		return finish(io, res < 0 ? (int)res : -EIO);
	io->range_done += (uint64_t)res;
	return io->range_done >= io->ranges[io->range].len ? next_range(io) : false;
}

/* Accounts the result of the last system call; true when io is finished (result set). */
static bool step(struct block_io *io, int64_t res)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (io->retries++ < IO_MAX_RETRIES)
			return false;
		return finish(io, (int)res);
	}
	io->retries = 0;
	switch (io->last_prim) {
	case PRIM_READV:
	case PRIM_WRITEV: return step_transfer(io, res);
	case PRIM_FDATASYNC: return finish(io, res < 0 ? (int)res : 0);
	case PRIM_FALLOCATE: return step_fallocate(io, res);
	default: return step_zero_write(io, res);
	}
}

static int64_t prim_exec(int fd, const struct block_prim *p)
{
	ssize_t r;
	switch (p->kind) {
	case PRIM_READV: r = preadv(fd, p->iov, p->iovcnt, (off_t)p->off); break;
	case PRIM_WRITEV:
	case PRIM_ZERO_WRITEV: r = pwritev(fd, p->iov, p->iovcnt, (off_t)p->off); break;
	case PRIM_FDATASYNC: r = fdatasync(fd); break;
	default: r = fallocate(fd, p->mode, (off_t)p->off, (off_t)p->len); break;
	}
	return r < 0 ? -errno : r;
}

/* ---- Engine: worker threads ---- */

static void list_push(struct io_list *l, struct block_io *io)
{
	io->next = NULL;
	if (l->tail)
		l->tail->next = io;
	else
		l->head = io;
	l->tail = io;
}

static struct block_io *list_take_all(struct io_list *l)
{
	struct block_io *head = l->head;
	l->head = l->tail = NULL;
	return head;
}

static void run_sync(struct block_backend *bb, struct block_io *io)
{
	struct block_prim p;
	do
		next_prim(io, &p);
	while (!step(io, io->fault ? io->fault : prim_exec(bb->fd, &p)));
}

static void signal_completion(struct block_backend *bb)
{
	uint64_t one = 1;
	if (write(bb->efd, &one, sizeof(one)) < 0)
		log_debug("drive %s: completion eventfd: %m", bb->name);
}

static void *worker_main(void *arg)
{
	struct block_backend *bb = arg;
	struct block_threads *t = &bb->threads;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!t->todo.head && !t->stop)
			pthread_cond_wait(&t->cond, &t->lock);
		struct block_io *io = t->todo.head;
		if (!io)
			break; /* stopping, nothing left */
		t->todo.head = io->next;
		if (!t->todo.head)
			t->todo.tail = NULL;
		pthread_mutex_unlock(&t->lock);
		run_sync(bb, io);
		pthread_mutex_lock(&t->lock);
		list_push(&t->done, io);
		signal_completion(bb);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void threads_fini(struct block_backend *bb)
{
	struct block_threads *t = &bb->threads;
	if (!t->ready)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->n; i++)
		pthread_join(t->tids[i], NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	t->ready = false;
}

/* Workers block every signal: SIGINT and friends belong to the main thread. */
static int threads_init(struct block_backend *bb)
{
	struct block_threads *t = &bb->threads;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->ready = true;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = 0;
	for (t->n = 0; t->n < BLOCK_THREADS; t->n++) {
		err = pthread_create(&t->tids[t->n], NULL, worker_main, bb);
		if (err)
			break;
		pthread_setname_np(t->tids[t->n], "block-io");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_error("drive %s: I/O threads: %s", bb->name, strerror(err));
		threads_fini(bb);
		return -err;
	}
	return 0;
}

static int threads_submit(struct block_backend *bb, struct block_io *io)
{
	struct block_threads *t = &bb->threads;
	pthread_mutex_lock(&t->lock);
	list_push(&t->todo, io);
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static void threads_kick(struct block_backend *bb)
{
}

static unsigned threads_reap(struct block_backend *bb, block_done_fn fn, void *opaque)
{
	pthread_mutex_lock(&bb->threads.lock);
	struct block_io *io = list_take_all(&bb->threads.done);
	pthread_mutex_unlock(&bb->threads.lock);
	unsigned n = 0;
	while (io) {
		struct block_io *next = io->next;
		bb->inflight--;
		n++;
		if (fn)
			fn(opaque, io);
		io = next;
	}
	return n;
}

static bool threads_finished(struct block_backend *bb)
{
	pthread_mutex_lock(&bb->threads.lock);
	bool any = bb->threads.done.head != NULL;
	pthread_mutex_unlock(&bb->threads.lock);
	return any;
}

static const struct block_engine_ops thread_engine = {
	.name = "threads",
	.init = threads_init,
	.fini = threads_fini,
	.submit = threads_submit,
	.kick = threads_kick,
	.reap = threads_reap,
	.finished = threads_finished,
};

/* ---- Engine: io_uring ---- */

static const int uring_ops_needed[] = { IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
					IORING_OP_FALLOCATE, IORING_OP_NOP };

static int uring_init(struct block_backend *bb)
{
	int err = io_uring_queue_init(bb->depth, &bb->ring, 0);
	if (err)
		return err;
	bb->ring_up = true;
	struct io_uring_probe *probe = io_uring_get_probe_ring(&bb->ring);
	if (!probe)
		return -EOPNOTSUPP;
	bool ok = true;
	for (size_t i = 0; i < sizeof(uring_ops_needed) / sizeof(uring_ops_needed[0]); i++)
		ok = ok && io_uring_opcode_supported(probe, uring_ops_needed[i]);
	io_uring_free_probe(probe);
	if (!ok)
		return -EOPNOTSUPP;
	/* Every completion signals (not IORING_REGISTER_EVENTFD_ASYNC: completions run as
	 * task work in this thread would then signal nothing and be found by no one). */
	return io_uring_register_eventfd(&bb->ring, bb->efd);
}

static void uring_fini(struct block_backend *bb)
{
	if (bb->ring_up)
		io_uring_queue_exit(&bb->ring);
	bb->ring_up = false;
}

static void uring_prep(struct io_uring_sqe *sqe, int fd, struct block_io *io)
{
	struct block_prim p;
	next_prim(io, &p);
	if (io->fault)
		io_uring_prep_nop(sqe);
	else if (p.kind == PRIM_READV)
		io_uring_prep_readv(sqe, fd, p.iov, (unsigned)p.iovcnt, p.off);
	else if (p.kind == PRIM_WRITEV || p.kind == PRIM_ZERO_WRITEV)
		io_uring_prep_writev(sqe, fd, p.iov, (unsigned)p.iovcnt, p.off);
	else if (p.kind == PRIM_FDATASYNC)
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	else
		io_uring_prep_fallocate(sqe, fd, p.mode, (off_t)p.off, (off_t)p.len);
	io_uring_sqe_set_data(sqe, io);
}

static int uring_submit(struct block_backend *bb, struct block_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bb->ring);
	if (!sqe) {
		io_uring_submit(&bb->ring); /* the ring is full of queued work: start it */
		bb->unsubmitted = 0;
		sqe = io_uring_get_sqe(&bb->ring);
	}
	if (!sqe)
		return -EBUSY;
	uring_prep(sqe, bb->fd, io);
	bb->unsubmitted++;
	return 0;
}

static void uring_kick(struct block_backend *bb)
{
	for (int tries = 0; bb->unsubmitted && tries < 100; tries++) {
		int r = io_uring_submit(&bb->ring);
		if (r >= 0)
			bb->unsubmitted -= (unsigned)r < bb->unsubmitted ? (unsigned)r : bb->unsubmitted;
		else if (r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_error("drive %s: io_uring_submit: %s", bb->name, strerror(-r));
			return;
		}
	}
}

static unsigned uring_reap(struct block_backend *bb, block_done_fn fn, void *opaque)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;
	do {
		while (io_uring_peek_cqe(&bb->ring, &cqe) == 0) {
			struct block_io *io = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			io_uring_cqe_seen(&bb->ring, cqe);
			if (!step(io, io->fault ? io->fault : res)) {
				if (uring_submit(bb, io) == 0)
					continue; /* more system calls for this one */
				io->result = -EIO;
			}
			bb->inflight--;
			n++;
			if (fn)
				fn(opaque, io);
		}
		uring_kick(bb);
		/* What that submit completed inline is answered now, not a wakeup later. */
	} while (io_uring_cq_ready(&bb->ring));
	return n;
}

static bool uring_finished(struct block_backend *bb)
{
	return io_uring_cq_ready(&bb->ring) > 0;
}

static const struct block_engine_ops uring_engine = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.kick = uring_kick,
	.reap = uring_reap,
	.finished = uring_finished,
};

/* ---- Opening, locking, engine choice ---- */

static int image_size(struct block_backend *bb)
{
	struct stat st;
	if (fstat(bb->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		bb->size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(bb->fd, BLKGETSIZE64, &bb->size) < 0 ? -errno : 0;
	return -EINVAL;
}

/* flock: an exclusive lock for a writable disk, shared for read-only ones, so two
 * VMMs can share a read-only image but never write one together. */
static int lock_image(struct block_backend *bb)
{
	if (flock(bb->fd, (bb->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
		return 0;
	int err = errno;
	if (err == EWOULDBLOCK) {
		log_error("drive %s: %s is locked by another process (is another VMM using this "
			  "disk?); refusing to open it %s", bb->name, bb->path,
			  bb->read_only ? "read-only while someone may write it" : "for writing");
		return -EBUSY;
	}
	log_error("drive %s: %s: flock: %s", bb->name, bb->path, strerror(err));
	return -err;
}

static int open_image(struct block_backend *bb)
{
	bb->fd = open(bb->path, (bb->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (bb->fd < 0) {
		int err = errno;
		log_error("drive %s: %s: %s", bb->name, bb->path, strerror(err));
		return -err;
	}
	int err = image_size(bb);
	if (err) {
		log_error("drive %s: %s: %s", bb->name, bb->path,
			  err == -EINVAL ? "not a regular file or block device" : strerror(-err));
		return err;
	}
	return lock_image(bb);
}

static enum block_engine engine_wanted(enum block_engine want)
{
	const char *env = getenv("ARGON_BLOCK_ENGINE");
	if (want != BLOCK_ENGINE_AUTO || !env)
		return want;
	if (strcmp(env, "threads") == 0)
		return BLOCK_ENGINE_THREADS;
	if (strcmp(env, "io_uring") == 0)
		return BLOCK_ENGINE_IO_URING;
	return BLOCK_ENGINE_AUTO;
}

/* io_uring unless told otherwise or refused (old kernel, seccomp, io_uring_disabled):
 * then threads. */
static int start_engine(struct block_backend *bb, enum block_engine want)
{
	want = engine_wanted(want);
	if (want != BLOCK_ENGINE_THREADS) {
		int err = uring_init(bb);
		if (!err) {
			bb->engine = &uring_engine;
			return 0;
		}
		uring_fini(bb);
		if (want == BLOCK_ENGINE_IO_URING) {
			log_error("drive %s: io_uring: %s", bb->name, strerror(-err));
			return err;
		}
		log_info("drive %s: io_uring unavailable (%s); using %d I/O threads", bb->name,
			 strerror(-err), BLOCK_THREADS);
	}
	bb->engine = &thread_engine;
	return threads_init(bb);
}

int block_backend_open(const char *path, bool read_only, const char *name, unsigned depth,
		       enum block_engine engine, int notify_fd, struct block_backend **out)
{
	struct block_backend *bb = calloc(1, sizeof(*bb));
	if (!bb)
		return -ENOMEM;
	bb->fd = bb->efd = -1;
	bb->read_only = read_only;
	bb->depth = depth ? depth : 1;
	bb->path = strdup(path);
	bb->name = strdup(name ? name : path);
	int err = bb->path && bb->name ? 0 : -ENOMEM;
	if (!err)
		err = open_image(bb);
	if (!err && notify_fd >= 0) {
		bb->efd = notify_fd;
	} else if (!err) {
		bb->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		bb->owns_efd = true;
		err = bb->efd < 0 ? -errno : 0;
	}
	if (!err)
		err = start_engine(bb, engine);
	if (err) {
		block_backend_close(bb);
		return err;
	}
	*out = bb;
	return 0;
}

void block_backend_close(struct block_backend *bb)
{
	if (!bb)
		return;
	if (bb->engine)
		block_backend_drain(bb, NULL, NULL);
	uring_fini(bb);
	threads_fini(bb);
	if (bb->efd >= 0 && bb->owns_efd)
		close(bb->efd);
	if (bb->fd >= 0)
		close(bb->fd); /* releases the flock */
	free(bb->path);
	free(bb->name);
	free(bb);
}

uint64_t block_backend_size(const struct block_backend *bb)
{
	return bb->size;
}

bool block_backend_is_image(const struct block_backend *bb, const char *path)
{
	struct stat mine, theirs;
	return fstat(bb->fd, &mine) == 0 && stat(path, &theirs) == 0 &&
	       mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

int block_backend_refresh_size(struct block_backend *bb)
{
	int err = image_size(bb);
	if (err)
		log_error("drive %s: %s: %s", bb->name, bb->path, strerror(-err));
	return err;
}

const char *block_backend_engine_name(const struct block_backend *bb)
{
	return bb->engine ? bb->engine->name : "none";
}

int block_backend_fd(const struct block_backend *bb)
{
	return bb->efd;
}

unsigned block_backend_inflight(const struct block_backend *bb)
{
	return bb->inflight;
}

uint64_t block_backend_submitted(const struct block_backend *bb)
{
	return bb->submitted;
}

/* True when io has something to do; drops empty leading buffers. */
static bool io_has_work(struct block_io *io)
{
	if (io->op == BLOCK_OP_FLUSH)
		return true;
	if (io->op == BLOCK_OP_READ || io->op == BLOCK_OP_WRITE) {
		iov_advance(io, 0);
		return io->iovcnt > 0 || (io->op == BLOCK_OP_WRITE && io->sync);
	}
	if (io->op >= BLOCK_OP_COUNT || io->nranges == 0 || io->nranges > BLOCK_IO_MAX_RANGES)
		return false;
	for (unsigned i = 0; i < io->nranges; i++)
		if (io->ranges[i].len == 0)
			return false;
	return true;
}

int block_backend_submit(struct block_backend *bb, struct block_io *io)
{
	if (bb->inflight >= bb->depth)
		return -EBUSY;
	if (!io_has_work(io) || (bb->read_only && io->op != BLOCK_OP_READ &&
				 io->op != BLOCK_OP_FLUSH))
		return -EINVAL;
	io->result = 0;
	io->retries = 0;
	io->fault = bb->fault[io->op];
	io->range = 0;
	if (io->op == BLOCK_OP_DISCARD || io->op == BLOCK_OP_WRITE_ZEROES)
		start_range(io);
	int err = bb->engine->submit(bb, io);
	if (!err) {
		bb->inflight++;
		bb->submitted++;
	}
	return err;
}

void block_backend_kick(struct block_backend *bb)
{
	bb->engine->kick(bb);
}

unsigned block_backend_reap(struct block_backend *bb, block_done_fn fn, void *opaque)
{
	uint64_t count;
	if (read(bb->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_debug("drive %s: completion eventfd: %m", bb->name);
	return bb->engine->reap(bb, fn, opaque);
}

bool block_backend_finished(struct block_backend *bb)
{
	return bb->engine->finished(bb);
}

void block_backend_drain(struct block_backend *bb, block_done_fn fn, void *opaque)
{
	block_backend_kick(bb);
	block_backend_reap(bb, fn, opaque); /* what finished inside the submit */
	while (bb->inflight) {
		struct pollfd p = { .fd = bb->efd, .events = POLLIN };
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			log_warn("drive %s: waiting for I/O: %m", bb->name);
		block_backend_reap(bb, fn, opaque);
	}
}

void block_backend_inject_error(struct block_backend *bb, enum block_op op, int err)
{
	if (op < BLOCK_OP_COUNT)
		bb->fault[op] = err > 0 ? -err : err;
}
