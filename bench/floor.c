/* SPDX-License-Identifier: MIT */
/* The bare userfaultfd floor. */
#include "floor.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "prim.h"
#include "sim.h"

struct floor {
	int uffd, stop, pidfd;
	uintptr_t base;
	uint32_t frames, low, high, nfree;
	uint32_t *ring;         /* resident pages, oldest at head */
	uint32_t head, count;
	struct iovec *iov;
	void *zero;
	uint64_t *lat;          /* per fault, ns */
	uint64_t faults, evictions, peak;
	int err;
};

/* Drop the k oldest pages in one batch. */
static void evict(struct floor *f, uint32_t k)
{
	if (k > f->count)
		k = f->count;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t p = f->ring[f->head];
		f->head = (f->head + 1) % f->frames;
		f->iov[i].iov_base = (void *)(f->base + (uintptr_t)p * BENCH_PG);
		f->iov[i].iov_len = BENCH_PG;
	}
	f->count -= k;
	f->nfree += k;
	f->evictions += k;
	int rc = prim_zap(f->pidfd, f->iov, k);
	if (rc && !f->err)
		f->err = rc;
}

static void serve(struct floor *f, uintptr_t addr, uint64_t t0)
{
	uintptr_t page = addr & ~(uintptr_t)(BENCH_PG - 1);
	int rc;

	/* As the sampled host: take a frame; once fewer than the low mark
	 * are left, free up to the high mark before the page joins. */
	if (!f->nfree)
		evict(f, 1);
	f->nfree--;
	if (f->nfree < f->low)
		evict(f, f->high - f->nfree);
	do
		rc = prim_uffd_copy(f->uffd, page, f->zero, BENCH_PG, false);
	while (rc == -EAGAIN);
	if (rc) {
		f->nfree++;
		/* -EEXIST: another thread's fault on it was served first. */
		(void)prim_uffd_wake(f->uffd, page, BENCH_PG);
		if (rc != -EEXIST && !f->err)
			f->err = rc;
		return;
	}
	f->ring[(f->head + f->count) % f->frames] =
		(uint32_t)((page - f->base) / BENCH_PG);
	f->count++;
	if (f->count > f->peak)
		f->peak = f->count;
	f->lat[f->faults++] = prim_now_ns() - t0;
}

static void *handler_main(void *arg)
{
	struct floor *f = arg;
	struct uffd_msg msg[64];

	for (;;) {
		struct pollfd pfd[2] = { { f->uffd, POLLIN, 0 },
					 { f->stop, POLLIN, 0 } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			f->err = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		ssize_t n = read(f->uffd, msg, sizeof(msg));
		uint64_t t0 = prim_now_ns();
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			f->err = -errno;
			break;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++)
			if (msg[i].event == UFFD_EVENT_PAGEFAULT)
				serve(f, (uintptr_t)msg[i].arg.pagefault.address,
				      t0);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int floor_run(struct bench_access *a, uint32_t frames,
	      struct bench_access_result *ar, struct floor_result *fr)
{
	struct floor f = { .uffd = -1, .stop = -1, .pidfd = -1,
			   .frames = frames, .nfree = frames };
	size_t len = (size_t)a->npages * BENCH_PG;
	pthread_t tid;
	void *mem = MAP_FAILED;
	int rc;

	memset(fr, 0, sizeof(*fr));
	if (!frames || a->keep)
		return -EINVAL;
	lp_sim_reserve(frames, &f.low, &f.high);
	f.ring = malloc(frames * sizeof(*f.ring));
	f.iov = malloc(frames * sizeof(*f.iov));
	f.lat = malloc((a->n ? a->n : 1) * sizeof(*f.lat));
	f.zero = aligned_alloc(BENCH_PG, BENCH_PG);
	rc = -ENOMEM;
	if (!f.ring || !f.iov || !f.lat || !f.zero)
		goto out;
	memset(f.zero, 0, BENCH_PG);
	rc = prim_uffd_open(&f.uffd);
	if (rc)
		goto out;
	rc = prim_uffd_api(f.uffd, 0);
	if (rc)
		goto out;
	f.stop = eventfd(0, EFD_CLOEXEC);
	f.pidfd = prim_pidfd_self(); /* -errno: prim_zap falls back */
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	rc = -errno;
	if (f.stop < 0 || mem == MAP_FAILED)
		goto out;
	(void)madvise(mem, len, MADV_NOHUGEPAGE);
	f.base = (uintptr_t)mem;
	rc = prim_uffd_register(f.uffd, f.base, len,
				UFFDIO_REGISTER_MODE_MISSING);
	if (rc)
		goto out;
	rc = -pthread_create(&tid, NULL, handler_main, &f);
	if (rc)
		goto out;
	a->base = mem;
	rc = bench_access_run(a, ar);
	uint64_t one = 1;
	(void)!write(f.stop, &one, sizeof(one));
	pthread_join(tid, NULL);
	if (!rc)
		rc = f.err;
	fr->faults = f.faults;
	fr->evictions = f.evictions;
	fr->peak = f.peak;
	if (f.faults) {
		qsort(f.lat, f.faults, sizeof(*f.lat), cmp_u64);
		fr->p50_ns = f.lat[(f.faults - 1) / 2];
		fr->p99_ns = f.lat[(f.faults - 1) * 99 / 100];
	}
out:
	if (mem != MAP_FAILED)
		munmap(mem, len);
	a->base = NULL;
	if (f.uffd >= 0)
		close(f.uffd);
	if (f.stop >= 0)
		close(f.stop);
	if (f.pidfd >= 0)
		close(f.pidfd);
	free(f.ring);
	free(f.iov);
	free(f.lat);
	free(f.zero);
	return rc;
}
