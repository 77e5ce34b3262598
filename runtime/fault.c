/* SPDX-License-Identifier: MIT */
/*
 * The fault loop (Pintos' vm_try_handle_fault and vm_claim_page): handler
 * threads read the userfaultfd and serve each fault where it belongs.
 *
 *   missing fault on an UNINIT/EVICTED page -> load: take a frame, fill a
 *       buffer through the page's ops, install it with UFFDIO_COPY
 *       (write-protected when the content has a valid copy elsewhere, so
 *       that the first write tells us the page is dirty);
 *   missing fault on a PARKED page          -> restore it from its kva slot
 *       (a re-reference observed: the policy's reference bit);
 *   write-protect fault on a RESIDENT page  -> the page is dirty now:
 *       unprotect it;
 *   any fault on a page someone owns        -> mark PGF_WAITERS and leave the
 *       thread blocked; the owner wakes it when it lets go.
 *
 * A handler that owns a page lets go of it with page_handoff() (pagelife.h):
 * the page's new state set, the threads that waited for it woken.  The fault
 * path stands beside the evictor (evict.c): neither calls the other; they
 * meet at the pages (under the stripe locks) and in the frame table.
 *
 * A page whose content cannot be produced (a swap or file read that fails,
 * a fill callback that fails) is poisoned (UFFDIO_POISON) while the handler
 * still owns it: the faulting thread, and any thread touching it after,
 * gets SIGBUS at the page's address.  The content is not gone (its copy on
 * swap or in the file is intact), so the marker is cleared LP_POISON_MS
 * later and the next touch tries again, as the kernel retries a file page
 * whose read failed.
 *
 * Faults from system calls (copy_to_user into a region) arrive the same way:
 * the userfaultfd is opened without UFFD_USER_MODE_ONLY.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "prim.h"
#include "core.h"
#include "verify.h"
#include "backing.h"
#include "pagelife.h"
#include "store.h"

/* How often a fill retries at once when the mm is changing, before the
 * fault is parked on the handler's retry list. */
#define EAGAIN_SPINS 64
/* How long a page that could not be read answers SIGBUS before its next
 * touch reads it again. */
#define LP_POISON_MS 20

static int copy_retry_mode(struct lp_vm *vm, uintptr_t dst, const void *src,
			   size_t len, uint64_t mode)
{
	int rc;

	for (int i = 0;; i++) {
		rc = prim_uffd_copy_mode(vm->uffd, dst, src, len, mode);
		if (rc != -EAGAIN || i == EAGAIN_SPINS)
			return rc;
		sched_yield();
	}
}

static int copy_retry(struct lp_vm *vm, uintptr_t dst, const void *src,
		      size_t len, bool wp)
{
	return copy_retry_mode(vm, dst, src, len,
			       wp ? UFFDIO_COPY_MODE_WP : 0);
}

static void retry_later(struct lp_handler *h, uintptr_t addr, bool write)
{
	if (h->nretry < sizeof(h->retry) / sizeof(h->retry[0])) {
		h->retry[h->nretry] = addr;
		h->retry_write[h->nretry] = write;
		h->retry_tid[h->nretry] = frames_served();
		h->nretry++;
	} else {
		/* The thread refaults when woken; better than forgetting it. */
		page_wake(h->vm, addr);
	}
}

static void unpoison_due(struct lp_handler *h, bool all);

/* The faulting thread cannot get page pg (LOADING, ours): SIGBUS, as the
 * kernel does for a file mapping it cannot read.  Called before the page
 * is let go, so that no other handler can load it while the marker goes
 * in (its copy would then meet the marker). */
static void poison(struct lp_handler *h, struct lp_page *pg, pid_t tid, int err)
{
	struct lp_vm *vm = h->vm;
	uintptr_t addr = page_addr(pg);

	st_add(&h->st, C_FILL_ERR, 1);
	vm_error(vm, err);
	if (vm->have_poison && prim_uffd_poison(vm->uffd, addr, LP_PG) == 0) {
		/* A child vm serves another process's mm, where we cannot
		 * clear the marker: there it stays until the range goes. */
		if (vm->parent)
			return;
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		pg->flags |= PGF_POISONED;
		spt_unlock(s);
		if (h->npoisoned == sizeof(h->poisoned) / sizeof(h->poisoned[0]))
			unpoison_due(h, true);
		h->poisoned[h->npoisoned] = addr;
		h->poisoned_ns[h->npoisoned++] = prim_now_ns();
		return;
	}
	if (tid > 0)
		syscall(SYS_tkill, tid, SIGBUS);
	page_wake(vm, addr);
}

/*
 * Under the stripe lock: pg goes in writable on a prediction, its content
 * (buf) unwritten yet.  With a swap slot it keeps the slot and takes the
 * digest of buf (PGF_MAYBE): eviction finds out whether it was written
 * without a write fault.  Otherwise (or while swap slots run short:
 * swap_scarce()) as page_dirty_locked(pg, false).
 */
static uint64_t predict_locked(struct lp_vm *vm, struct lp_page *pg,
			       const void *buf)
{
	if (pg->backing != BK_SLOT || swap_scarce(vm->swap))
		return page_dirty_locked(pg, false);
	pg->flags &= (uint16_t)~(PGF_DIRTY | PGF_WASDIRTY);
	pg->flags |= PGF_MAYBE;
	prim_page_digest(buf, vm->sum_seed, pg->sum);
	return LP_NO_SLOT;
}

/* The owner of pg (LOADING) gives it back unchanged. */
static void load_abort(struct lp_vm *vm, struct lp_page *pg)
{
	struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);

	page_handoff(vm, s, pg,
		     pg->ops == &lp_uninit_ops ? PG_UNINIT : PG_EVICTED);
}

static void swap_readahead(struct lp_handler *h, struct lp_region *r,
			   uint64_t vpn0);
static void defer_fault(struct lp_handler *h, uintptr_t addr, bool write);
static void zero_around(struct lp_handler *h, struct lp_region *r,
			uint64_t vpn0);
static void file_around(struct lp_handler *h, struct lp_region *r,
			uint64_t vpn0);

/* The content of pg (LOADING, ours) is in at its address, from frame f:
 * under the lock, make pg what fill says, resident, and let it go. */
static void load_done(struct lp_handler *h, struct lp_region *r,
		      struct lp_page *pg, uint32_t f, const void *buf,
		      const struct lp_fill *fill, bool wp, bool write)
{
	struct lp_vm *vm = h->vm;
	struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
	uint64_t drop = LP_NO_SLOT;

	if (vm->vf) /* before the backing changes: the report names it */
		verify_back(vm, pg, buf, fill->kind, r);
	pg->ops = fill->ops;
	pg->backing = fill->backing;
	pg->flags &= (uint16_t)~(PGF_WP | PGF_DIRTY | PGF_POISONED | PGF_MAYBE);
	if (wp)
		pg->flags |= PGF_WP;
	else if (!write && fill->clean) /* predicted: writes go unseen */
		drop = predict_locked(vm, pg, buf);
	else
		drop = page_dirty_locked(pg, true);
	pg->frame = f;
	frame_install(&vm->fr, f, pg);
	if (f == LP_NO_FRAME && vm->fr.n)
		frame_overflow_note(&vm->fr, pg->vpn); /* beyond the budget: for now */
	page_handoff(vm, s, pg, PG_RESIDENT);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
}

/* Whether a clean page of r goes in write-protected, to see its first
 * write.  That is worth a fault only where a clean page saves work later:
 * under a budget (a clean page is dropped without a write) and in a shared
 * file mapping (only written pages are written back).  With no budget and
 * no file to write back, nothing ever asks: the page goes in writable and
 * counts as dirty, so that a budget set later still finds it right. */
static bool watch_writes(const struct lp_vm *vm, const struct lp_region *r)
{
	return vm->fr.n || (r->kind == RK_FILE && r->shared);
}

static _Atomic(void (*)(uintptr_t)) handoff_hook;

void fault_set_handoff_hook(void (*fn)(uintptr_t addr))
{
	atomic_store(&handoff_hook, fn);
}

/* The content of ld->pg is in buf (rc 0), or could not be had (rc -errno):
 * install it and wake the faulting thread, or answer SIGBUS. */
static void load_finish(struct lp_handler *h, const struct load *ld,
			void *buf, const struct lp_fill *fill, int rc)
{
	struct lp_vm *vm = h->vm;
	struct lp_page *pg = ld->pg;
	uintptr_t addr = page_addr(pg);
	uint64_t vpn = pg->vpn;

	if (rc) {
		frame_put(&vm->fr, ld->f);
		poison(h, pg, ld->tid, rc);
		load_abort(vm, pg);
		return;
	}
	/* Clean content goes in write-protected, unless the page was
	 * written during its last residency (then it likely will be again,
	 * and a second fault would cost more than the copy saves), or
	 * nothing needs to know whether it gets written (watch_writes()). */
	bool wp = fill->clean && !ld->write && !ld->wasdirty &&
		  watch_writes(vm, ld->r);
	/* LP_CFG_SYNC_EVICT: the page joins the policy before its thread
	 * runs on, so that the program's next fault finds it there. */
	bool hold = (vm->flags & LP_CFG_SYNC_EVICT) != 0;
	rc = copy_retry_mode(vm, addr, buf, LP_PG,
			     (wp ? UFFDIO_COPY_MODE_WP : 0) |
				     (hold ? UFFDIO_COPY_MODE_DONTWAKE : 0));
	if (rc == -EEXIST) {
		/* Already mapped (a copy made by fork): we cannot know how it
		 * was protected, so treat it as dirty. */
		wp = false;
		page_wake(vm, addr);
		rc = 0;
	}
	if (rc) {
		frame_put(&vm->fr, ld->f);
		load_abort(vm, pg);
		if (rc == -EAGAIN)
			retry_later(h, addr, ld->write);
		else
			page_wake(vm, addr); /* unmapped meanwhile */
		return;
	}
	/* Once let go, pg may be unmapped and its struct reused: what
	 * follows goes by page number. */
	load_done(h, ld->r, pg, ld->f, buf, fill, wp, ld->write);
	if (hold)
		page_wake(vm, addr);
	void (*hook)(uintptr_t) = atomic_load_explicit(&handoff_hook,
						       memory_order_relaxed);
	if (hook)
		hook(addr);
	uint64_t t_end = prim_now_ns();
	st_fault(&h->st, (enum lp_fault_kind)fill->kind, t_end - ld->t0);
	if (fill->kind == LP_FAULT_SWAPIN) {
		st_phase(&h->st, LP_PHASE_QUEUE, ld->t_sub - ld->t0);
		st_phase(&h->st, LP_PHASE_DEVICE, ld->t_comp - ld->t_sub);
		st_phase(&h->st, LP_PHASE_INSTALL, t_end - ld->t_comp);
		st_phase(&h->st, LP_PHASE_HANDLER, t_end - ld->t0);
		swap_readahead(h, ld->r, vpn);
	} else if (fill->kind == LP_FAULT_TIER) {
		swap_readahead(h, ld->r, vpn);
	} else if (fill->kind == LP_FAULT_ZERO && ld->r->kind == RK_ANON) {
		zero_around(h, ld->r, vpn);
	} else if (ld->r->kind == RK_FILE || ld->r->kind == RK_LAZY) {
		file_around(h, ld->r, vpn);
	}
}

/*
 * Solo serving.  Every handler polls the userfaultfd, one pinned to each
 * CPU, and the kernel wakes them all for each fault: the handler on the
 * faulting thread's CPU runs as soon as the thread blocks and takes the
 * fault; the others are woken through an interrupt of their CPU for
 * nothing, which the faulting thread pays before it sleeps (~5 us a fault
 * here: a third of a zero fill).  So while a single thread faults (most
 * programs), only the handler of that thread's CPU polls; the others wait
 * on their kick.  Which CPU is read from /proc/TID/stat (kept open: one
 * pread) when the run of faults from one thread reaches SOLO_AFTER, and
 * again every SOLO_CHECK faults: the scheduler moves a program's thread
 * between CPUs (python3 under a cap: ~30 times a second), and until the
 * move is seen its faults are served from the other CPU.  A fault of
 * another thread ends it at once, and so does a handler about to wait
 * for a frame: a fault only another handler could serve (the evictor's
 * own, in its copy path) must never wait for a handler that waits for the
 * evictor.
 */
#define SOLO_AFTER 64u
#define SOLO_CHECK 32u

static void kick(struct lp_handler *h)
{
	uint64_t one = 1;

	if (h->kick_fd >= 0)
		(void)!write(h->kick_fd, &one, sizeof(one));
}

static void solo_end(struct lp_vm *vm)
{
	if (atomic_load_explicit(&vm->solo, memory_order_relaxed) < 0 ||
	    atomic_exchange(&vm->solo, -1) < 0)
		return;
	atomic_fetch_add_explicit(&vm->solo_ends, 1, memory_order_relaxed);
	for (unsigned i = 0; i < vm->nh; i++)
		kick(&vm->h[i]);
}

/* The CPU thread tid last ran on, -1 if unknown, -2 if another handler
 * is looking (its /proc file stays open while it is the one faulting). */
static int solo_cpu_of(struct lp_vm *vm, pid_t tid)
{
	if (pthread_mutex_trylock(&vm->solo_lock))
		return -2;
	if (vm->solo_fd_tid != tid) {
		if (vm->solo_fd >= 0)
			close(vm->solo_fd);
		vm->solo_fd = prim_thread_stat_open(tid);
		vm->solo_fd_tid = tid;
	}
	int cpu = vm->solo_fd >= 0 ? prim_thread_cpu(vm->solo_fd) : -1;
	if (cpu < 0 && vm->solo_fd >= 0) {
		/* Gone (its number may come back as another thread's):
		 * opened again next time. */
		close(vm->solo_fd);
		vm->solo_fd = -1;
		vm->solo_fd_tid = 0;
	}
	pthread_mutex_unlock(&vm->solo_lock);
	return cpu;
}

/* A fault of thread tid was read: go solo, move, or end it. */
static void solo_note(struct lp_vm *vm, pid_t tid)
{
	if (!vm->solo_ok || tid <= 0)
		return;
	if (atomic_load_explicit(&vm->solo_tid, memory_order_relaxed) != tid) {
		/* (Threads taking turns: stores only, no exchange on a line
		 * both CPUs write.) */
		atomic_store_explicit(&vm->solo_tid, tid, memory_order_relaxed);
		atomic_store_explicit(&vm->solo_run, 0, memory_order_relaxed);
		solo_end(vm);
		return;
	}
	unsigned run = atomic_fetch_add_explicit(&vm->solo_run, 1,
						 memory_order_relaxed) + 1;
	int solo = atomic_load_explicit(&vm->solo, memory_order_relaxed);
	if (solo < 0 ? run < SOLO_AFTER : run % SOLO_CHECK)
		return;
	int cpu = solo_cpu_of(vm, tid), k = -1;
	if (cpu == -2)
		return; /* another handler is looking */
	for (unsigned i = 0; i < vm->nh && cpu >= 0; i++)
		if (vm->h[i].cpu == cpu)
			k = (int)i;
	if (k < 0) {
		solo_end(vm);
	} else if (k != solo && atomic_load(&vm->solo_tid) == tid) {
		atomic_store(&vm->solo, k);
		kick(&vm->h[k]); /* it may be waiting on its kick */
	}
}

/* The swap-ins a batch of faults queued so far go to the device now
 * (read_faults() plugged h->aio): before anything that may block. */
static void flush_batch(struct lp_handler *h)
{
	if (h->aio.queued)
		(void)io_flush(&h->aio);
}

/* A frame for a fault, waiting for the evictor if need be (solo serving
 * ends first). */
static int fault_frame(struct lp_handler *h, uint32_t *f)
{
	struct lp_vm *vm = h->vm;
	uint64_t ticket = 0;
	int rc = frame_try_get(&vm->fr, f, &ticket);
	if (rc) {
		solo_end(vm);
		flush_batch(h);
		rc = frame_get(&vm->fr, f, &ticket);
	}
	if (!rc && (vm->flags & LP_CFG_SYNC_EVICT))
		frame_await_victims(&vm->fr, ticket);
	return rc;
}

static bool async_start(struct lp_handler *h, const struct load *ld);

static void load(struct lp_handler *h, struct lp_region *r, struct lp_page *pg,
		 bool write, bool wasdirty, pid_t tid, uint64_t t0)
{
	struct lp_vm *vm = h->vm;
	struct load ld = { .r = r, .pg = pg, .write = write,
			   .wasdirty = wasdirty, .tid = tid, .t0 = t0 };
	struct lp_fill fill = { 0 };
	int rc;

	rc = fault_frame(h, &ld.f);
	if (rc) {
		load_abort(vm, pg);
		if (rc == -EAGAIN) /* a freeze waits for us: serve it later */
			defer_fault(h, page_addr(pg), write);
		return;
	}
	if (async_start(h, &ld))
		return; /* answered when its read completes */
	flush_batch(h);
	memset(h->buf, 0, LP_PG);
	ld.t_sub = prim_now_ns();
	rc = pg->ops->swap_in(h, pg, r, h->buf, &fill);
	ld.t_comp = prim_now_ns();
	load_finish(h, &ld, h->buf, &fill, rc);
}

/*
 * Swap-ins in flight.  A handler thread does not wait for the read of a
 * swapped page: it submits it, goes on reading faults (of any thread of
 * the program), and answers each as its read completes (async_reap).  So
 * the device sees as many reads as threads wait for pages, and a handler
 * never sleeps on one read while other faults queue behind it.
 *
 * A freeze (fork, mremap) must not meet a page in flight: the pages hold
 * still while it lasts.  So while any read is in flight the handler holds
 * a read reference of vm->freeze_lock (taken with tryrdlock: the lock
 * prefers writers, and a handler must never block on it), and starts no
 * new one while a freeze waits.
 */
static bool async_start(struct lp_handler *h, const struct load *ld)
{
	struct lp_vm *vm = h->vm;
	struct lp_page *pg = ld->pg;

	if (!h->async || !h->nfreep || pg->backing != BK_SLOT ||
	    atomic_load_explicit(&vm->freezing, memory_order_relaxed) ||
	    chain_in_memory(&vm->swap->chain, pg->slot))
		return false; /* (from memory: at once, no read) */
	bool first = h->nfreep == LP_INFLIGHT;
	if (first && pthread_rwlock_tryrdlock(&vm->freeze_lock))
		return false;
	unsigned i = h->freep[--h->nfreep];
	struct lp_pending *p = &h->pend[i];
	p->ld = *ld;
	p->slot = pg->slot;
	p->req.iov[0] = (struct iovec){ h->abuf + ((size_t)i << LP_PAGE_SHIFT),
					LP_PG };
	p->req.niov = 1;
	p->req.owner = p;
	p->ld.t_sub = prim_now_ns();
	struct lp_store *last = chain_last(&vm->swap->chain);
	if (last->ops->read(last, &h->aio, &p->req, p->slot)) {
		h->freep[h->nfreep++] = i;
		if (first)
			pthread_rwlock_unlock(&vm->freeze_lock);
		return false;
	}
	region_get(ld->r);
	return true;
}

/* The read of p ended: answer its fault. */
static void async_complete(struct lp_handler *h, struct lp_pending *p)
{
	struct lp_vm *vm = h->vm;
	unsigned i = (unsigned)(p - h->pend);
	/* (req.iov has advanced past what was read) */
	void *buf = h->abuf + ((size_t)i << LP_PAGE_SHIFT);
	struct lp_fill fill = { .kind = LP_FAULT_SWAPIN, .ops = p->ld.pg->ops,
				.backing = BK_SLOT, .clean = true };

	p->ld.t_comp = prim_now_ns();
	int rc = swap_read_async_done(vm, &h->io, p->slot, buf, &h->st,
				      p->req.res);
	load_finish(h, &p->ld, buf, &fill, rc);
	region_put(p->ld.r);
	h->freep[h->nfreep++] = i;
	if (h->nfreep == LP_INFLIGHT)
		pthread_rwlock_unlock(&vm->freeze_lock);
}

/* Answer the faults whose read completed, waiting up to timeout_ms for one
 * (0: not at all; -1: until one does).  Returns how many. */
static int async_reap(struct lp_handler *h, int timeout_ms)
{
	struct lp_io_req *done[LP_INFLIGHT];
	int n = io_reap(&h->aio, done, LP_INFLIGHT, timeout_ms);

	for (int k = 0; k < n; k++)
		async_complete(h, done[k]->owner);
	return n;
}

static unsigned async_pending(const struct lp_handler *h)
{
	return h->async ? LP_INFLIGHT - h->nfreep : 0;
}

/* A page parked by a reference sweep (or on its way out) is wanted again:
 * map it back from its kva slot.  No I/O. */
static void restore(struct lp_handler *h, struct lp_page *pg, bool write,
		    uint16_t flags, uint64_t t0)
{
	struct lp_vm *vm = h->vm;
	uintptr_t addr = page_addr(pg);
	uint32_t f = pg->frame;
	bool wp = !(flags & (PGF_DIRTY | PGF_WASDIRTY | PGF_MAYBE)) && !write;
	int rc = copy_retry(vm, addr, (const void *)kva_of(&vm->fr, f), LP_PG, wp);

	if (rc == -EEXIST) {
		wp = false;
		page_wake(vm, addr);
		rc = 0;
	}
	struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
	if (rc) {
		page_handoff(vm, s, pg, PG_PARKED);
		if (rc == -EAGAIN)
			retry_later(h, addr, write);
		else
			page_wake(vm, addr);
		return;
	}
	uint64_t drop = LP_NO_SLOT;
	if (wp) {
		pg->flags |= PGF_WP;
	} else {
		pg->flags &= (uint16_t)~PGF_WP;
		if (write)
			drop = page_dirty_locked(pg, true);
		else if (!(pg->flags & PGF_MAYBE)) /* (its digest stays good) */
			drop = predict_locked(vm, pg, (const void *)kva_of(&vm->fr, f));
	}
	if (vm->vf)
		verify_back(vm, pg, (const void *)kva_of(&vm->fr, f), VF_RESTORE, NULL);
	/* The kva copy is no longer needed, unless the evictor still writes
	 * from it; then the write's completion releases it. */
	if (!(pg->flags & PGF_IO))
		frame_kva_release(&vm->fr, f);
	frame_touch(&vm->fr, f);
	page_handoff(vm, s, pg, PG_RESIDENT);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
	st_fault(&h->st, LP_FAULT_REREF, prim_now_ns() - t0);
}

/*
 * A missing fault on a page we think is mapped: the message is stale (the
 * page was installed after the thread faulted; the install woke it), or
 * somebody dropped the page behind our back (MADV_DONTNEED on a region).
 * Filling it with zeros tells the two apart without a loop: -EEXIST means
 * stale.
 *
 * Called with the page's stripe lock held, from the state check on: the
 * evictor parks a resident page (moves it out to its kva slot) only after
 * taking it under that lock (claim_items).  Filled after the lock was let
 * go, a stale message could meet the page parked meanwhile, fill zeros in
 * its place, and the program read zeros where its data was (a handler
 * preempted between the check and the fill: seen under heavy load).
 */
static _Atomic(void (*)(uintptr_t)) stale_hook;

void fault_set_stale_hook(void (*fn)(uintptr_t addr))
{
	atomic_store(&stale_hook, fn);
}

static void resident_fault(struct lp_handler *h, uintptr_t addr)
{
	struct lp_vm *vm = h->vm;
	void (*hook)(uintptr_t) = atomic_load_explicit(&stale_hook,
						       memory_order_relaxed);

	if (hook)
		hook(addr);
	int rc = prim_uffd_copy(vm->uffd, addr, vm->zero, LP_PG, false);

	if (rc == -EEXIST || rc)
		page_wake(vm, addr);
	else
		vm_error(vm, -EFAULT); /* content dropped outside lazypage */
}

static void service_missing(struct lp_handler *h, uintptr_t addr, bool write,
			    pid_t tid, uint64_t t0)
{
	struct lp_vm *vm = h->vm;
	uint64_t vpn = addr >> LP_PAGE_SHIFT;

	pthread_rwlock_rdlock(&vm->map_lock);
	struct lp_region *r = regions_find(&vm->regions, addr);
	if (!r) {
		pthread_rwlock_unlock(&vm->map_lock);
		/* Being unmapped (the thread will fault for real once the
		 * range is gone), or a kva slot touched by our own thread. */
		if (vm->fr.n && !vm->parent &&
		    addr - vm->fr.kva < ((uintptr_t)vm->fr.n << LP_PAGE_SHIFT))
			(void)prim_uffd_copy(vm->uffd, addr, vm->zero, LP_PG,
					     false);
		page_wake(vm, addr);
		return;
	}
	region_get(r);
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);
	if (!pg && !(pg = spt_insert(&vm->spt, vpn, &lp_uninit_ops))) {
		spt_unlock(s);
		pthread_rwlock_unlock(&vm->map_lock);
		region_put(r);
		retry_later(h, addr, write); /* out of memory: try again */
		return;
	}
	enum lp_page_state st = (enum lp_page_state)pg->state;
	uint16_t flags = pg->flags;
	/* The evictor itself touched a page it parks or parked: cannot happen
	 * unless the page was dropped outside lazypage.  Zero it as a
	 * resident page's, so that the evictor can go on. */
	if ((st == PG_PARKED || st == PG_PARKING) &&
	    tid == atomic_load_explicit(&vm->ev.ktid, memory_order_relaxed))
		st = PG_RESIDENT;
	switch (st) {
	case PG_UNINIT:
	case PG_EVICTED:
		page_set_state(pg, PG_LOADING);
		spt_unlock(s);
		pthread_rwlock_unlock(&vm->map_lock);
		load(h, r, pg, write, flags & PGF_WASDIRTY, tid, t0);
		break;
	case PG_PARKED:
		page_set_state(pg, PG_RESTORING);
		spt_unlock(s);
		pthread_rwlock_unlock(&vm->map_lock);
		restore(h, pg, write, flags, t0);
		break;
	case PG_RESIDENT:
		pthread_rwlock_unlock(&vm->map_lock);
		resident_fault(h, addr); /* under the stripe lock: see there */
		spt_unlock(s);
		break;
	default: /* owned: the owner wakes us */
		pg->flags |= PGF_WAITERS;
		spt_unlock(s);
		pthread_rwlock_unlock(&vm->map_lock);
		break;
	}
	region_put(r);
	spt_maybe_grow(&vm->spt);
}

static void service_wp(struct lp_handler *h, uintptr_t addr, uint64_t t0)
{
	struct lp_vm *vm = h->vm;
	uint64_t vpn = addr >> LP_PAGE_SHIFT;
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);
	uint64_t drop = LP_NO_SLOT;
	bool counted = false;

	/* A forked child's write to a page it shares with its parent makes
	 * a copy (the kernel's): new memory, which waits for room as a
	 * fault waits for a frame.  (The page stays protected meanwhile.) */
	if (pg && (pg->flags & PGF_SHARED_IN) && pg->state == PG_RESIDENT) {
		spt_unlock(s);
		frames_wait_room(&vm->fr);
		s = spt_lock(&vm->spt, vpn);
		pg = spt_find(&vm->spt, vpn);
	}

	if (pg && page_owned(pg)) {
		pg->flags |= PGF_WAITERS;
		spt_unlock(s);
		return;
	}
	if (pg && pg->state == PG_RESIDENT) {
		counted = (pg->flags & PGF_WP) != 0;
		pg->flags &= (uint16_t)~PGF_WP;
		drop = page_dirty_locked(pg, true);
		/* A forked child writes a page it shares with its parent: a
		 * copy of its own, counted from now on (beyond the budget
		 * until its evictor adopts it into a frame). */
		if (pg->flags & PGF_SHARED_IN) {
			pg->flags &= (uint16_t)~PGF_SHARED_IN;
			frame_overflow(&vm->fr, 1);
		}
	}
	/* Unprotect (and wake) under the lock, so that the evictor never
	 * sees the page between our decision and the kernel's.  A page we
	 * think is not mapped was either dropped meanwhile (unprotecting
	 * nothing wakes the writer, who then faults it in) or is mapped in a
	 * forked child that got it while it was being loaded: either way the
	 * writer may go on. */
	(void)prim_uffd_wp(vm->uffd, addr, LP_PG, false);
	spt_unlock(s);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
	if (counted)
		st_fault(&h->st, LP_FAULT_WP, prim_now_ns() - t0);
}

/*
 * Filling ahead.  When a region's faults go up page after page, the pages
 * that follow are brought in with the faulting one, while frames are
 * plentiful, in one UFFDIO_COPY: each saves a fault.  The window starts at
 * 4, doubles on each fault that follows its stream (ahead_window()), up to
 * LP_RA_MAX - 1 (for zero fill-around with no budget, LP_ZA_MAX - 1), and
 * starts over otherwise.  Two kinds:
 *   swap readahead — the next pages that are on swap: one read per run of
 *       contiguous slots, all reads at once; they come in write-protected
 *       (their copy on swap stays valid), or writable with their digest
 *       (PGF_MAYBE) if they were written during their last residency;
 *   zero fill-around — the next pages never touched, of an anonymous region
 *       (a heap growing, memset of new memory): writable and dirty; those
 *       still all zero when evicted are dropped without I/O;
 *   file fill-around — the next pages never touched of a file or
 *       initialized region, each filled as its own fault would be.
 * With no budget a fault out of order fills around too: its 64 KiB block
 * (around_block()).
 */
struct ahead {
	struct lp_page *pg[LP_ZA_MAX];
	uint64_t vpn[LP_ZA_MAX];     /* of pg[i]: known after it is let go */
	uint32_t frame[LP_ZA_MAX];
	uint64_t slot[LP_ZA_MAX];
	bool wp[LP_ZA_MAX];          /* goes in write-protected */
	bool tier[LP_ZA_MAX];        /* came from the compressed tier */
	unsigned n;
	atomic_uint_least64_t *last; /* end of the stream they follow */
};

/*
 * How far from a stream's end a fault may land and still follow it.
 * Threads that share a sequential scan (thread k takes pages k, k + T,
 * ...) fault a few pages apart and out of order, and their reads complete
 * in any order: asking for exactly the next page saw no stream at all
 * with 4 such threads.  A random fault lands this close to one of the
 * LP_STREAMS streams by chance once in about pages / (2 RA_NEAR
 * LP_STREAMS).
 */
#define RA_NEAR 32u
/* Until a stream reads ahead, a fault follows it only a little after its
 * end (a thread striding over the pages its neighbours take). */
#define RA_STRIDE 8u

/* Move the stream's end *last up to vpn (never down). */
static void ahead_mark(atomic_uint_least64_t *last, uint64_t vpn)
{
	uint64_t prev = atomic_load_explicit(last, memory_order_relaxed);

	while (prev < vpn &&
	       !atomic_compare_exchange_weak_explicit(last, &prev, vpn,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

/* Whether a fault at vpn follows a stream that ends at end with window
 * w: one that reads ahead, within RA_NEAR of its end; one that does not
 * yet, within RA_STRIDE after it; exactly after it if not near. */
static bool ahead_follows(uint64_t end, unsigned w, uint64_t vpn, bool near)
{
	if (!end || vpn == end)
		return false;
	if (!near)
		return vpn == end + 1;
	if (w >= 4)
		return vpn + RA_NEAR >= end && vpn <= end + RA_NEAR;
	return vpn > end && vpn <= end + RA_STRIDE;
}

/* The window for a fault at vpn0: that of the stream it follows, grown;
 * 0 when it follows none, and then it starts a stream of its own.  The
 * window starts at the page right after a stream's end, or at the second
 * fault in a row a little after it: random faults that land near a stream
 * by chance (likely in a small region) rarely read ahead.  A window is 0
 * (new), 1 (one fault near) or 4 and up.  With !near (first touches: a
 * guess costs a frame and a zero fill, where a read ahead from swap is
 * one more page of a read), one stream, followed at the next page only.
 * *last is the stream's end, for ahead_done(). */
static unsigned ahead_window(struct lp_streams *ss, bool near, uint64_t vpn0,
			     unsigned max, atomic_uint_least64_t **last)
{
	unsigned n = near ? LP_STREAMS : 1;

	for (unsigned i = 0; i < n; i++) {
		struct lp_stream *st = &ss->s[i];
		uint64_t end = atomic_load_explicit(&st->last, memory_order_relaxed);
		unsigned w = atomic_load_explicit(&st->win, memory_order_relaxed);
		if (!ahead_follows(end, w, vpn0, near))
			continue;
		ahead_mark(&st->last, vpn0);
		if (vpn0 == end + 1)
			w = w >= 4 ? w * 2 : 4;
		else if (w)
			/* Near, not next: threads sharing the scan, each
			 * taking every few pages and drifting apart; a long
			 * window reads pages the others reach too late. */
			w = w < 4 ? 4 : w < RA_NEAR ? w : RA_NEAR;
		else
			w = 1;
		if (w > max - 1)
			w = max - 1;
		atomic_store_explicit(&st->win, w, memory_order_relaxed);
		*last = &st->last;
		return w >= 4 ? w : 0;
	}
	unsigned k = atomic_fetch_add_explicit(&ss->next, 1,
					       memory_order_relaxed) % n;
	atomic_store_explicit(&ss->s[k].win, 0, memory_order_relaxed);
	atomic_store_explicit(&ss->s[k].last, vpn0, memory_order_relaxed);
	*last = &ss->s[k].last;
	return 0;
}

/* Own (LOADING) up to win pages after vpn0, each with a frame: pages on
 * swap, or with fresh, pages never touched.  Stops at the first that is
 * not, and as soon as r is retired; from swap, passes over pages already
 * in or on their way (another thread's fault of the same stream).
 *
 * The fault that leads here has let its page go, so r may have been
 * unmapped since and another region mapped at the same addresses: claimed
 * by r, that region's pages would be filled with r's content (its file's
 * bytes).  So r->retired is read under each page's stripe lock.  The
 * unmapper sets it before it looks for the pages to tear down (under the
 * same stripe locks, spt_collect()): a claim it did not stop is one the
 * teardown sees, and waits for (settle()). */
static void ahead_claim(struct lp_vm *vm, struct lp_region *r, uint64_t vpn0,
			unsigned win, bool fresh, struct ahead *a)
{
	uint64_t end = r->end >> LP_PAGE_SHIFT;

	a->n = 0;
	for (unsigned i = 1; i <= win && vpn0 + i < end; i++) {
		uint64_t vpn = vpn0 + i;
		if (frame_try_get(&vm->fr, &a->frame[a->n], NULL))
			break;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		if (atomic_load(&r->retired))
			pg = NULL;
		else if (fresh)
			pg = pg ? NULL
				: spt_insert(&vm->spt, vpn, &lp_uninit_ops);
		else if (pg && pg->state != PG_EVICTED && pg->state != PG_UNINIT &&
			 pg->state != PG_DEAD) {
			spt_unlock(s); /* in, or coming in: not ours to read */
			frame_put(&vm->fr, a->frame[a->n]);
			continue;
		} else if (pg && (pg->state != PG_EVICTED || pg->backing != BK_SLOT))
			pg = NULL;
		if (pg) {
			page_set_state(pg, PG_LOADING);
			a->slot[a->n] = pg->slot;
			/* From swap: as a fault would map it (service_missing()) */
			a->wp[a->n] = !fresh && !(pg->flags & PGF_WASDIRTY);
			a->tier[a->n] = false;
		}
		spt_unlock(s);
		if (!pg) {
			frame_put(&vm->fr, a->frame[a->n]);
			break;
		}
		a->vpn[a->n] = vpn;
		a->pg[a->n++] = pg;
	}
}

/* ok pages of a went in: the next fault after them is in order too. */
static void ahead_done(struct lp_handler *h, struct ahead *a, unsigned ok)
{
	if (!ok)
		return;
	ahead_mark(a->last, a->vpn[ok - 1]);
	st_add(&h->st, C_READAHEAD, ok);
}

/* Copy the first ok claimed pages from buf to their (contiguous)
 * addresses, one copy per run of pages that go in alike (a->wp): how many
 * went in, from the first. */
static unsigned ahead_copy(struct lp_vm *vm, const struct ahead *a,
			   const void *buf, unsigned ok)
{
	for (unsigned i = 0; i < ok;) {
		unsigned j = i + 1;
		while (j < ok && a->wp[j] == a->wp[i] &&
		       a->vpn[j] == a->vpn[j - 1] + 1)
			j++;
		if (copy_retry(vm, page_addr(a->pg[i]),
			       (const char *)buf + ((size_t)i << LP_PAGE_SHIFT),
			       (size_t)(j - i) << LP_PAGE_SHIFT, a->wp[i]))
			return i; /* partly copied maybe: those threads refault alone */
		i = j;
	}
	return ok;
}

/* Install the first ok claimed pages from buf (contiguous addresses) and
 * give the others back as they were.  Returns how many went in.  A page
 * from swap that was written during its last residency goes in writable
 * and dirty (its slot freed), as its own fault would map it. */
static unsigned ahead_install(struct lp_handler *h, struct ahead *a,
			      const void *buf, unsigned ok, bool fresh)
{
	struct lp_vm *vm = h->vm;
	uint64_t drop[LP_ZA_MAX];
	unsigned ndrop = 0;

	ok = ahead_copy(vm, a, buf, ok);
	for (unsigned i = 0; i < a->n; i++) {
		struct lp_page *pg = a->pg[i];
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		if (i < ok) {
			if (fresh) {
				/* Evicted with content, it was written: it
				 * comes back writable (one that is still
				 * zero is dropped, and refilled with zeros). */
				pg->ops = &lp_anon_ops;
				pg->backing = BK_ZERO;
				pg->flags |= PGF_DIRTY | PGF_WASDIRTY;
			} else {
				if (vm->vf) /* before the backing changes */
					verify_back(vm, pg, (const char *)buf + ((size_t)i << LP_PAGE_SHIFT),
						    VF_READAHEAD, NULL);
				pg->flags &= (uint16_t)~(PGF_WP | PGF_DIRTY | PGF_MAYBE);
				if (a->tier[i]) /* leaves the tier, as in backing_read() */
					drop[ndrop++] = page_dirty_locked(pg, true);
				else if (a->wp[i])
					pg->flags |= PGF_WP;
				else
					drop[ndrop++] = predict_locked(
						vm, pg, (const char *)buf + ((size_t)i << LP_PAGE_SHIFT));
			}
			pg->frame = a->frame[i];
			frame_install(&vm->fr, a->frame[i], pg);
			page_handoff(vm, s, pg, PG_RESIDENT);
		} else {
			page_handoff(vm, s, pg, fresh ? PG_UNINIT : PG_EVICTED);
			frame_put(&vm->fr, a->frame[i]);
		}
	}
	for (unsigned k = 0; k < ndrop; k++)
		if (drop[k] != LP_NO_SLOT)
			swap_free(vm->swap, drop[k]);
	ahead_done(h, a, ok);
	return ok;
}

/* Claim the pages to fill ahead of a fault at vpn0 of r, if the faults go
 * up in order there: pages on swap, or with fresh, pages never touched.
 * Returns how many (a->n). */
static unsigned ahead_start(struct lp_handler *h, struct lp_region *r,
			    uint64_t vpn0, bool fresh, unsigned max,
			    struct ahead *a)
{
	struct lp_vm *vm = h->vm;

	a->n = 0;
	if (vm->flags & LP_CFG_NO_READAHEAD)
		return 0;
	unsigned win = ahead_window(fresh ? &r->za : &r->ra, !fresh, vpn0, max,
				    &a->last);
	if (win)
		ahead_claim(vm, r, vpn0, win, fresh, a);
	return a->n;
}

/* Read the slots of the claimed pages into h->buf: those in the compressed
 * tier from there (they go in writable and dirty, leaving it), the others
 * with one read per run of contiguous slots, all at once.  Returns how many pages, from the first,
 * came in whole (and authentic, when the swap is encrypted). */
static unsigned ahead_read_swap(struct lp_handler *h, struct ahead *a)
{
	struct lp_vm *vm = h->vm;
	struct lp_io_read rd[LP_RA_MAX];
	unsigned nrd = 0, first[LP_RA_MAX];
	/* From the tier first: 1 in, 0 on disk, -EBADMSG corrupt (lost). */
	int tier[LP_RA_MAX];
	bool good[LP_RA_MAX] = { false };

	for (unsigned i = 0; i < a->n; i++) {
		tier[i] = tier_read(vm, a->slot[i],
				    h->buf + ((size_t)i << LP_PAGE_SHIFT), &h->st);
		good[i] = tier[i] == 1;
		a->tier[i] = good[i];
		if (good[i])
			a->wp[i] = false; /* dirty once in: see ahead_install() */
	}
	for (unsigned i = 0; i < a->n;) {
		if (tier[i]) {
			i++;
			continue;
		}
		unsigned j = i + 1;
		while (j < a->n && !tier[j] && swap_run_joins(vm->swap, a->slot[j - 1], a->slot[j]))
			j++;
		first[nrd] = i;
		rd[nrd++] = (struct lp_io_read){
			.buf = h->buf + ((size_t)i << LP_PAGE_SHIFT),
			.len = (size_t)(j - i) << LP_PAGE_SHIFT,
			.off = a->slot[i], /* (the store makes it an offset) */
		};
		i = j;
	}
	struct lp_store *last = chain_last(&vm->swap->chain);
	if (nrd)
		last->ops->read_many(last, &h->io, rd, (int)nrd);
	for (unsigned k = 0; k < nrd; k++) {
		unsigned last_i = first[k] + (unsigned)(rd[k].len >> LP_PAGE_SHIFT);
		if (rd[k].res == (long)rd[k].len) {
			st_add(&h->st, C_SWAP_RB, rd[k].len);
			for (unsigned i = first[k]; i < last_i; i++)
				good[i] = !last->ops->finish_read(
					last, a->slot[i],
					h->buf + ((size_t)i << LP_PAGE_SHIFT));
		} else if (rd[k].res < 0) {
			st_add(&h->st, C_IO_ERR, 1);
			vm_error(vm, (int)rd[k].res);
		}
		/* A short read is no error: those pages load alone (and a
		 * single read is continued until complete). */
	}
	unsigned ok = 0;
	while (ok < a->n && good[ok])
		ok++;
	return ok;
}

static void swap_readahead(struct lp_handler *h, struct lp_region *r,
			   uint64_t vpn0)
{
	struct ahead a;

	if (!ahead_start(h, r, vpn0, false, LP_RA_MAX, &a))
		return;
	(void)ahead_install(h, &a, h->buf, ahead_read_swap(h, &a), false);
}

/* Fill-around of a first touch out of order, with no budget: the pages
 * never touched of its aligned block of ZA_BLOCK pages (64 KiB: what the
 * kernel maps at once for a file, and its multi-size huge pages for
 * anonymous memory), in two contiguous runs: after the fault, then from
 * the block's start.  Each run is claimed (ahead_claim()) and given to
 * fill(h, r, a) to install. */
#define ZA_BLOCK 16u

static void around_block(struct lp_handler *h, struct lp_region *r,
			 uint64_t vpn0,
			 void (*fill)(struct lp_handler *, struct lp_region *,
				      struct ahead *))
{
	uint64_t lo = vpn0 & ~(uint64_t)(ZA_BLOCK - 1);
	uint64_t first = r->start >> LP_PAGE_SHIFT;
	atomic_uint_least64_t unused = 0; /* the in-order window stays */
	struct ahead a = { .last = &unused };

	if (lo < first)
		lo = first;
	ahead_claim(h->vm, r, vpn0, (unsigned)(lo + ZA_BLOCK - 1 - vpn0), true, &a);
	fill(h, r, &a);
	if (vpn0 > lo) {
		ahead_claim(h->vm, r, lo - 1, (unsigned)(vpn0 - lo), true, &a);
		fill(h, r, &a);
	}
}

static void zero_fill(struct lp_handler *h, struct lp_region *r,
		      struct ahead *a)
{
	(void)r;
	ahead_install(h, a, h->vm->zeros, a->n, true);
}

static void zero_around(struct lp_handler *h, struct lp_region *r,
			uint64_t vpn0)
{
	struct ahead a;
	struct lp_vm *vm = h->vm;

	if (ahead_start(h, r, vpn0, true, vm->fr.n ? LP_RA_MAX : LP_ZA_MAX, &a))
		zero_fill(h, r, &a);
	else if (!vm->fr.n && !(vm->flags & LP_CFG_NO_READAHEAD))
		around_block(h, r, vpn0, zero_fill);
}

/* Produce the content of the claimed pages (never touched, of a file or
 * initialized region) into h->buf, as their first fault would, and install
 * them in one copy: those from the first up to the first that fails or
 * differs from the first in kind or cleanness.  The others go back. */
static void first_fill(struct lp_handler *h, struct lp_region *r,
		       struct ahead *a)
{
	struct lp_fill fill[LP_RA_MAX];
	unsigned ok = 0;
	uint64_t size = r->kind == RK_FILE ? atomic_load(&r->file->size) : 0;

	for (; ok < a->n; ok++) {
		struct lp_page *pg = a->pg[ok];
		unsigned char *buf = h->buf + ((size_t)ok << LP_PAGE_SHIFT);
		if (r->kind == RK_FILE && region_file_off(r, pg->vpn) >= size)
			break; /* past the end: its fault says what it is */
		memset(buf, 0, LP_PG);
		fill[ok] = (struct lp_fill){ 0 };
		if (pg->ops->swap_in(h, pg, r, buf, &fill[ok]) ||
		    (ok && (fill[ok].kind != fill[0].kind ||
			    fill[ok].clean != fill[0].clean)))
			break;
	}
	bool wp = ok && fill[0].clean && watch_writes(h->vm, r);
	if (ok && copy_retry(h->vm, page_addr(a->pg[0]), h->buf,
			     (size_t)ok << LP_PAGE_SHIFT, wp))
		ok = 0; /* partly copied maybe: those threads refault alone */
	for (unsigned i = 0; i < a->n; i++) {
		if (i < ok) {
			load_done(h, r, a->pg[i], a->frame[i],
				  h->buf + ((size_t)i << LP_PAGE_SHIFT), &fill[i],
				  wp, false);
			continue;
		}
		struct spt_stripe *s = spt_lock(&h->vm->spt, a->pg[i]->vpn);
		page_handoff(h->vm, s, a->pg[i], PG_UNINIT);
		frame_put(&h->vm->fr, a->frame[i]);
	}
	ahead_done(h, a, ok);
}

/* Fill-around of a first touch of a file or initialized region (program
 * text and data, libraries): the pages after it while the touches go up
 * in order, and with no budget the rest of its block (around_block()), as
 * the kernel's fault-around maps a file's cached pages. */
static void file_around(struct lp_handler *h, struct lp_region *r,
			uint64_t vpn0)
{
	struct ahead a;
	struct lp_vm *vm = h->vm;

	if (ahead_start(h, r, vpn0, true, LP_RA_MAX, &a))
		first_fill(h, r, &a);
	else if (!vm->fr.n && !(vm->flags & LP_CFG_NO_READAHEAD))
		around_block(h, r, vpn0, first_fill);
}

static void serve(struct lp_handler *h, const struct uffd_msg *m, uint64_t t0)
{
	uintptr_t addr = (uintptr_t)m->arg.pagefault.address & ~(LP_PG - 1);
	uint64_t flags = m->arg.pagefault.flags;
	pid_t tid = (pid_t)m->arg.pagefault.feat.ptid;

	frames_serving(tid); /* (frames_open()) */
	if (flags & UFFD_PAGEFAULT_FLAG_WP)
		service_wp(h, addr, t0);
	else
		service_missing(h, addr, flags & UFFD_PAGEFAULT_FLAG_WRITE, tid,
				t0);
	frames_serving(0);
}

/* Serve the faults deferred while the vm was frozen, if it is not now. */
static void drain_deferred(struct lp_handler *h)
{
	struct lp_vm *vm = h->vm;

	for (;;) {
		struct uffd_msg m;
		/* A freeze is on its way (or on): its thaw drains.  Serving
		 * now would meet frame_get()'s -EAGAIN and defer the fault
		 * again, into this function again: while the freezer is
		 * preempted between raising `freezing` and taking the lock,
		 * that recursion ran the handler out of stack. */
		if (atomic_load(&vm->freezing))
			return;
		pthread_mutex_lock(&vm->defer_lock);
		bool have = vm->ndeferred > 0;
		if (have)
			m = vm->deferred[--vm->ndeferred];
		pthread_mutex_unlock(&vm->defer_lock);
		if (!have)
			return;
		if (pthread_rwlock_tryrdlock(&vm->freeze_lock)) {
			pthread_mutex_lock(&vm->defer_lock);
			vm->deferred[vm->ndeferred++] = m; /* room: just taken */
			pthread_mutex_unlock(&vm->defer_lock);
			return;
		}
		serve(h, &m, prim_now_ns());
		pthread_rwlock_unlock(&vm->freeze_lock);
	}
}

static void defer(struct lp_handler *h, const struct uffd_msg *m)
{
	struct lp_vm *vm = h->vm;
	bool ok = true;

	pthread_mutex_lock(&vm->defer_lock);
	if (vm->ndeferred == vm->capdeferred) {
		unsigned cap = vm->capdeferred ? 2 * vm->capdeferred : 64;
		struct uffd_msg *d = realloc(vm->deferred, cap * sizeof(*d));
		if (d) {
			vm->deferred = d;
			vm->capdeferred = cap;
		}
	}
	if (vm->ndeferred < vm->capdeferred)
		vm->deferred[vm->ndeferred++] = *m;
	else
		ok = false;
	pthread_mutex_unlock(&vm->defer_lock);
	if (!ok) /* no memory: the thread refaults when woken, later */
		retry_later(h, (uintptr_t)m->arg.pagefault.address & ~(LP_PG - 1),
			    m->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	/* The thaw may have come between our try and the push. */
	drain_deferred(h);
}

static void defer_fault(struct lp_handler *h, uintptr_t addr, bool write)
{
	struct uffd_msg m;

	memset(&m, 0, sizeof(m));
	m.event = UFFD_EVENT_PAGEFAULT;
	m.arg.pagefault.address = addr;
	m.arg.pagefault.flags = write ? UFFD_PAGEFAULT_FLAG_WRITE : 0;
	m.arg.pagefault.feat.ptid = (__u32)frames_served(); /* (frames_open()) */
	defer(h, &m);
}

/*
 * A move we did not make ourselves: a forked child's, or, in a library's
 * program, an mremap of a region (not supported: README).  A child's
 * move whose mover the host held (vm_child_mremap_prep() in mmap.c)
 * takes our table along: the pages stay where they are, resident or on
 * swap, at their new addresses.  Otherwise its prep made the pages
 * present, and the new mapping is the kernel's, as natively: unprotected,
 * then unregistered (the event gives the old length: the prep noted the
 * new).
 */
static void remap_event(struct lp_handler *h, uintptr_t from, uintptr_t to,
			size_t len)
{
	struct lp_vm *vm = h->vm;

	if (atomic_load(&vm->remaps_own))
		return; /* vm_mremap() moved it: it knows */
	struct lp_remap_note m;
	bool noted = vm_child_move_take(vm, from, &m);
	if (noted && m.table && vm->move_table) {
		/* Our table goes with it (the prep held it still). */
		vm->move_table(vm, &m, to);
		vm_child_move_done(vm);
		return;
	}
	if (noted && m.table)
		vm_child_move_done(vm);
	/* (A move we could not hold for: the range it left is gone.) */
	size_t left = noted ? m.oldlen : 0;
	if (noted)
		len = m.newlen;
	if (vm->moved) {
		pthread_mutex_lock(&vm->maps_lock);
		vm->moving++;
		pthread_mutex_unlock(&vm->maps_lock);
	}
	if (vm->moved)
		vm->moved(vm, h, from, left, to, len);
	/* (The mover, woken by our read, ends its "mm changing" soon.) */
	for (int i = 0; i < 1000 && prim_uffd_wp(vm->uffd, to, len, false) == -EAGAIN; i++)
		sched_yield();
	(void)prim_uffd_unregister(vm->uffd, to, len);
	if (vm->moved) {
		pthread_mutex_lock(&vm->maps_lock);
		vm->moving--;
		pthread_mutex_unlock(&vm->maps_lock);
	}
}

static void handle(struct lp_handler *h, const struct uffd_msg *m, uint64_t t0)
{
	struct lp_vm *vm = h->vm;

	if (m->event == UFFD_EVENT_FORK) {
		flush_batch(h);
		if (vm->fork_event)
			vm->fork_event(vm, (int)m->arg.fork.ufd);
		else
			close((int)m->arg.fork.ufd);
		return;
	}
	if (m->event == UFFD_EVENT_REMAP) {
		remap_event(h, (uintptr_t)m->arg.remap.from,
			       (uintptr_t)m->arg.remap.to, (size_t)m->arg.remap.len);
		return;
	}
	if (m->event != UFFD_EVENT_PAGEFAULT)
		return; /* no other events are asked for */
	solo_note(vm, (pid_t)m->arg.pagefault.feat.ptid);
	if (pthread_rwlock_tryrdlock(&vm->freeze_lock)) {
		defer(h, m);
		return;
	}
	serve(h, m, t0);
	pthread_rwlock_unlock(&vm->freeze_lock);
}

static void run_retries(struct lp_handler *h)
{
	unsigned n = h->nretry;
	uintptr_t addr[64];
	uint8_t wr[64];
	pid_t tid[64];

	memcpy(addr, h->retry, n * sizeof(*addr));
	memcpy(wr, h->retry_write, n);
	memcpy(tid, h->retry_tid, n * sizeof(*tid));
	h->nretry = 0;
	for (unsigned i = 0; i < n; i++) {
		/* (Still that thread's fault: frames_open() counts.) */
		frames_serving(tid[i]);
		service_missing(h, addr[i], wr[i], tid[i], prim_now_ns());
		frames_serving(0);
	}
}

/* Clear the poison marker of a page that could not be read, so that its
 * next touch faults to us and reads it again.  The page is owned (LOADING)
 * while its address is zapped: nobody else touches it meanwhile. */
static void unpoison(struct lp_handler *h, uintptr_t addr)
{
	struct lp_vm *vm = h->vm;
	uint64_t vpn = addr >> LP_PAGE_SHIFT;
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);
	bool ours = pg && (pg->flags & PGF_POISONED) &&
		    (pg->state == PG_EVICTED || pg->state == PG_UNINIT);

	/* Otherwise unmapped, or moved by mremap, meanwhile. */
	if (ours) {
		pg->flags &= (uint16_t)~PGF_POISONED;
		page_set_state(pg, PG_LOADING);
	}
	spt_unlock(s);
	if (!ours)
		return;
	struct iovec iov = { (void *)addr, LP_PG };
	(void)prim_zap(vm->pidfd, &iov, 1);
	load_abort(vm, pg);
}

/* Unpoison the pages poisoned LP_POISON_MS ago or more (all: every one). */
static void unpoison_due(struct lp_handler *h, bool all)
{
	uint64_t now = prim_now_ns();
	unsigned k = 0;

	while (k < h->npoisoned &&
	       (all || now - h->poisoned_ns[k] >= LP_POISON_MS * 1000000ull))
		unpoison(h, h->poisoned[k++]);
	memmove(h->poisoned, h->poisoned + k,
		(h->npoisoned - k) * sizeof(*h->poisoned));
	memmove(h->poisoned_ns, h->poisoned_ns + k,
		(h->npoisoned - k) * sizeof(*h->poisoned_ns));
	h->npoisoned -= k;
}

/* Faults read from the userfaultfd at once (the kernel hands over as many
 * as are queued, up to this). */
#define FAULT_BATCH 16
/* How long a handler with reads in flight polls for their completion (and
 * for new faults) before it sleeps: a CPU that sleeps here is woken by
 * the completion's interrupt ~15 us later than one that looks. */
#define SPIN_NS 150000u

/* Read and serve the faults queued on the userfaultfd: how many, or
 * -1 when the userfaultfd is gone. */
static int read_faults(struct lp_handler *h)
{
	struct uffd_msg msg[FAULT_BATCH];
	struct lp_vm *vm = h->vm;
	bool forks = vm->fork_event != NULL;

	if (forks)
		atomic_fetch_add(&vm->uffd_readers, 1);
	ssize_t n = read(vm->uffd, msg, sizeof(msg));
	if (forks) {
		unsigned nf = 0;
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(*msg); i++)
			nf += msg[i].event == UFFD_EVENT_FORK;
		if (nf)
			atomic_fetch_add(&vm->forks_read, nf);
		atomic_fetch_sub(&vm->uffd_readers, 1);
	}
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	uint64_t t0 = prim_now_ns();
	int k = (int)((size_t)n / sizeof(msg[0]));
	atomic_fetch_add_explicit(&h->nread, (uint64_t)k, memory_order_relaxed);
	/* The swap-ins of a batch are submitted together: one system call,
	 * one doorbell of the device (a VM exit: 15 % of the CPU time of 4
	 * threads missing at random went to them). */
	if (k > 1)
		io_plug(&h->aio);
	for (int i = 0; i < k; i++)
		handle(h, &msg[i], t0);
	if (k > 1)
		io_unplug(&h->aio);
	return k;
}

/* Sleep until a fault, a completion, a thaw or the stop: false to stop. */
static bool handler_sleep(struct lp_handler *h)
{
	struct lp_vm *vm = h->vm;
	int solo = atomic_load_explicit(&vm->solo, memory_order_relaxed);
	/* (A handler with a kick is one of vm->h.) */
	bool listen = solo < 0 || h->kick_fd < 0 || solo == (int)(h - vm->h);
	struct pollfd pfd[4] = {
		{ .fd = listen ? vm->uffd : h->kick_fd, .events = POLLIN },
		{ .fd = vm->stop_fd, .events = POLLIN },
		{ .fd = vm->thaw_fd, .events = POLLIN },
		{ .fd = h->aio.ring.ring_fd, .events = POLLIN },
	};
	nfds_t nfd = async_pending(h) ? 4 : 3;
	/* A child vm looks every half second whether its process is still
	 * there (a child's userfaultfd never hangs up). */
	int timeout = h->nretry ? 1 : h->npoisoned ? LP_POISON_MS
				   : vm->parent ? 500 : -1;
	int rc = poll(pfd, nfd, timeout);

	if (rc < 0 && errno != EINTR)
		return false;
	if (pfd[1].revents & POLLIN)
		return false;
	if (!listen && (pfd[0].revents & POLLIN)) {
		uint64_t v;
		(void)!read(h->kick_fd, &v, sizeof(v));
	}
	if (pfd[2].revents & POLLIN) {
		uint64_t v;
		(void)!read(vm->thaw_fd, &v, sizeof(v));
		drain_deferred(h);
	}
	if (rc == 0 && vm->parent && !vm_alive(vm)) {
		/* Its frames leave the budget it shared at once, not when
		 * the host frees the vm (at the program's end: a script's
		 * ended subshells held the tree's whole cap while its sort
		 * thrashed in its floor). */
		atomic_store(&vm->dead, true);
		frames_share(&vm->fr, NULL, NULL);
		return false;
	}
	return true;
}

static void *handler_main(void *arg)
{
	struct lp_handler *h = arg;
	uint64_t idle = 0; /* since when nothing came, while reads fly */

	h->ktid = (pid_t)syscall(SYS_gettid);
	if (h->cpu >= 0) {
		/* One handler per CPU, each staying on its own: the faulting
		 * thread's CPU goes idle as it blocks, so that CPU's handler
		 * runs at once and wakes it locally.  A handler free to float
		 * is often woken on the other CPU: twice the latency here
		 * (about 20 us against 10 per fault). */
		(void)prim_pin_self(h->cpu);
	}
	for (;;) {
		if (h->npoisoned)
			unpoison_due(h, false);
		int got = async_pending(h) ? async_reap(h, 0) : 0;
		int k = read_faults(h);
		if (k < 0)
			break;
		if (k + got > 0) {
			idle = 0;
			continue;
		}
		if (h->nretry)
			run_retries(h);
		if (async_pending(h)) {
			uint64_t now = prim_now_ns();
			if (!idle)
				idle = now;
			if (now - idle < SPIN_NS) {
				sched_yield(); /* others of this CPU go first */
				continue;
			}
		}
		idle = 0;
		if (!handler_sleep(h))
			break;
	}
	/* Stopping: the reads in flight end before their buffers go (a
	 * ring that fails meanwhile is given 10 s, then torn down: its exit
	 * cancels what it still has). */
	for (int i = 0; async_pending(h) && i < 100; i++)
		async_reap(h, 100);
	return NULL;
}

/* Give h (of vm) its fill buffer, room for a window of readahead, and its
 * I/O ring.  0 or -errno. */
static int handler_setup(struct lp_handler *h, struct lp_vm *vm)
{
	h->vm = vm;
	h->kick_fd = -1;
	h->buf = aligned_alloc(LP_PG, (size_t)LP_RA_MAX << LP_PAGE_SHIFT);
	if (!h->buf)
		return -ENOMEM;
	return io_setup(&h->io, 2 * LP_RA_MAX);
}

/* A handler thread of a vm of its own also keeps swap-ins in flight (a
 * child vm's handler, and the host's contexts, read one at a time). */
static int handler_setup_async(struct lp_handler *h)
{
	h->abuf = aligned_alloc(LP_PG, (size_t)LP_INFLIGHT << LP_PAGE_SHIFT);
	h->pend = calloc(LP_INFLIGHT, sizeof(*h->pend));
	if (!h->abuf || !h->pend)
		return -ENOMEM;
	int rc = io_setup(&h->aio, 2 * LP_INFLIGHT);
	if (rc)
		return rc;
	for (unsigned i = 0; i < LP_INFLIGHT; i++)
		h->freep[i] = LP_INFLIGHT - 1 - i;
	h->nfreep = LP_INFLIGHT;
	h->async = true;
	return 0;
}

static void handler_teardown(struct lp_handler *h)
{
	if (h->kick_fd >= 0)
		close(h->kick_fd);
	h->kick_fd = -1;
	io_teardown(&h->io);
	io_teardown(&h->aio);
	free(h->buf);
	free(h->abuf);
	free(h->pend);
}

int handlers_start(struct lp_vm *vm)
{
	sigset_t old;
	int rc = 0;

	/* (Each handler's counters are 50 KiB: the runtime's own memory,
	 * not cleared nor copied at the program's forks.) */
	vm->h = prim_private_alloc(vm->nthreads * sizeof(*vm->h));
	if (!vm->h)
		return -ENOMEM;
	vm->nh = vm->nthreads;
	/* (All torn down by handlers_stop(), whether set up or not.) */
	for (unsigned i = 0; i < vm->nh; i++)
		vm->h[i].kick_fd = -1;
	atomic_init(&vm->solo, -1);
	pthread_mutex_init(&vm->solo_lock, NULL);
	vm->solo_fd = -1;
	for (unsigned i = 0; i < vm->nh && !rc; i++)
		rc = handler_setup(&vm->h[i], vm);
	for (unsigned i = 0; i < vm->nh && !rc && !vm->parent &&
			     !(vm->flags & LP_CFG_SYNC_READS); i++)
		rc = handler_setup_async(&vm->h[i]);
	if (rc)
		return rc;
	/* The CPUs we may run on, for pinning handler i to the i-th. */
	int cpus[CPU_SETSIZE], ncpu = 0;
	if (!(vm->flags & LP_CFG_NO_PIN))
		ncpu = prim_allowed_cpus(cpus, CPU_SETSIZE);
	for (unsigned i = 0; i < vm->nh; i++)
		vm->h[i].cpu = ncpu > 1 && !vm->parent ? cpus[i % (unsigned)ncpu] : -1;
	/* Solo serving needs a handler on each CPU, each pinned there. */
	vm->solo_ok = ncpu > 1 && !vm->parent && vm->nh >= (unsigned)ncpu;
	for (unsigned i = 0; i < vm->nh && vm->solo_ok; i++) {
		vm->h[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vm->h[i].kick_fd < 0)
			vm->solo_ok = false;
	}

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	prim_block_signals(&old);
	for (unsigned i = 0; i < vm->nh; i++) {
		rc = -pthread_create(&vm->h[i].tid, &attr, handler_main, &vm->h[i]);
		if (rc)
			break;
		vm->h[i].started = true;
	}
	prim_restore_signals(&old);
	pthread_attr_destroy(&attr);
	return rc;
}

void handlers_stop(struct lp_vm *vm)
{
	uint64_t one = 1;

	if (!vm->h)
		return;
	if (vm->stop_fd >= 0)
		(void)!write(vm->stop_fd, &one, sizeof(one));
	for (unsigned i = 0; i < vm->nh; i++) {
		struct lp_handler *h = &vm->h[i];
		if (h->started)
			pthread_join(h->tid, NULL);
		handler_teardown(h);
	}
	if (vm->solo_fd >= 0)
		close(vm->solo_fd);
	vm->solo_fd = -1;
	prim_private_free(vm->h, vm->nh * sizeof(*vm->h));
	vm->h = NULL;
	vm->nh = 0;
}

struct lp_handler *handler_new(struct lp_vm *vm)
{
	struct lp_handler *h = prim_private_alloc(sizeof(*h));

	if (!h)
		return NULL;
	if (handler_setup(h, vm)) {
		free(h->buf);
		prim_private_free(h, sizeof(*h));
		return NULL;
	}
	h->ktid = (pid_t)syscall(SYS_gettid);
	return h;
}

void handler_free(struct lp_handler *h)
{
	if (!h)
		return;
	unpoison_due(h, true);
	handler_teardown(h);
	prim_private_free(h, sizeof(*h));
}

void vm_fault_in(struct lp_handler *h, uintptr_t addr)
{
	/* This handler has no loop of its own: clear its markers here. */
	if (h->npoisoned)
		unpoison_due(h, false);
	service_missing(h, addr, false, 0, prim_now_ns());
}

/*
 * Pinned pages.  The kernel writes the program's memory on its own, where a
 * page fault is not allowed, in one place: an exiting thread's clear of its
 * tid word (CLONE_CHILD_CLEARTID, set_tid_address) and the futex wake
 * there.  A userfault from an exiting thread fails at once, without a
 * message, so were the word's page not mapped (evicted, parked by a
 * reference sweep, being read in) or write-protected, the write and the
 * wake would be lost and pthread_join would wait for ever.  A pinned page
 * is resident and writable, and the evictor passes it by.
 */
int vm_pin(struct lp_handler *h, uintptr_t addr)
{
	struct lp_vm *vm = h->vm;
	uintptr_t pa = addr & ~(LP_PG - 1);
	uint64_t vpn = pa >> LP_PAGE_SHIFT;

	for (int tries = 0; tries < 200; tries++) {
		pthread_rwlock_rdlock(&vm->map_lock);
		bool managed = regions_find(&vm->regions, pa) != NULL;
		pthread_rwlock_unlock(&vm->map_lock);
		if (!managed)
			return -ENOENT;
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		if (pg) /* from now on never a victim */
			pg->flags |= PGF_PINNED;
		if (pg && pg->state == PG_RESIDENT) {
			uint64_t drop = LP_NO_SLOT;
			if (pg->flags & PGF_WP) { /* as a write fault would */
				pg->flags &= (uint16_t)~PGF_WP;
				drop = page_dirty_locked(pg, true);
				(void)prim_uffd_wp(vm->uffd, pa, LP_PG, false);
			}
			spt_unlock(s);
			if (drop != LP_NO_SLOT)
				swap_free(vm->swap, drop);
			return 0;
		}
		if (pg && page_owned(pg)) { /* its owner lets go soon */
			pg->flags |= PGF_WAITERS;
			struct timespec ts;
			prim_deadline(&ts, 10);
			pthread_cond_timedwait(&s->settle, &s->lock, &ts);
			spt_unlock(s);
			continue;
		}
		spt_unlock(s);
		/* Not resident: fault it in, for writing (a fill deferred by a
		 * freeze, or put off while the mm changes: again, shortly). */
		unsigned nretry = h->nretry;
		if (tries)
			usleep(500);
		service_missing(h, pa, true, 0, prim_now_ns());
		h->nretry = nretry;
	}
	return -EAGAIN;
}

void vm_unpin(struct lp_vm *vm, uintptr_t addr)
{
	uint64_t vpn = addr >> LP_PAGE_SHIFT;
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	struct lp_page *pg = spt_find(&vm->spt, vpn);

	if (pg)
		pg->flags &= (uint16_t)~PGF_PINNED;
	spt_unlock(s);
}
