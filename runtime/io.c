/* SPDX-License-Identifier: MIT */
/* I/O on io_uring, with the fault-injection point (see io.h). */
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>

static _Atomic(lp_io_fault_fn) hook;
static _Atomic(void *) hook_ctx;

void io_set_fault_hook(lp_io_fault_fn fn, void *ctx)
{
	atomic_store(&hook_ctx, ctx);
	atomic_store(&hook, fn);
}

/* 0: go ahead with len bytes; < 0: fail with it; else: do only that many. */
static long injected(enum lp_io_op op, int fd, uint64_t off, size_t len)
{
	lp_io_fault_fn fn = atomic_load_explicit(&hook, memory_order_acquire);

	if (!fn)
		return 0;
	long r = fn(atomic_load(&hook_ctx), op, fd, off, len);
	if (r > 0 && (size_t)r >= len)
		r = 0;
	return r;
}

static size_t iov_len(const struct iovec *iov, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

/* Drop the first `done` bytes of iov[0..*n). */
static void iov_advance(struct iovec *iov, int *n, size_t done)
{
	int i = 0;

	while (i < *n && done >= iov[i].iov_len)
		done -= iov[i++].iov_len;
	if (i < *n && done) {
		iov[i].iov_base = (char *)iov[i].iov_base + done;
		iov[i].iov_len -= done;
	}
	memmove(iov, iov + i, (size_t)(*n - i) * sizeof(*iov));
	*n -= i;
}

/* Keep only the first `lim` bytes of iov[0..*n). */
static void iov_limit(struct iovec *iov, int *n, size_t lim)
{
	int i = 0;

	while (i < *n && lim >= iov[i].iov_len)
		lim -= iov[i++].iov_len;
	if (i < *n && lim) {
		iov[i].iov_len = lim;
		i++;
	}
	*n = i;
}

int io_setup(struct lp_io *io, unsigned entries)
{
	memset(io, 0, sizeof(*io));
	/* A completion is posted by the submitting thread (task work).  By
	 * default the kernel interrupts that thread for it, wherever it
	 * runs: on this machine the disk's interrupt is on one CPU, and a
	 * handler spinning for its read on the other paid an IPI, about 15
	 * us of each read.  Cooperatively, a running thread posts it at its
	 * next system call (a sleeping one is woken as before), and
	 * TASKRUN_FLAG tells io_uring_peek_cqe() to make that call. */
	int rc = io_uring_queue_init(entries, &io->ring,
				     IORING_SETUP_COOP_TASKRUN |
					     IORING_SETUP_TASKRUN_FLAG);
	if (rc == -EINVAL) /* before Linux 5.19 */
		rc = io_uring_queue_init(entries, &io->ring, 0);
	if (rc < 0)
		return rc;
	io->up = true;
	return 0;
}

void io_teardown(struct lp_io *io)
{
	if (io->up)
		io_uring_queue_exit(&io->ring);
	io->up = false;
}

void io_plug(struct lp_io *io)
{
	io->plugged = true;
}

void io_unplug(struct lp_io *io)
{
	io->plugged = false;
	/* (Left in the ring if this fails: the next submit takes them.) */
	if (io->queued)
		(void)io_flush(io);
}

static struct io_uring_sqe *sqe_get(struct lp_io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

/* One synchronous transfer: bytes done, or -errno. */
static long sync_rw(struct lp_io *io, enum lp_io_op op, int fd,
		    const struct iovec *iov, int n, uint64_t off)
{
	struct io_uring_sqe *sqe = sqe_get(io);
	struct io_uring_cqe *cqe;

	if (!sqe)
		return -EBUSY;
	if (op == LP_IO_READ)
		io_uring_prep_readv(sqe, fd, iov, (unsigned)n, off);
	else
		io_uring_prep_writev(sqe, fd, iov, (unsigned)n, off);
	io_uring_sqe_set_data(sqe, NULL);
	int rc = io_uring_submit_and_wait(&io->ring, 1);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = io_uring_wait_cqe(&io->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return rc;
		long res = cqe->res;
		void *data = io_uring_cqe_get_data(cqe);
		io_uring_cqe_seen(&io->ring, cqe);
		if (data == NULL)
			return res;
		/* Not ours (a synchronous ring carries nothing else). */
	}
}

static long transfer(struct lp_io *io, enum lp_io_op op, int fd,
		     const struct iovec *iov0, int n0, uint64_t off)
{
	struct iovec iov[LP_IO_MAXV];
	int n = n0 < LP_IO_MAXV ? n0 : LP_IO_MAXV;
	size_t total = 0;

	if (!io->up)
		return -EBADF;
	memcpy(iov, iov0, (size_t)n * sizeof(*iov));
	while (n > 0) {
		size_t want = iov_len(iov, n);
		long inj = injected(op, fd, off, want);
		if (inj < 0)
			return inj;
		struct iovec cur[LP_IO_MAXV];
		int ncur = n;
		memcpy(cur, iov, (size_t)n * sizeof(*iov));
		if (inj > 0)
			iov_limit(cur, &ncur, (size_t)inj);
		long r = sync_rw(io, op, fd, cur, ncur, off);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r < 0)
			return r;
		if (r == 0)
			break; /* end of file */
		total += (size_t)r;
		off += (uint64_t)r;
		iov_advance(iov, &n, (size_t)r);
	}
	return (long)total;
}

long io_preadv(struct lp_io *io, int fd, const struct iovec *iov, int n,
	       uint64_t off)
{
	return transfer(io, LP_IO_READ, fd, iov, n, off);
}

void io_read_many(struct lp_io *io, int fd, struct lp_io_read *r, int n)
{
	int queued = 0;

	for (int i = 0; i < n; i++) {
		r[i].res = -EIO;
		long inj = injected(LP_IO_READ, fd, r[i].off, r[i].len);
		if (inj < 0) {
			r[i].res = inj;
			continue;
		}
		struct io_uring_sqe *sqe = io->up ? sqe_get(io) : NULL;
		if (!sqe) {
			r[i].res = -EBUSY;
			continue;
		}
		size_t len = inj > 0 ? (size_t)inj : r[i].len;
		io_uring_prep_read(sqe, fd, r[i].buf, (unsigned)len, r[i].off);
		io_uring_sqe_set_data(sqe, &r[i]);
		queued++;
	}
	if (!queued)
		return;
	if (io_uring_submit_and_wait(&io->ring, (unsigned)queued) < 0) {
		/* Nothing can be waited for reliably: reap what is there. */
	}
	while (queued > 0) {
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe(&io->ring, &cqe);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		struct lp_io_read *x = io_uring_cqe_get_data(cqe);
		if (x) {
			x->res = cqe->res;
			queued--;
		}
		io_uring_cqe_seen(&io->ring, cqe);
	}
}

int io_pwritev(struct lp_io *io, int fd, const struct iovec *iov, int n,
	       uint64_t off)
{
	size_t want = iov_len(iov, n < LP_IO_MAXV ? n : LP_IO_MAXV);
	long r = transfer(io, LP_IO_WRITE, fd, iov, n, off);

	if (r < 0)
		return (int)r;
	return (size_t)r == want ? 0 : -EIO;
}

static void complete_now(struct lp_io *io, struct lp_io_req *req, int res)
{
	req->res = res;
	io->imm[io->nimm++] = req;
}

static int queue_rw(struct lp_io *io, struct lp_io_req *req)
{
	enum lp_io_op op = req->kind == LP_IOR_READ ? LP_IO_READ : LP_IO_WRITE;
	long inj = injected(op, req->fd, req->off, req->left);

	if (inj < 0) {
		complete_now(io, req, (int)inj);
		return 0;
	}
	struct iovec cur[LP_IO_MAXV];
	int ncur = req->niov;
	memcpy(cur, req->iov, (size_t)ncur * sizeof(*cur));
	if (inj > 0) {
		/* Move only a prefix; the rest is resubmitted as after a real
		 * short transfer.  The kernel copies the iovecs at submission. */
		iov_limit(cur, &ncur, (size_t)inj);
	}
	struct io_uring_sqe *sqe = sqe_get(io);
	if (!sqe) {
		complete_now(io, req, -EBUSY);
		return 0;
	}
	if (io->plugged && !inj) {
		/* req->iov stays as it is until the request completes. */
		if (op == LP_IO_READ)
			io_uring_prep_readv(sqe, req->fd, req->iov, (unsigned)req->niov,
					    req->off);
		else
			io_uring_prep_writev(sqe, req->fd, req->iov, (unsigned)req->niov,
					     req->off);
		io_uring_sqe_set_data(sqe, req);
		io->inflight++;
		io->queued++;
		return 0;
	}
	if (op == LP_IO_READ)
		io_uring_prep_readv(sqe, req->fd, cur, (unsigned)ncur, req->off);
	else
		io_uring_prep_writev(sqe, req->fd, cur, (unsigned)ncur, req->off);
	io_uring_sqe_set_data(sqe, req);
	io->inflight++;
	/* cur lives on this stack frame: submit while it is valid. */
	int rc = io_uring_submit(&io->ring);
	if (rc >= 0)
		io->queued = 0; /* (those queued before went with it) */
	return rc < 0 ? rc : 0;
}

static int submit_rw(struct lp_io *io, struct lp_io_req *req,
		     enum lp_io_kind kind)
{
	if (io->nimm >= LP_IO_MAXV * 2)
		return -EBUSY;
	req->kind = kind;
	req->remote = false;
	req->res = 0;
	req->left = iov_len(req->iov, req->niov);
	return queue_rw(io, req);
}

int io_submit_write(struct lp_io *io, struct lp_io_req *req)
{
	return submit_rw(io, req, LP_IOR_WRITE);
}

int io_submit_read(struct lp_io *io, struct lp_io_req *req)
{
	return submit_rw(io, req, LP_IOR_READ);
}

void io_expect_remote(struct lp_io *io, struct lp_io_req *req, enum lp_io_kind kind)
{
	req->kind = kind;
	req->remote = true;
	req->res = 0;
	io->inflight++;
}

int io_post_remote(struct io_uring *from, int ring_fd, struct lp_io_req *req, int res)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(from);

	if (!sqe) {
		io_uring_submit(from);
		if (!(sqe = io_uring_get_sqe(from)))
			return -EBUSY;
	}
	io_uring_prep_msg_ring(sqe, ring_fd, (unsigned)res, (uint64_t)(uintptr_t)req, 0);
	/* Our own completion of the message is not wanted. */
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	int rc = io_uring_submit(from);
	if (rc < 0)
		return rc;
	/* Reap our failures (a closed target ring) so the ring never fills. */
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(from, &cqe) == 0) {
		if (cqe->res < 0)
			rc = cqe->res;
		io_uring_cqe_seen(from, cqe);
	}
	return rc < 0 ? rc : 0;
}

int io_submit_poll(struct lp_io *io, struct lp_io_req *req)
{
	struct io_uring_sqe *sqe = sqe_get(io);

	if (!sqe)
		return -EBUSY;
	req->kind = LP_IOR_POLL;
	req->remote = false;
	req->res = 0;
	io_uring_prep_poll_add(sqe, req->fd, POLLIN);
	io_uring_sqe_set_data(sqe, req);
	io->inflight++;
	return 0;
}

int io_flush(struct lp_io *io)
{
	int rc = io_uring_submit(&io->ring);

	if (rc >= 0)
		io->queued = 0;
	return rc < 0 ? rc : 0;
}

/* Handle one completion: 1 when req is finished, 0 when continued. */
static int finish(struct lp_io *io, struct lp_io_req *req, int res)
{
	io->inflight--;
	if (req->remote) {
		/* (MSG_RING carries an unsigned len: -errno comes back as
		 * a negative int all the same.) */
		req->res = res < 0 ? res : 0;
		return 1;
	}
	if (req->kind == LP_IOR_POLL) {
		req->res = res;
		return 1;
	}
	if (res == -EAGAIN || res == -EINTR) {
		queue_rw(io, req);
		return 0;
	}
	if (res < 0) {
		req->res = res;
		return 1;
	}
	if (res == 0) {
		req->res = -EIO; /* no progress: the device refuses, or a
				  * read met the end of the file */
		return 1;
	}
	req->left -= (size_t)res;
	req->off += (uint64_t)res;
	iov_advance(req->iov, &req->niov, (size_t)res);
	if (req->left == 0) {
		req->res = 0;
		return 1;
	}
	queue_rw(io, req);
	return 0;
}

int io_reap(struct lp_io *io, struct lp_io_req **done, int max, int timeout_ms)
{
	int n = 0;

	io_uring_submit(&io->ring);
	while (io->nimm && n < max)
		done[n++] = io->imm[--io->nimm];
	while (n < max) {
		struct io_uring_cqe *cqe = NULL;
		int rc;
		if (n == 0 && timeout_ms != 0 && io->inflight) {
			if (timeout_ms < 0) {
				rc = io_uring_wait_cqe(&io->ring, &cqe);
			} else {
				struct __kernel_timespec ts = {
					.tv_sec = timeout_ms / 1000,
					.tv_nsec = (timeout_ms % 1000) * 1000000L,
				};
				rc = io_uring_wait_cqe_timeout(&io->ring, &cqe, &ts);
			}
		} else {
			rc = io_uring_peek_cqe(&io->ring, &cqe);
		}
		if (rc < 0 || !cqe)
			break;
		struct lp_io_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&io->ring, cqe);
		if (req && finish(io, req, res))
			done[n++] = req;
		while (io->nimm && n < max)
			done[n++] = io->imm[--io->nimm];
	}
	return n;
}
