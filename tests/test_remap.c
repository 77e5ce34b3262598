/* SPDX-License-Identifier: MIT */
/*
 * mremap of managed memory while swap writes of its pages are in flight
 * (issue 9, point 3), white-box: vm_mremap() is the runtime's mremap for
 * the program host, reached here directly through the internal library.
 *
 * A swap write is held in flight by the I/O hook: its first transfer is
 * made short, and the hook blocks its continuation (submitted by the
 * evictor outside any lock, in io_reap) until the test lets it go.  The
 * range is moved meanwhile; then the write completes.  Every page must
 * read back right at its new address, and lp_vm_destroy() must return.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common.h"
#include "io.h"
#include "mmap.h"
#include "vm.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed;  /* hold the next continuation */
	bool held;   /* one is held now */
	bool open;   /* let it go */
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false };

static long hook(void *ctx, enum lp_io_op op, int fd, uint64_t off, size_t len)
{
	(void)ctx;
	(void)fd;
	if (op != LP_IO_WRITE)
		return 0;
	pthread_mutex_lock(&gate.lock);
	long r = 0;
	if (gate.armed && !gate.open) {
		if (off % PG == 0 && !gate.held) {
			r = (long)(len / 2) & ~511L; /* short: continued later */
		} else if (off % PG != 0) {
			gate.held = true; /* the continuation: hold it */
			pthread_cond_broadcast(&gate.cond);
			while (!gate.open)
				pthread_cond_wait(&gate.cond, &gate.lock);
		}
	}
	pthread_mutex_unlock(&gate.lock);
	return r;
}

static bool wait_held(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&gate.lock);
	while (!gate.held &&
	       pthread_cond_timedwait(&gate.cond, &gate.lock, &ts) == 0)
		;
	bool held = gate.held;
	pthread_mutex_unlock(&gate.lock);
	return held;
}

static void open_gate(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Pages of the range whose write is in flight right now (PGF_IO). */
static size_t in_flight(struct lp_vm *vm, uintptr_t start, size_t pages)
{
	size_t n = 0;

	for (size_t i = 0; i < pages; i++) {
		uint64_t vpn = (start >> 12) + i;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		n += pg && (pg->flags & PGF_IO);
		spt_unlock(s);
	}
	return n;
}

#define PAGES 1024u
#define FRAMES 256u

static void move_while_writing(bool grow)
{
	struct lp_vm *vm;
	struct lp_config cfg = cfg_frames(FRAMES);
	cfg.threads = 1;
	cfg.flags |= LP_CFG_NO_READAHEAD; /* one frame per touch */
	VM_OR_SKIP(&vm, &cfg);
	io_set_fault_hook(hook, NULL);

	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, PAGES * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	/* Where it goes: an unmanaged reservation, far from it. */
	size_t dlen = (PAGES + 8) * PG;
	void *dest = mmap(NULL, dlen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(dest, MAP_FAILED);

	for (size_t i = 0; i < PAGES; i++)
		fill_page(p, i, 1);
	/* Hold the next swap write; make the evictor write by touching
	 * pages that are on swap, one at a time, until it does.  Frames
	 * stay free meanwhile (the evictor keeps `low` of them), so no touch
	 * waits for the held evictor. */
	pthread_mutex_lock(&gate.lock);
	gate.armed = true;
	pthread_mutex_unlock(&gate.lock);
	size_t touched = 0;
	for (size_t i = 0; i < PAGES / 2 && !wait_held(5); i++, touched++)
		cr_assert_eq(check_page(p, i, 1), -1, "page %zu before the move", i);
	cr_assert(wait_held(2000), "no swap write was held (%zu pages touched)", touched);
	size_t flying = in_flight(vm, (uintptr_t)p, PAGES);
	cr_assert_gt(flying, 0, "no page of the range is being written");

	size_t newlen = grow ? (PAGES + 8) * PG : PAGES * PG;
	long to = vm_mremap(vm, (uintptr_t)p, PAGES * PG, newlen,
			    MREMAP_MAYMOVE | MREMAP_FIXED, (uintptr_t)dest);
	cr_assert_eq(to, (long)(uintptr_t)dest, "vm_mremap: %ld", to);
	uint64_t *q = dest;
	/* The writes in flight are still in flight, on the moved pages. */
	cr_expect_eq(in_flight(vm, (uintptr_t)q, PAGES), flying,
		     "pages in flight before the move %zu, after it at the "
		     "new address %zu", flying, in_flight(vm, (uintptr_t)q, PAGES));
	cr_expect_eq(in_flight(vm, (uintptr_t)p, PAGES), 0);
	open_gate();

	size_t bad = 0;
	for (size_t i = 0; i < PAGES; i++) {
		int w = check_page(q, i, 1);
		if (w >= 0 && bad++ < 5)
			cr_log_error("page %zu word %d: %#llx", i, w,
				     (unsigned long long)q[i * (PG / 8) + (size_t)w]);
	}
	cr_expect_eq(bad, 0, "%zu of %u pages wrong after the move", bad, PAGES);
	if (grow)
		for (size_t i = PAGES; i < PAGES + 8; i++)
			cr_expect_eq(q[i * (PG / 8)], 0, "grown page %zu not zero", i);
	/* Rewrite and check again: they go out and come back once more. */
	for (size_t i = 0; i < PAGES; i++)
		fill_page(q, i, 2);
	for (size_t i = 0; i < PAGES; i++)
		bad += check_page(q, i, 2) >= 0;
	cr_expect_eq(bad, 0, "%zu pages wrong after the rewrite", bad);
	struct lp_stats st;
	lp_stats_get(vm, &st);
	cr_expect_eq(st.last_error, 0, "last_error %d", st.last_error);
	fprintf(stderr, "remap: %zu pages in flight moved, %zu touched first, "
		"%llu swap-outs\n", flying, touched,
		(unsigned long long)st.swap_outs);
	lp_vm_destroy(vm); /* the test's timeout catches a hang */
	io_set_fault_hook(NULL, NULL);
	munmap(dest, dlen);
}

Test(remap, move_while_swap_writes_in_flight, .timeout = 120)
{
	move_while_writing(false);
}

Test(remap, grow_and_move_while_swap_writes_in_flight, .timeout = 120)
{
	move_while_writing(true);
}

/* Grown in place three times: each grow finds one region (the second
 * failed with EFAULT when the grown part was a region of its own), and
 * the whole moves as one. */
Test(remap, grow_in_place_three_times_then_move)
{
	struct lp_vm *vm;
	struct lp_config cfg = cfg_frames(16);
	VM_OR_SKIP(&vm, &cfg);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, 8 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	/* room after the first page: the rest of the region goes */
	cr_assert_eq(vm_munmap(vm, (uintptr_t)p + PG, 7 * PG), 0);
	fill_page(p, 0, 1);
	for (size_t i = 1; i <= 3; i++) {
		long r = vm_mremap(vm, (uintptr_t)p, i * PG, (i + 1) * PG, 0, 0);
		cr_assert_eq(r, (long)(uintptr_t)p, "grow %zu: %ld", i, r);
		fill_page(p, i, 1);
	}
	for (size_t i = 0; i < 4; i++)
		cr_expect_eq(check_page(p, i, 1), -1, "page %zu", i);
	pthread_rwlock_rdlock(&vm->map_lock);
	struct lp_region *r = regions_find(&vm->regions, (uintptr_t)p);
	cr_expect(r && r->start == (uintptr_t)p && r->end == (uintptr_t)p + 4 * PG,
		  "not one region of 4 pages");
	pthread_rwlock_unlock(&vm->map_lock);
	void *dest = mmap(NULL, 8 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long to = vm_mremap(vm, (uintptr_t)p, 4 * PG, 8 * PG,
			    MREMAP_MAYMOVE | MREMAP_FIXED, (uintptr_t)dest);
	cr_assert_eq(to, (long)(uintptr_t)dest);
	for (size_t i = 0; i < 4; i++)
		cr_expect_eq(check_page(dest, i, 1), -1, "moved page %zu", i);
	cr_expect_eq(vm_munmap(vm, (uintptr_t)dest, 8 * PG), 0);
	lp_vm_destroy(vm);
}

/* Whatever went wrong, destroy never waits for ever for a write that no
 * I/O will complete: a page flagged in I/O while no write is in flight is
 * let go (its content is still in memory), and the event is reported. */
Test(remap, destroy_does_not_wait_for_a_stale_io_flag, .timeout = 30)
{
	struct lp_vm *vm;
	struct lp_config cfg = cfg_frames(16);
	VM_OR_SKIP(&vm, &cfg);
	uint64_t *p;
	cr_assert_eq(lp_map_anon(vm, 4 * PG, PROT_READ | PROT_WRITE, (void **)&p), 0);
	fill_page(p, 0, 1);
	uint64_t vpn = (uintptr_t)p >> 12;
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);
	cr_assert(pg);
	pg->flags |= PGF_IO; /* as a bug would leave it: not counted */
	spt_unlock(s);
	cr_expect_eq(lp_unmap(vm, p, 4 * PG), 0);
	struct lp_stats st;
	lp_stats_get(vm, &st);
	cr_expect_eq(st.last_error, -EIO);
	lp_vm_destroy(vm);
}
