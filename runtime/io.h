/* SPDX-License-Identifier: MIT */
/*
 * I/O layer: every read and write of the swap file and of mapped files goes
 * through here, on io_uring.  Each thread owns its struct lp_io (no locks).
 * Tests inject failures through io_set_fault_hook() (EIO, ENOSPC, short
 * transfers) — the one place where they happen for real, too.
 */
#ifndef LP_IO_H
#define LP_IO_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define LP_IO_MAXV 64

struct lp_io_req;

struct lp_io {
	struct io_uring ring;
	bool up;
	bool plugged;               /* io_plug(): reads and writes queue */
	unsigned queued;            /* ...this many, not yet submitted */
	unsigned inflight;          /* requests submitted, not yet reaped */
	struct lp_io_req *imm[LP_IO_MAXV * 2]; /* failed before submission */
	unsigned nimm;
};

enum lp_io_op { LP_IO_READ, LP_IO_WRITE };

/*
 * Fault injection: called before each transfer with what is about to
 * happen.  Return 0 to let it happen, -errno to fail it with that error
 * without doing it, or n > 0 to let only its first n bytes happen (a short
 * transfer).  The hook runs on runtime threads and must be thread-safe.
 */
typedef long (*lp_io_fault_fn)(void *ctx, enum lp_io_op op, int fd,
			       uint64_t off, size_t len);
void io_set_fault_hook(lp_io_fault_fn fn, void *ctx);

int io_setup(struct lp_io *io, unsigned entries);
/* Between io_plug() and io_unplug(), io_submit_read/write queue their
 * request and submit nothing: one io_uring_enter (one doorbell of the
 * device) for a batch.  io_flush() (below) submits what is queued and
 * stays plugged: before anything that may block. */
void io_plug(struct lp_io *io);
void io_unplug(struct lp_io *io);
void io_teardown(struct lp_io *io);

/* Read at off into iov: returns the bytes read (short only at end of
 * file), or -errno. */
long io_preadv(struct lp_io *io, int fd, const struct iovec *iov, int n,
	       uint64_t off);
/* Several independent reads submitted at once (they proceed in parallel
 * on the device) and waited for together.  Each gets its own result: the
 * bytes read, or -errno. */
struct lp_io_read {
	void *buf;
	size_t len;
	uint64_t off;
	long res;
};
void io_read_many(struct lp_io *io, int fd, struct lp_io_read *r, int n);

/* Write all of iov at off: 0, or -errno (a short write that cannot
 * continue is -EIO). */
int io_pwritev(struct lp_io *io, int fd, const struct iovec *iov, int n,
	       uint64_t off);

/*
 * Asynchronous requests: a write (the evictor) or a read (the fault path)
 * of iov at off, continued after short transfers until done, or a poll of
 * fd for input.  The request must stay put until io_reap() hands it back.
 */
enum lp_io_kind { LP_IOR_WRITE, LP_IOR_READ, LP_IOR_POLL };

struct lp_io_req {
	enum lp_io_kind kind;
	int fd;
	uint64_t off;             /* where the unwritten part goes */
	struct iovec iov[LP_IO_MAXV]; /* the unwritten part */
	int niov;
	size_t left;              /* bytes still to move */
	int res;                  /* once complete: 0 (or revents) or -errno */
	bool remote;              /* completed by another thread (io_expect_remote) */
	void *owner;
};

/* Queue req (iov, niov, fd, off set by the caller).  Submitted at once;
 * plugged (io_plug()), at the unplug or the next io_flush() or io_reap(). */
int io_submit_write(struct lp_io *io, struct lp_io_req *req);
/* The same for a read of iov at off: res 0 once all of it is read, -EIO
 * at the end of the file. */
int io_submit_read(struct lp_io *io, struct lp_io_req *req);
/* Queue a one-shot poll for POLLIN on req->fd. */
int io_submit_poll(struct lp_io *io, struct lp_io_req *req);
/*
 * A request another thread serves (a remote store's worker): counted in
 * flight on io, and handed back by io_reap() once that thread completes it
 * with io_post_remote() (res: 0 or -errno).  ring_fd: what the other
 * thread names io's ring by.
 */
void io_expect_remote(struct lp_io *io, struct lp_io_req *req, enum lp_io_kind kind);
static inline int io_ring_fd(const struct lp_io *io)
{
	return io->ring.ring_fd;
}
/* From any thread, through its own ring from: complete req on the ring
 * ring_fd (IORING_OP_MSG_RING, Linux 5.18).  0 or -errno. */
int io_post_remote(struct io_uring *from, int ring_fd, struct lp_io_req *req, int res);
/* Push queued submissions to the kernel. */
int io_flush(struct lp_io *io);
/*
 * Collect finished requests into done[] (at most max), waiting up to
 * timeout_ms (0 = do not wait, -1 = forever) for the first.  Short writes
 * are resubmitted and reported only when they finish.  Returns the count.
 */
int io_reap(struct lp_io *io, struct lp_io_req **done, int max, int timeout_ms);

#endif /* LP_IO_H */
