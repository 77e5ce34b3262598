/* SPDX-License-Identifier: MIT */
/*
 * The evictor: one thread that keeps free frames between the low and high
 * watermarks, ahead of demand, so that a fault rarely waits.  The frame
 * table asks it for room through the wake callback evictor_start() installs
 * (frames_set_wake(): frame.c never calls up here); fault handlers and the
 * evictor meet only in the page states and the frame table, never calling
 * each other.
 *
 * A round (round_once()), each step a function below:
 *   1. release kva slots nobody needs any more (one batched MADV_DONTNEED,
 *      release_kva());
 *   2. ask the policy for victims (and collect the pages whose reference
 *      bits it cleared: those are unmapped only, to observe their next use)
 *      and own their pages (select_items(), claim_items());
 *   3. park(): move each page out of the process into its frame's kva slot.
 *      A clean page is write-protected already, so a copy is stable; a
 *      dirty one is moved atomically (UFFDIO_MOVE) or write-protected first.
 *      Copied pages are then dropped from the page table in one batch.
 *      From here on nobody can change the content behind our back: a thread
 *      touching the page faults and gets it back from kva, intact.  The
 *      parking ends with a hand-off (page_handoff()) to the page's waiters;
 *   4. evict() the victims: a clean page (its swap slot, file or zero copy
 *      is still valid) is dropped without I/O; a dirty one is written from
 *      its kva slot — to contiguous swap slots, one write per run
 *      (write_swap()) — or back to its file (write_file()).  A fault on a
 *      page whose write is in flight restores it from kva at once: faults
 *      never wait for an eviction write.  write_done() ends each write.
 *
 * Writes that fail, or find the swap full, leave the page parked and dirty
 * in memory; the policy gets it back and the error goes to the statistics.
 * When nothing at all can be evicted and handlers wait, the frame table is
 * marked stuck (update_stuck()): faults then proceed beyond the budget
 * instead of waiting forever (frame_get()).  Only a frame actually freed (a
 * clean drop, a write that succeeded, or one given back by an unmap:
 * frame.c's push_free()) unsticks it: a write merely submitted may fail
 * too.
 * While writes keep failing (EV_FAIL_STREAK in a row, none good for
 * EV_RETRY_MS), rounds are retried every EV_RETRY_MS, not at once; a
 * failure among good writes is retried at once, within the budget.
 * Once frames come free again, pages that came in beyond the budget are
 * adopted into them (step 0), so that the budget holds again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "evict.h"
#include "prim.h"
#include "core.h"
#include "verify.h"
#include "pagelife.h"
#include "store.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define EV_BATCH 64u      /* victims per round */
#define EV_PARKS 256u     /* reference-bit parks per round */
#define EV_RETRY_MS 100   /* pace of rounds while writes fail or wait */
#define EV_FAIL_STREAK 4  /* writes failed in a row: writes are failing */
#define EV_WAIT_MS 2      /* pace of rounds while faults wait for a frame */

struct ev_item {
	uint32_t f;
	bool victim;
	bool park;        /* mapped: must be parked first */
	bool wp;          /* write-protected when taken */
	bool moved;       /* parked by UFFDIO_MOVE (nothing left to drop) */
	bool gone;        /* dropped by the program itself: zeros parked */
	bool ran;         /* parked with its run (move_runs()) */
	bool pinned;      /* the kernel would not move it: pinned for I/O */
	bool ok;
	struct lp_page *pg;
	struct lp_region *r;
};

struct ev_write {
	struct lp_io_req req;
	bool to_file;
	bool pooled;      /* stored in the compressed tier: no I/O */
	bool tier_wb;     /* a memory store's pages passed on to the last */
	struct lp_store *from; /* tier_wb: that memory store */
	unsigned char *pages; /* tier_wb: the pages written */
	uint64_t *slots;  /* tier_wb: their slots (ascending, contiguous) */
	bool unsent;      /* the ring refused it: completed by hand */
	unsigned char *sealed; /* encrypted swap: what is written */
	unsigned n;
	uint32_t bytes;
	uint64_t slot0;
	uint32_t f[LP_IO_MAXV];
	struct lp_page *pg[LP_IO_MAXV];
};

static bool is_zero(const void *p)
{
	const uint64_t *w = p;
	uint64_t acc = 0;

	for (size_t i = 0; i < LP_PG / 8; i += 8) {
		for (size_t j = 0; j < 8; j++)
			acc |= w[i + j];
		if (acc)
			return false;
	}
	return true;
}

static void release_kva(struct lp_vm *vm)
{
	struct lp_frames *fr = &vm->fr;
	struct iovec *iov = vm->ev.iov;
	size_t n = 0;

	pthread_mutex_lock(&fr->lock);
	for (uint32_t i = 0; i < fr->nrelq; i++) {
		uint32_t f = fr->relq[i];
		if (fr->tab[f].kva != KVA_RELEASE)
			continue;
		fr->tab[f].kva = KVA_EMPTY;
		iov[n].iov_base = (void *)kva_of(fr, f);
		iov[n++].iov_len = LP_PG;
	}
	fr->nrelq = 0;
	pthread_mutex_unlock(&fr->lock);
	if (n)
		(void)prim_zap(vm->pidfd, iov, n);
}

/* Step 0: frameless pages (taken beyond the budget while nothing could be
 * evicted) take free frames, down to just under the low watermark: the
 * round then evicts to make room again.  Returns how many were adopted. */
static unsigned adopt_overflow(struct lp_vm *vm)
{
	unsigned n = 0;
	size_t nskip = 0, capskip = 0;
	uint64_t vpn, *skip = NULL;
	/* A forked child's pages shared with its parent count once taken:
	 * only as far as the budget has room (kept aside meanwhile). */
	uint64_t room = vm->parent ? frames_room(&vm->fr) : UINT64_MAX;

	while (frame_overflow_next(&vm->fr, &vpn) == 0) {
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		bool later = false;
		bool shared = pg && pg->frame == LP_NO_FRAME &&
			      (pg->flags & PGF_SHARED_IN) && pg->state == PG_RESIDENT;
		if (shared && room)
			room--;
		else if (shared) {
			if (nskip == capskip) {
				capskip = capskip ? 2 * capskip : 256;
				uint64_t *t = realloc(skip, capskip * sizeof(*t));
				if (!t) {
					frame_overflow_note(&vm->fr, vpn);
					spt_unlock(s);
					break;
				}
				skip = t;
			}
			skip[nskip++] = vpn;
			spt_unlock(s);
			continue;
		}
		if (pg && pg->frame == LP_NO_FRAME) {
			if (pg->state == PG_RESIDENT && frame_adopt(&vm->fr, pg) == 0)
				n++;
			else if (pg->state == PG_RESIDENT || pg->state == PG_SYNCING)
				/* A fault took the free frame since
				 * frame_overflow_next(), or lp_sync() owns
				 * the page for now: not forgotten. */
				later = true;
		}
		/* Otherwise unmapped (or moved by mremap) meanwhile. */
		if (later)
			frame_overflow_note(&vm->fr, vpn);
		spt_unlock(s);
		if (later)
			break;
	}
	for (size_t i = 0; i < nskip; i++) {
		struct spt_stripe *s = spt_lock(&vm->spt, skip[i]);
		frame_overflow_note(&vm->fr, skip[i]);
		spt_unlock(s);
	}
	free(skip);
	return n;
}

/* Step 2: pick victims and reference-bit parks.  Returns the item count. */
static unsigned select_items(struct lp_vm *vm, struct ev_item *it)
{
	struct lp_frames *fr = &vm->fr;
	struct lp_evictor *ev = &vm->ev;
	unsigned n = 0;

	pthread_mutex_lock(&fr->lock);
	uint32_t want = 0;
	/* What a fault of ours can take: our free frames, or, while ours
	 * wait on a shared budget, the room the budget has.  Without the
	 * second, a member that waits on the budget, not on its table,
	 * evicted one page per round (a forked child: one injected drop
	 * per page). */
	uint32_t free_now = fr->nfree;
	uint64_t room = fr->waiting ? frames_share_room(fr) : UINT64_MAX;
	if (room < free_now)
		free_now = (uint32_t)room;
	if (free_now < fr->low || fr->waiting) {
		uint32_t have = free_now + ev->pending;
		want = have < fr->high ? fr->high - have : 0;
		if (!want && fr->waiting && !ev->pending)
			want = 1;
	}
	/* A share of the tree's budget (frames_excess()): what a forked
	 * child inherited counts at once, and it may sit idle beyond its
	 * part (no fault of its own asks for room): what the tree holds
	 * beyond the cap leaves without being asked; and what any member
	 * holds beyond its fair part leaves while one below its own waits
	 * (its faults kick us: share_kick()). */
	if (ev->excess > ev->pending && ev->excess - ev->pending > want)
		want = (uint32_t)(ev->excess - ev->pending);
	if (want > EV_BATCH)
		want = EV_BATCH;
	fr->sweep_left = want * vm->ref_scan;
	ev->waited = fr->waiting > 0 && fr->nfree == 0;
	for (uint32_t i = 0; i < want; i++) {
		uint32_t f;
		if (fr->pops->evict(fr->pol, &f)) {
			if (!n)
				ev->why = EVW_NO_VICTIM;
			break;
		}
		struct lp_frame *fe = &fr->tab[f];
		fe->in_policy = 0;
		/* busy == 1: queued for a park a moment ago; now a victim */
		fe->busy = 2;
		it[n++] = (struct ev_item){ .f = f, .victim = true, .pg = fe->page };
	}
	uint32_t k = 0;
	for (; k < fr->nparkq && n < EV_BATCH + EV_PARKS; k++) {
		uint32_t f = fr->parkq[k];
		if (fr->tab[f].busy == 1)
			it[n++] = (struct ev_item){ .f = f, .pg = fr->tab[f].page };
	}
	memmove(fr->parkq, fr->parkq + k, (fr->nparkq - k) * sizeof(*fr->parkq));
	fr->nparkq -= k;
	vm->ev.ticket = frame_round_begin(fr);
	pthread_mutex_unlock(&fr->lock);
	return n;
}

/* Under x's stripe lock, x's page RESIDENT: the evictor owns it now. */
static void own_for_park(struct ev_item *x)
{
	page_set_state(x->pg, PG_PARKING);
	x->park = true;
	x->wp = (x->pg->flags & PGF_WP) != 0;
}

/* Whether x's page is still the one that holds x's frame, not pinned, in
 * a state the evictor can take: RESIDENT (owned at once, to be parked), or
 * PARKED for a victim. */
static bool claim_page(struct lp_vm *vm, struct ev_item *x)
{
	uint64_t vpn = __atomic_load_n(&x->pg->vpn, __ATOMIC_RELAXED);
	/* A forked child's page about to move with its mapping: left where
	 * the move finds it (pagelife.h). */
	if (vm->parent && vm_child_moving(vm, vpn))
		return false;
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	bool keep = false;

	/* The struct may have been recycled for another page of this
	 * stripe: it must still hold our frame. */
	if (x->pg->vpn == vpn && x->pg->frame == x->f &&
	    !(x->pg->flags & PGF_PINNED)) { /* pinned: passed by (vm_pin) */
		if (x->pg->state == PG_RESIDENT) {
			own_for_park(x);
			keep = true;
		} else if (x->pg->state == PG_PARKED && x->victim) {
			keep = true;
		}
	}
	spt_unlock(s);
	return keep;
}

/* A reference on the region of x's page; none while it is being unmapped:
 * a page owned for parking then goes back to lp_unmap(). */
static bool claim_region(struct lp_vm *vm, struct ev_item *x)
{
	pthread_rwlock_rdlock(&vm->map_lock);
	x->r = regions_find(&vm->regions, page_addr(x->pg));
	if (x->r)
		region_get(x->r);
	pthread_rwlock_unlock(&vm->map_lock);
	if (!x->r && x->park) {
		struct spt_stripe *s = spt_lock(&vm->spt, x->pg->vpn);
		page_handoff(vm, s, x->pg, PG_RESIDENT);
	}
	return x->r != NULL;
}

/* Take ownership of the page of each item; drop the items we cannot use. */
static unsigned claim_items(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ev_item x = it[i];
		if (x.pg && claim_page(vm, &x) && claim_region(vm, &x))
			it[m++] = x;
		else
			frame_idle(&vm->fr, x.f);
	}
	if (n && !m)
		vm->ev.why = EVW_OWNED;
	return m;
}

/* Release one kva slot at once (one that was not released in a batch). */
static void zap_slot(struct lp_vm *vm, uintptr_t kva)
{
	struct iovec iov = { (void *)kva, LP_PG };

	(void)prim_zap(vm->pidfd, &iov, 1);
}

static int copy_out(struct lp_vm *vm, uintptr_t kva, const void *src)
{
	if (vm->parent) { /* a child vm's kva slots are plain memory */
		memcpy((void *)kva, src, LP_PG);
		return 0;
	}
	int rc = prim_uffd_copy(vm->uffd, kva, src, LP_PG, false);

	if (rc == -EEXIST) {
		/* A kva slot that was not released: release it now. */
		zap_slot(vm, kva);
		rc = prim_uffd_copy(vm->uffd, kva, src, LP_PG, false);
	}
	return rc;
}

/*
 * x's page is not in the page table, although it is resident for us: the
 * program dropped it behind our back (madvise(MADV_DONTNEED) straight to
 * the kernel).  Copying from it would fault, and wait for a handler, while
 * the handlers may all wait for a frame from us: the pager stalled for
 * good.  An anonymous page reads as zeros now, as natively: zeros are
 * parked (dirty: its copy on swap is stale; park_done()).  A page of a
 * file stays as it is, not parked: its next touch fills it (the fault
 * path's resident_fault()).  Returns false (nothing to drop).
 */
static bool park_gone(struct lp_vm *vm, struct ev_item *x, uintptr_t kva)
{
	vm_error(vm, -EFAULT);
	if (x->r->kind == RK_ANON && copy_out(vm, kva, vm->zero) == 0)
		x->ok = x->moved = x->gone = true;
	return false;
}

/* Step 3a: the kva slots of the pages to park must be empty before
 * anything moves in: release those queued for release, in one batch. */
static void empty_slots(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct lp_frames *fr = &vm->fr;
	struct iovec *zap = vm->ev.iov;
	size_t nz = 0;

	pthread_mutex_lock(&fr->lock);
	for (unsigned i = 0; i < n; i++) {
		if (!it[i].park || fr->tab[it[i].f].kva != KVA_RELEASE)
			continue;
		fr->tab[it[i].f].kva = KVA_EMPTY;
		zap[nz].iov_base = (void *)kva_of(fr, it[i].f);
		zap[nz++].iov_len = LP_PG;
	}
	pthread_mutex_unlock(&fr->lock);
	if (nz)
		(void)prim_zap(vm->pidfd, zap, nz);
}

/*
 * Move the page at addr into its (empty) kva slot.  A failed UFFDIO_MOVE
 * is not taken at its word: on 6.18 (docs/RELIABILITY.md, "a move that
 * says EEXIST") the kernel was caught moving the page and answering
 * -EEXIST, as if the slot had been full before.  Zapping the slot then,
 * as for a slot not released, threw away the page's only copy.  So when
 * the page has left its address and the slot holds one, the move is done,
 * whatever was answered: nothing but our own moves and copies fills a
 * slot, and this one was empty (or released just before: empty_slots()).
 */
static int move_out(struct lp_vm *vm, uintptr_t addr, uintptr_t kva)
{
	int rc = prim_uffd_move(vm->uffd, kva, addr, LP_PG);

	if (rc && prim_mapped(kva) && !prim_mapped(addr)) {
		st_add(&vm->ev.st, C_MOVE_FIXUP, 1);
		rc = 0;
	}
	return rc;
}

/* Step 3b: move x's page into its kva slot (x->ok, x->moved), or copy it
 * there: then it must still leave the process, and true is returned. */
static bool move_or_copy(struct lp_vm *vm, struct ev_item *x)
{
	uintptr_t addr = page_addr(x->pg), kva = kva_of(&vm->fr, x->f);
	int rc;

	/* The protection the region was mapped with may have changed since
	 * (mprotect): never rely on it.  MOVE refuses what it cannot move
	 * atomically; write protection works on any page.  A clean page
	 * (write-protected) is copied, unless the mm has long-term pins:
	 * the kernel writes into a registered buffer without a write fault,
	 * so no page of it is known clean (below). */
	if ((!x->wp || vm->ev.pinned) && vm->have_move) {
		rc = move_out(vm, addr, kva);
		if (rc == -EEXIST) {
			zap_slot(vm, kva);
			rc = move_out(vm, addr, kva);
		}
		x->ok = x->moved = rc == 0;
		if (x->ok)
			return false;
		if (rc == -ENOENT)
			return park_gone(vm, x, kva);
		/*
		 * Refused (-EBUSY) yet mapped once only: pinned, the target
		 * of I/O in flight (O_DIRECT, process_vm_writev) or a
		 * registered buffer (io_uring).  The kernel goes on writing
		 * into it through the pin, whatever its page table says:
		 * copied and dropped, it would come back as the copy and
		 * lose what the kernel wrote after (an O_DIRECT read into a
		 * buffer four times the cap lost 403 of 512 pages; every
		 * read into a registered buffer was lost).  So it stays in
		 * memory.  Or it was shared with a child that ended and is
		 * not marked exclusive until written (MOVE wants that): a
		 * write made here (the page is dirty: no write protection
		 * to meet) marks it, and it moves.  (A page still shared
		 * with a child cannot be pinned for writing: it leaves by
		 * the copy path.)
		 */
		if (rc == -EBUSY && prim_page_exclusive(addr) == 1) {
			if (madvise((void *)addr, LP_PG, MADV_POPULATE_WRITE) == 0) {
				rc = move_out(vm, addr, kva);
				x->ok = x->moved = rc == 0;
				if (x->ok)
					return false;
			}
			if ((x->pinned = rc == -EBUSY))
				return false;
		}
	}
	/* Copy path: stop writers first, then copy; the page leaves in the
	 * caller's batch.  Only a page that is there is read (park_gone();
	 * a program that drops it between the look and the copy still
	 * stalls us: README, Limits). */
	if (!prim_mapped(addr))
		return park_gone(vm, x, kva);
	if (!x->wp && prim_uffd_wp(vm->uffd, addr, LP_PG, true) != 0)
		return false;
	if (copy_out(vm, kva, (const void *)addr) != 0)
		return false;
	x->ok = true;
	return true;
}

/* Step 3c: the parking ends; the page's waiters are let go. */
static void park_done(struct lp_vm *vm, struct ev_item *x)
{
	struct lp_frames *fr = &vm->fr;
	struct spt_stripe *s = spt_lock(&vm->spt, x->pg->vpn);
	uint64_t drop = LP_NO_SLOT;

	if (x->gone) { /* zeros now: its backing copy is stale */
		x->pg->flags &= (uint16_t)~PGF_WP;
		drop = page_dirty_locked(x->pg, true);
	}
	if (x->ok) {
		if (vm->vf)
			verify_left(vm, x->pg, (const void *)kva_of(fr, x->f));
		pthread_mutex_lock(&fr->lock);
		fr->tab[x->f].kva = KVA_FULL;
		pthread_mutex_unlock(&fr->lock);
	}
	page_handoff(vm, s, x->pg, x->ok ? PG_PARKED : PG_RESIDENT);
	if (x->ok && !x->victim)
		st_add(&vm->ev.st, C_REF_SWEEP, 1);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
}

static int by_address(const void *a, const void *b)
{
	const struct ev_item *x = *(const struct ev_item *const *)a;
	const struct ev_item *y = *(const struct ev_item *const *)b;

	return x->pg->vpn < y->pg->vpn ? -1 : x->pg->vpn > y->pg->vpn;
}

/* Put back the pages of a run that left for the runs area but could not
 * be copied into their kva slots: [at, at + n pages) from the area's
 * offset k on.  (Their addresses are empty: the vm is theirs.) */
static void run_back(struct lp_vm *vm, uintptr_t at, unsigned k, unsigned n)
{
	for (unsigned m = 0; m < n; m++) {
		uintptr_t from = vm->ev.runs + ((uintptr_t)(k + m) << LP_PAGE_SHIFT);
		if (prim_uffd_move(vm->uffd, at + ((uintptr_t)m << LP_PAGE_SHIFT), from, LP_PG))
			vm_error(vm, -EIO);
	}
}

/* Park the run d[0..n) (consecutive addresses): one UFFDIO_MOVE to the
 * runs area, a copy into each kva slot, the area emptied in one batch.
 * Returns how many pages from the first were parked; the page after them,
 * if any, is refused by the kernel (pinned, or shared with a child). */
static unsigned move_run(struct lp_vm *vm, struct ev_item **d, unsigned n)
{
	uintptr_t at = page_addr(d[0]->pg);
	size_t moved = 0;

	(void)prim_uffd_move_some(vm->uffd, vm->ev.runs, at, (size_t)n << LP_PAGE_SHIFT,
				  &moved);
	unsigned k = (unsigned)(moved >> LP_PAGE_SHIFT), ok = 0;
	for (; ok < k; ok++) {
		struct ev_item *x = d[ok];
		const void *pg = (const void *)(vm->ev.runs + ((uintptr_t)ok << LP_PAGE_SHIFT));
		if (copy_out(vm, kva_of(&vm->fr, x->f), pg))
			break;
		x->ok = x->moved = x->ran = true;
	}
	if (ok < k)
		run_back(vm, page_addr(d[ok]->pg), ok, k - ok);
	if (k)
		(void)madvise((void *)vm->ev.runs, (size_t)k << LP_PAGE_SHIFT, MADV_DONTNEED);
	return ok;
}

/*
 * Step 3a': a dirty page is parked by one UFFDIO_MOVE, but each move is a
 * TLB flush of its own (an interrupt of every CPU the program runs on).
 * Runs of dirty pages at consecutive addresses (a sequential stream, a
 * clock sweeping a region) leave in one move each instead, to the runs
 * area, and are copied from there into their kva slots: one flush per
 * run, and another for the area.  Write-protecting a run and copying it
 * cost the same, but a page pinned for I/O (an O_DIRECT read into a
 * buffer is a run of dirty pages) was then copied and dropped while the
 * kernel wrote into it: the move stops at such a page, which takes the
 * single path (move_or_copy(): kept in memory), and the run goes on
 * after it.
 */
static void move_runs(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct ev_item *d[EV_BATCH + EV_PARKS];
	unsigned nd = 0;

	if (!vm->ev.runs || !vm->have_move)
		return;
	for (unsigned i = 0; i < n; i++)
		if (it[i].park && (!it[i].wp || vm->ev.pinned))
			d[nd++] = &it[i];
	if (nd < 2)
		return;
	qsort(d, nd, sizeof(*d), by_address);
	for (unsigned i = 0; i < nd;) {
		unsigned j = i + 1;
		while (j < nd && d[j]->pg->vpn == d[j - 1]->pg->vpn + 1 &&
		       d[j]->r == d[i]->r)
			j++;
		/* (A refused page is left for the single path.) */
		while (j > i + 1)
			i += move_run(vm, d + i, j - i) + 1;
		i = j;
	}
}

/* Whether the mm has long-term pins, looked at every 100 ms. */
static void note_pins(struct lp_vm *vm)
{
	uint64_t now = prim_now_ns();

	if (now - vm->ev.pinned_ns < 100000000ull)
		return;
	vm->ev.pinned_ns = now;
	vm->ev.pinned = prim_pinned_kib(vm->parent ? vm->inj.pid : 0) > 0;
}

static void park_kid(struct lp_vm *vm, struct ev_item *it, unsigned n);

/* Step 3: park the mapped pages among the items. */
static void park(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct iovec *zap = vm->ev.iov;
	size_t nz = 0;

	if (vm->parent) {
		park_kid(vm, it, n);
		return;
	}
	note_pins(vm);
	empty_slots(vm, it, n);
	move_runs(vm, it, n);
	for (unsigned i = 0; i < n; i++) {
		if (!it[i].park || it[i].ran || !move_or_copy(vm, &it[i]))
			continue;
		zap[nz].iov_base = (void *)page_addr(it[i].pg);
		zap[nz++].iov_len = LP_PG;
	}
	if (nz && prim_zap(vm->pidfd, zap, nz)) {
		/* Some page could not be dropped (mlocked?): it is still the
		 * live copy, so it must not be taken for parked. */
		for (unsigned i = 0; i < n; i++) {
			struct ev_item *x = &it[i];
			if (x->ok && x->park && !x->moved &&
			    madvise((void *)page_addr(x->pg), LP_PG, MADV_DONTNEED))
				x->ok = false;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (it[i].park)
			park_done(vm, &it[i]);
}

/*
 * ---- A forked child's pages ----
 *
 * A child vm serves another process's address space: its pages cannot be
 * moved into our kva slots, and no call of ours unmaps a page of another
 * mm (process_madvise() takes only advice that frees nothing there).  So a
 * child's page leaves in three steps, the last one made by the child
 * itself:
 *   1. it leaves its address: a dirty page by UFFDIO_MOVE (the child's
 *      userfaultfd) into the park area, which the child inherited
 *      registered from the parent (kid_park: EV_BATCH + EV_PARKS pages,
 *      never touched by the parent); a clean page, or one the kernel will
 *      not move (shared with the parent since the fork), is write-protected
 *      and stays where it is;
 *   2. its content is copied into its kva slot (process_vm_readv): from
 *      here on it is parked, as a page of our own would be;
 *   3. one injected call (inject.h: a thread of the child made to call
 *      process_madvise(MADV_DONTNEED) on itself) drops the park area and
 *      the write-protected pages together.
 * A page that the kernel refuses to move and that is the child's alone is
 * pinned (I/O in flight into it): it stays, as ours do.  If the drop
 * fails (the child is stopped, traced by a debugger, gone), the
 * write-protected pages are still the live copies and stay resident; the
 * moved ones are parked all the same (their addresses are empty), and the
 * park area is dropped first next time (park_dirty).  Pages the drop
 * cannot take count as pinned: faults go on beyond the budget rather than
 * wait for what will not come (update_stuck()).
 */
#define KID_PARK_LEN ((size_t)(EV_BATCH + EV_PARKS) << LP_PAGE_SHIFT)
#define KID_WAIT_MS 100 /* for a thread of the child to stop */
#define KID_LOOK_MS 250 /* a child that maps memory: its mappings read */
#define KID_LOST_MS 200 /* out of reach this long: as if for good */

void evict_kids_prepare(struct lp_vm *vm)
{
	if (!vm->have_move || inject_scratch_new(&vm->kid_scratch))
		return;
	void *p = mmap(NULL, KID_PARK_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED) {
		(void)madvise(p, KID_PARK_LEN, MADV_NOHUGEPAGE);
		if (!prim_uffd_register(vm->uffd, (uintptr_t)p, KID_PARK_LEN,
					UFFDIO_REGISTER_MODE_MISSING)) {
			vm->kid_park = (uintptr_t)p;
			return;
		}
		munmap(p, KID_PARK_LEN);
	}
	inject_scratch_free(&vm->kid_scratch);
}

void evict_kids_release(struct lp_vm *vm)
{
	if (!vm->kid_park)
		return;
	prim_uffd_area_free(vm->uffd, vm->kid_park, KID_PARK_LEN);
	vm->kid_park = 0;
	inject_scratch_free(&vm->kid_scratch);
}

/* Whether the child can be reached: its process named (by the host, just
 * after the fork), held by a pidfd, its pagemap open. */
static bool kid_ready(struct lp_vm *vm)
{
	if (vm->inj.refused)
		return false;
	if (!vm->inj.pid) {
		pid_t pid = __atomic_load_n(&vm->pid, __ATOMIC_ACQUIRE);
		if (pid <= 0 || inject_attach_pid(&vm->inj, pid))
			return false;
	}
	/* Its exit wakes us (kid_gone()). */
	if (!vm->ev.kid_polled) {
		vm->ev.kid_poll.fd = vm->inj.pidfd;
		vm->ev.kid_polled = io_submit_poll(&vm->ev.io, &vm->ev.kid_poll) == 0;
	}
	if (inject_learn_rseq(&vm->inj, KID_WAIT_MS))
		return false;
	if (vm->pagemap_fd < 0) {
		char path[48];
		snprintf(path, sizeof path, "/proc/%d/pagemap", vm->inj.pid);
		vm->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
		/* (The pidfd names the process: the pid is not reused yet
		 * while it is still there.) */
		if (vm->pagemap_fd < 0 || syscall(SYS_pidfd_send_signal, vm->inj.pidfd, 0, NULL, 0)) {
			vm->inj.refused = true;
			return false;
		}
	}
	return true;
}

/* Whether the child may still be reached: neither refused nor gone, nor
 * out of reach for longer than KID_LOST_MS (its pid not named yet, no stop
 * in time: faults would wait for ever behind a drop that never comes). */
static bool kid_reachable(struct lp_vm *vm)
{
	return !vm->inj.refused && !atomic_load(&vm->dead) &&
	       (!vm->ev.kid_miss_ns || prim_now_ns() - vm->ev.kid_miss_ns < KID_LOST_MS * 1000000ull);
}

/* The child's pagemap entry for addr (0 when it cannot be read). */
static uint64_t kid_pagemap(struct lp_vm *vm, uintptr_t addr)
{
	uint64_t e = 0;

	if (pread(vm->pagemap_fd, &e, sizeof e, (off_t)(addr >> LP_PAGE_SHIFT) * 8) !=
	    (ssize_t)sizeof e)
		return 0;
	return e;
}

/* Whether the child has a page at addr: mapped, or on the kernel's swap
 * (a copy of it reads it back). */
static bool kid_mapped(struct lp_vm *vm, uintptr_t addr)
{
	return kid_pagemap(vm, addr) >> 62 != 0;
}

/* Copy the child's page at addr into kva: 0 or -errno. */
static int kid_read(struct lp_vm *vm, uintptr_t kva, uintptr_t addr)
{
	struct iovec l = { (void *)kva, LP_PG }, r = { (void *)addr, LP_PG };
	ssize_t n = process_vm_readv(vm->inj.pid, &l, 1, &r, 1, 0);

	return n == (ssize_t)LP_PG ? 0 : n < 0 ? -errno : -EIO;
}

/* Step 1 and 2 for x (as move_or_copy() for ours): parked (x->ok,
 * x->moved: its address is empty), or copied with its page
 * write-protected, to be dropped: then true. */
static bool kid_move_or_copy(struct lp_vm *vm, struct ev_item *x, unsigned *used)
{
	uintptr_t addr = page_addr(x->pg), kva = kva_of(&vm->fr, x->f);

	/* The kernel writes there as the dropping thread resumes (kid_zap()):
	 * it stays. */
	if (vm->inj.rseq && addr == (vm->inj.rseq & ~(uintptr_t)(LP_PG - 1)))
		return false;
	if ((!x->wp || vm->ev.pinned) && !vm->park_dirty) {
		uintptr_t slot = vm->kid_park + ((uintptr_t)*used << LP_PAGE_SHIFT);
		int rc = prim_uffd_move(vm->uffd, slot, addr, LP_PG);
		if (rc && kid_mapped(vm, slot) && !kid_mapped(vm, addr))
			rc = 0; /* (moved whatever was answered: move_out()) */
		if (rc == 0) {
			++*used;
			if (kid_read(vm, kva, slot) == 0) {
				x->ok = x->moved = true;
				return false;
			}
			/* The child is gone, or its memory unreadable: the
			 * page goes back. */
			if (prim_uffd_move(vm->uffd, addr, slot, LP_PG))
				vm_error(vm, -EIO);
			return false;
		}
		if (rc == -ENOENT)
			return park_gone(vm, x, kva);
		/* Refused and the child's alone: pinned for I/O (see
		 * move_or_copy()); shared with the parent: copied below. */
		if (rc == -EBUSY && (kid_pagemap(vm, addr) >> 56 & 1)) {
			x->pinned = true;
			return false;
		}
	}
	if (!kid_mapped(vm, addr))
		return park_gone(vm, x, kva);
	int rc = x->wp ? 0 : prim_uffd_wp(vm->uffd, addr, LP_PG, true);
	/* Not registered with us (neither moved nor protected): it cannot
	 * leave, and faults must not wait for it (as if pinned). */
	if (rc == -ENOENT)
		x->pinned = true;
	if (rc)
		return false;
	if (kid_read(vm, kva, addr) != 0)
		return false;
	x->ok = true;
	return true;
}

/*
 * Step 3: drop zap[0..nz) in the child, in calls of INJ_MAXV ranges.  0 or
 * the first error.  (The thread made to drop them may fault on its way:
 * kid_waiting() lets it.)
 */
static int kid_zap(struct lp_vm *vm, const struct iovec *zap, size_t nz)
{
	int rc = 0;

	for (size_t i = 0; i < nz && !rc; i += INJ_MAXV) {
		size_t k = nz - i < INJ_MAXV ? nz - i : INJ_MAXV;
		rc = inject_zap(&vm->inj, zap + i, k, KID_WAIT_MS, &vm->stopping);
	}
	/* (failures: vm->inj.failed) */
	/* Traced by someone else (a debugger): never, as if refused. */
	if (rc == -EPERM)
		vm->inj.refused = true;
	return rc;
}

/*
 * Before a round of a child vm: a park area that may hold pages is dropped
 * before pages move in, and a thread that did not stop in time for the
 * last drop (inject_zap()'s -EAGAIN: still attached, it stops soon after)
 * must be let go: it would wait in its stop for good.  The drop of the
 * area does both.  Returns whether the child can be reached.
 */
static bool kid_settle(struct lp_vm *vm)
{
	bool ready = kid_ready(vm);

	/* (Since when it is out of reach: kid_reachable().) */
	if (ready)
		vm->ev.kid_miss_ns = 0;
	else if (!vm->ev.kid_miss_ns)
		vm->ev.kid_miss_ns = prim_now_ns();

	if (ready && (vm->park_dirty || inject_pending(&vm->inj)) &&
	    kid_zap(vm, &(struct iovec){ (void *)vm->kid_park, KID_PARK_LEN }, 1) == 0)
		vm->park_dirty = false;
	return ready;
}

/* The child process exited: its frames leave the budget it shared at once
 * (the others may need them now; its vm is freed when the host next looks
 * for dead children). */
static void kid_gone(struct lp_vm *vm)
{
	atomic_store(&vm->dead, true);
	frames_share(&vm->fr, NULL, NULL);
}

/* park() for a child vm. */
static void park_kid(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct iovec *zap = vm->ev.iov;
	size_t nz = 0;
	unsigned used = 0;
	bool ready = kid_settle(vm);

	if (ready)
		note_pins(vm);
	empty_slots(vm, it, n);
	for (unsigned i = 0; i < n && ready; i++) {
		if (!it[i].park || !kid_move_or_copy(vm, &it[i], &used))
			continue;
		zap[nz].iov_base = (void *)page_addr(it[i].pg);
		zap[nz++].iov_len = LP_PG;
	}
	if (used) {
		zap[nz].iov_base = (void *)vm->kid_park;
		zap[nz++].iov_len = (size_t)used << LP_PAGE_SHIFT;
	}
	if (nz && kid_zap(vm, zap, nz)) {
		vm->park_dirty |= used > 0;
		/* A page still there is the live copy: not parked (and, when
		 * the child can no longer be reached, as if pinned). */
		for (unsigned i = 0; i < n; i++) {
			struct ev_item *x = &it[i];
			if (x->ok && x->park && !x->moved &&
			    kid_mapped(vm, page_addr(x->pg))) {
				x->ok = false;
				x->pinned = !kid_reachable(vm);
			}
		}
	}
	/* Nothing can leave a child that cannot be reached for good: as if
	 * pinned, faults go on beyond the budget (update_stuck()).  One that
	 * merely did not stop in time is tried again soon; its faults wait. */
	if (!ready && !kid_reachable(vm))
		for (unsigned i = 0; i < n; i++)
			it[i].pinned = it[i].park;
	for (unsigned i = 0; i < n; i++)
		if (it[i].park)
			park_done(vm, &it[i]);
}

/* Under the stripe lock: pg (PARKED in frame f) leaves memory. */
static void evicted_locked(struct lp_vm *vm, struct lp_page *pg, uint32_t f)
{
	page_set_state(pg, PG_EVICTED);
	frame_release(&vm->fr, f);
	pg->frame = LP_NO_FRAME;
}

/*
 * After an eviction step: a frame actually freed unsticks the frame table;
 * `stick` (nothing can leave memory: the swap is full, writes keep
 * failing) while handlers wait sticks it, and lets them go on beyond the
 * budget (frame_get()) rather than wait for what will not come.
 */
static void update_stuck(struct lp_vm *vm, bool freed, bool stick)
{
	struct lp_frames *fr = &vm->fr;

	pthread_mutex_lock(&fr->lock);
	if (freed)
		__atomic_store_n(&fr->stuck, false, __ATOMIC_RELAXED);
	else if (stick && fr->waiting) /* (atomic: evictor_main reads it) */
		__atomic_store_n(&fr->stuck, true, __ATOMIC_RELAXED);
	if (fr->stuck)
		pthread_cond_broadcast(&fr->cond);
	pthread_mutex_unlock(&fr->lock);
}

/* w goes out: handed to the ring by start (rc 0) or refused. */
static void submitted(struct lp_vm *vm, struct ev_write *w, int rc)
{
	if (rc) {
		w->req.res = -EBUSY;
		w->unsent = true;
	} else {
		vm->ev.pending += w->n;
	}
}

static void prepare(struct ev_write *w)
{
	w->req.owner = w;
	w->bytes = (uint32_t)(w->n > 1 ? w->n * LP_PG : w->req.iov[0].iov_len);
}

/* Write w to fd at off (a file region's page). */
static void submit(struct lp_vm *vm, struct ev_write *w, int fd, uint64_t off)
{
	w->req.fd = fd;
	w->req.off = off;
	prepare(w);
	submitted(vm, w, io_submit_write(&vm->ev.io, &w->req));
}

/* Write w to the chain's last store, at slots from slot0. */
static void submit_swap(struct lp_vm *vm, struct ev_write *w, uint64_t slot0)
{
	struct lp_store *last = chain_last(&vm->swap->chain);

	prepare(w);
	submitted(vm, w, last->ops->write(last, &vm->ev.io, &w->req, slot0));
}

static void write_done(struct lp_vm *vm, struct ev_write *w);

/* What step 4 gathers as it goes through the victims. */
struct ev_out {
	struct ev_item *swap_it[EV_BATCH]; /* dirty victims bound for swap */
	unsigned ns;
	unsigned progress;  /* victims that left or are on their way out */
	unsigned freed;     /* frames actually freed (clean drops) */
	bool full;          /* some victim found no swap slot */
};

/* A dirty victim whose write cannot be made (no memory for the request, no
 * swap slot) stays parked and dirty in memory; the policy gets it back. */
static void stay_parked(struct lp_vm *vm, struct lp_page *pg, uint32_t f)
{
	struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);

	page_io_end(vm, pg);
	pthread_cond_broadcast(&s->settle);
	spt_unlock(s);
	frame_idle(&vm->fr, f);
}

/* Under the stripe lock, x a PARKED victim: whether it can leave without a
 * write (its swap slot, file or zero copy is still valid, or it reads as
 * zero).  Otherwise *to says where it goes (pg->ops->swap_out: 0 swap,
 * 1 its file at *off, *len bytes). */
static bool victim_clean(struct lp_vm *vm, struct ev_item *x, const void *kva,
			 int *to, uint64_t *off, uint32_t *len, uint64_t *drop)
{
	struct lp_page *pg = x->pg;

	if (pg->flags & PGF_MAYBE) {
		/* Mapped writable on a prediction: written if its content no
		 * longer matches its slot's (by digest).  Then it is dirty
		 * (observed) and its old slot goes, after the lock. */
		uint64_t sum[2];
		prim_page_digest(kva, vm->sum_seed, sum);
		pg->flags &= (uint16_t)~PGF_MAYBE;
		if (sum[0] != pg->sum[0] || sum[1] != pg->sum[1])
			*drop = page_dirty_locked(pg, true);
	}
	if (pg->flags & PGF_DIRTY) {
		*to = pg->ops->swap_out(pg, x->r, off, len);
		if (*to == 1 && *len == 0)
			return true; /* wholly past end of file */
		if (*to == 0 && is_zero(kva)) {
			pg->backing = BK_ZERO;
			return true;
		}
		return false;
	}
	pg->flags &= (uint16_t)~PGF_WASDIRTY;
	return true;
}

/* Step 4b: a dirty file page goes back to its file (the page is PGF_IO). */
static void write_file(struct lp_vm *vm, struct ev_item *x, const void *kva,
		       uint64_t off, uint32_t len, struct ev_out *o)
{
	struct ev_write *w = calloc(1, sizeof(*w));

	if (!w) {
		stay_parked(vm, x->pg, x->f);
		return;
	}
	w->to_file = true;
	w->n = 1;
	w->f[0] = x->f;
	w->pg[0] = x->pg;
	w->req.iov[0] = (struct iovec){ (void *)kva, len };
	w->req.niov = 1;
	submit(vm, w, x->r->file->fd, off);
	o->progress++;
	if (w->unsent)
		write_done(vm, w);
}

/* Step 4a, one item: a clean victim is dropped at once; a dirty one is
 * marked PGF_IO and written to its file, or gathered for swap (4c). */
static void evict_one(struct lp_vm *vm, struct ev_item *x, struct ev_out *o)
{
	struct lp_page *pg = x->pg;
	const void *kva = (const void *)kva_of(&vm->fr, x->f);
	uint64_t off = 0, drop = LP_NO_SLOT;
	uint32_t len = LP_PG;
	int to = 0;

	if (!x->victim || (x->park && !x->ok)) {
		frame_idle(&vm->fr, x->f);
		return;
	}
	/* A parked page is not owned: an unmap may have removed it since
	 * and its struct been recycled for another page (as in claim_page()). */
	uint64_t vpn = __atomic_load_n(&pg->vpn, __ATOMIC_RELAXED);
	struct spt_stripe *s = spt_lock(&vm->spt, vpn);
	if (pg->vpn != vpn || pg->state != PG_PARKED || pg->frame != x->f) {
		spt_unlock(s); /* wanted again, or gone, meanwhile */
		frame_idle(&vm->fr, x->f);
		return;
	}
	if (victim_clean(vm, x, kva, &to, &off, &len, &drop)) {
		pg->flags &= (uint16_t)~(PGF_DIRTY | PGF_WP);
		evicted_locked(vm, pg, x->f);
		spt_unlock(s);
		if (drop != LP_NO_SLOT)
			swap_free(vm->swap, drop);
		frame_idle(&vm->fr, x->f);
		st_add(&vm->ev.st, C_EVICT, 1);
		st_add(&vm->ev.st, C_CLEAN_DROP, 1);
		o->progress++;
		o->freed++;
		return;
	}
	page_io_begin(vm, pg);
	spt_unlock(s);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
	if (to == 0)
		o->swap_it[o->ns++] = x;
	else
		write_file(vm, x, kva, off, len, o);
}

/* Encrypted swap: sealed copies of w's pages are written, never the pages
 * themselves.  0 or -ENOMEM. */
static int seal_run(struct lp_vm *vm, struct ev_write *w)
{
	w->sealed = aligned_alloc(LP_PG, (size_t)w->n << LP_PAGE_SHIFT);
	if (!w->sealed)
		return -ENOMEM;
	for (unsigned k = 0; k < w->n; k++) {
		unsigned char *out = w->sealed + ((size_t)k << LP_PAGE_SHIFT);
		swap_seal(vm->swap, w->slot0 + k, w->req.iov[k].iov_base, out);
		w->req.iov[k].iov_base = out;
	}
	return 0;
}

/* One write for the run of neighbouring slots that starts at gathered
 * victim i (at most LP_IO_MAXV pages), all stored in the compressed tier
 * or none (pooled[]): a run in the tier is done at once.  Returns where the
 * next run starts, or i when there was no memory for the request. */
static unsigned write_swap_run(struct lp_vm *vm, struct ev_out *o,
			       const uint64_t *slots, const bool *pooled,
			       unsigned i, unsigned got)
{
	struct ev_write *w = calloc(1, sizeof(*w));
	unsigned j = i;

	if (!w)
		return i;
	while (j < got && j - i < LP_IO_MAXV &&
	       (j == i || (swap_run_joins(vm->swap, slots[j - 1], slots[j]) &&
			   pooled[j] == pooled[i]))) {
		struct ev_item *x = o->swap_it[j];
		w->f[j - i] = x->f;
		w->pg[j - i] = x->pg;
		w->req.iov[j - i] = (struct iovec){
			(void *)kva_of(&vm->fr, x->f), LP_PG };
		j++;
	}
	w->n = j - i;
	w->req.niov = (int)w->n;
	w->slot0 = slots[i];
	if (pooled[i]) {
		w->pooled = true;
		w->unsent = true;
		w->req.res = 0;
		o->progress += w->n;
		write_done(vm, w);
		return j;
	}
	if (swap_encrypted(vm->swap) && seal_run(vm, w)) {
		free(w);
		return i;
	}
	submit_swap(vm, w, slots[i]);
	o->progress += w->n;
	if (w->unsent)
		write_done(vm, w);
	return j;
}

/* Step 4c: the gathered victims go to swap, in address order, so that
 * neighbours land in neighbouring slots and one read brings them back
 * (readahead).  Those without a slot (or memory) stay parked and dirty. */
static void write_swap(struct lp_vm *vm, struct ev_out *o)
{
	uint64_t slots[EV_BATCH];
	unsigned got, i = 0;
	int err = 0;

	if (!o->ns)
		return;
	qsort(o->swap_it, o->ns, sizeof(*o->swap_it), by_address);
	got = swap_alloc(vm->swap, o->ns, slots, &err);
	/* The memory stores (the compressed pool) take what they will; the
	 * rest goes to the last store (the file). */
	bool pooled[EV_BATCH];
	const void *pages[EV_BATCH];
	for (unsigned k = 0; k < got; k++)
		pages[k] = (const void *)kva_of(&vm->fr, o->swap_it[k]->f);
	/* (A forked child's pages go to the last store: the memory stores
	 * live in the budget of the vm that made them, its parent's.) */
	if (vm->parent)
		memset(pooled, 0, sizeof(pooled));
	else
		chain_offer(&vm->swap->chain, slots, pages, got, pooled);
	while (i < got) {
		unsigned next = write_swap_run(vm, o, slots, pooled, i, got);
		if (next == i) {
			/* No memory: the slots left go back. */
			for (unsigned k = i; k < got; k++)
				swap_free(vm->swap, slots[k]);
			got = i;
			break;
		}
		i = next;
	}
	for (i = got; i < o->ns; i++) {
		stay_parked(vm, o->swap_it[i]->pg, o->swap_it[i]->f);
		o->full = true;
	}
	if (o->full) {
		st_add(&vm->ev.st, C_SWAP_FULL, o->ns - got);
		vm_error(vm, err ? err : -ENOSPC);
	}
}

/* Step 4: evict the parked victims.  Returns how many left or are on their
 * way out (progress). */
static unsigned evict(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct ev_out o = { .ns = 0 };
	bool pinned = false;

	for (unsigned i = 0; i < n; i++) {
		evict_one(vm, &it[i], &o);
		pinned |= it[i].pinned;
	}
	write_swap(vm, &o);
	(void)io_flush(&vm->ev.io);
	/* Nothing can leave while the swap is full, or while the victims
	 * are pinned for I/O (a read into a buffer larger than the budget
	 * pins all of it until it ends): faults go on beyond the budget
	 * until a frame is free again. */
	update_stuck(vm, o.freed > 0,
		     !o.progress && (o.full || pinned) && !vm->ev.pending);
	return o.progress;
}

/* A write of w is done (res), for its page i: evicted when it succeeded
 * and the page is still parked; otherwise the page stays (dirty) and the
 * slot goes back.  Returns whether it was evicted. */
static bool write_done_page(struct lp_vm *vm, struct ev_write *w, unsigned i)
{
	struct lp_page *pg = w->pg[i];
	uint32_t f = w->f[i];
	uint64_t slot = w->to_file ? LP_NO_SLOT : w->slot0 + i;
	uint64_t drop = LP_NO_SLOT;
	bool evicted = false, wake;
	/* pg is the struct the write was made for, wherever mremap has moved
	 * it since (spt_move): its vpn is current. */
	struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);

	page_io_end(vm, pg);
	if (w->req.res == 0 && pg->state == PG_PARKED) {
		if (!w->to_file) {
			pg->slot = slot;
			pg->backing = BK_SLOT;
			swap_set_owner(vm->swap, slot, pg->vpn);
		} else {
			pg->backing = BK_FILE;
		}
		pg->flags &= (uint16_t)~(PGF_DIRTY | PGF_WP | PGF_MAYBE);
		evicted_locked(vm, pg, f);
		evicted = true;
	} else {
		/* Failed, or the page was wanted back meanwhile (it is dirty
		 * and mapped writable: the copy is stale). */
		drop = slot;
		if (pg->state == PG_RESIDENT)
			frame_kva_release(&vm->fr, f);
	}
	/* Not a hand-off (the state may stay): PGF_IO's end alone is news
	 * for lp_unmap()/lp_sync(), hence the broadcast either way. */
	wake = page_take_waiters(pg);
	/* Unlocked, pg may be unmapped and its struct reused. */
	uintptr_t addr = page_addr(pg);
	pthread_cond_broadcast(&s->settle);
	spt_unlock(s);
	if (drop != LP_NO_SLOT)
		swap_free(vm->swap, drop);
	if (wake)
		page_wake(vm, addr);
	frame_idle(&vm->fr, f);
	return evicted;
}

/* The statistics of a finished write w, res its result. */
static void write_count(struct lp_vm *vm, const struct ev_write *w, int res,
			unsigned evicted)
{
	struct lp_tstats *st = &vm->ev.st;

	if (res) {
		st_add(st, C_IO_ERR, 1);
		vm_error(vm, res);
	} else if (w->to_file) {
		st_add(st, C_FILE_WB, 1);
		st_add(st, C_FILE_WBB, w->bytes);
	} else if (!w->pooled) {
		st_add(st, C_SWAP_OUT, w->n);
		st_add(st, C_SWAP_WB, w->bytes);
	}
	st_add(st, C_EVICT, evicted);
}

/*
 * A failed write among good ones is retried at once, the handlers waiting
 * meanwhile: only writes that keep failing — EV_FAIL_STREAK in a row and
 * none good for EV_RETRY_MS — slow the rounds down and let faults go
 * beyond the budget.  (Giving up at the first failure let one write in
 * five failing fill memory beyond the budget with every page touched.)
 * Failures found before submission are reaped before the writes of the
 * same round that went through, hence the time as well as the count.
 */
static void note_failing(struct lp_evictor *ev, int res)
{
	uint64_t now = prim_now_ns();

	if (res) {
		ev->fail_streak++;
	} else {
		ev->fail_streak = 0;
		ev->last_ok_ns = now;
	}
	ev->failing = ev->fail_streak >= EV_FAIL_STREAK &&
		      now - ev->last_ok_ns >= EV_RETRY_MS * 1000000ull;
}

/*
 * The compressed tier past its limit writes its oldest pages on to their
 * slots (zpool.h, store.h), through the same ring as evictions: a run of contiguous
 * slots per write, up to EV_TIER_WB pages in flight.  The pool keeps each
 * page (and serves it) until its write ends; then forgets it, and frees
 * the slots freed meanwhile.  Afterwards the frames held for the pool
 * follow its size.
 */
#define EV_TIER_WB (2 * LP_IO_MAXV)

static int by_slot(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The pool's write of slots[0..n) ended with res: it forgets what is on
 * disk, and the slots freed meanwhile are freed now. */
static void tier_wb_settle(struct lp_vm *vm, struct lp_store *from,
			   const uint64_t *slots, unsigned n, int res)
{
	uint64_t dead[LP_IO_MAXV];
	unsigned nd = from->ops->flush_done(from, slots, n, res, dead);

	for (unsigned i = 0; i < nd; i++)
		swap_release(vm->swap, dead[i]);
}

static void tier_wb_end(struct lp_vm *vm, struct ev_write *w)
{
	struct lp_tstats *st = &vm->ev.st;

	tier_wb_settle(vm, w->from, w->slots, w->n, w->req.res);
	if (w->req.res) {
		st_add(st, C_IO_ERR, 1);
		vm_error(vm, w->req.res);
	} else {
		st_add(st, C_SWAP_OUT, w->n);
		st_add(st, C_SWAP_WB, (uint64_t)w->n << LP_PAGE_SHIFT);
	}
	if (!w->unsent)
		vm->ev.pending -= w->n;
	vm->ev.tier_wb -= w->n;
	note_failing(&vm->ev, w->req.res);
	free(w->pages);
	free(w->slots);
	free(w->sealed);
	free(w);
}

/* Write the n pages of slots[] (ascending), from pages, as runs. */
static void tier_wb_runs(struct lp_vm *vm, struct lp_store *from,
			 const uint64_t *slots, const unsigned *idx,
			 const unsigned char *pages, unsigned n)
{
	for (unsigned i = 0; i < n;) {
		unsigned j = i + 1;
		while (j < n && swap_run_joins(vm->swap, slots[j - 1], slots[j]))
			j++;
		struct ev_write *w = calloc(1, sizeof(*w));
		unsigned char *buf = aligned_alloc(LP_PG, (size_t)(j - i) << LP_PAGE_SHIFT);
		uint64_t *sl = malloc((j - i) * sizeof(*sl));
		if (!w || !buf || !sl) {
			/* Stays in the pool: written later. */
			tier_wb_settle(vm, from, slots + i, j - i, -ENOMEM);
			free(w);
			free(buf);
			free(sl);
			i = j;
			continue;
		}
		w->tier_wb = true;
		w->from = from;
		w->pages = buf;
		w->slots = sl;
		w->n = j - i;
		w->slot0 = slots[i];
		for (unsigned k = 0; k < w->n; k++) {
			unsigned char *to = buf + ((size_t)k << LP_PAGE_SHIFT);
			const unsigned char *pg = pages + ((size_t)idx[i + k] << LP_PAGE_SHIFT);
			if (swap_encrypted(vm->swap))
				swap_seal(vm->swap, slots[i + k], pg, to);
			else
				memcpy(to, pg, LP_PG);
			sl[k] = slots[i + k];
			w->req.iov[k] = (struct iovec){ to, LP_PG };
		}
		w->req.niov = (int)w->n;
		vm->ev.tier_wb += w->n;
		submit_swap(vm, w, slots[i]);
		if (w->unsent)
			tier_wb_end(vm, w);
		i = j;
	}
}

static void evictor_kick(void *ctx);

/* One memory store's part of tier_balance(): pass its oldest pages on to
 * the last store while it is over its limit. */
static void flush_store(struct lp_vm *vm, struct lp_store *s)
{
	while (vm->ev.tier_wb + LP_IO_MAXV <= EV_TIER_WB && !vm->ev.failing &&
	       s->ops->over(s)) {
		unsigned char *pages = aligned_alloc(LP_PG, (size_t)LP_IO_MAXV << LP_PAGE_SHIFT);
		uint64_t slots[LP_IO_MAXV], sorted[LP_IO_MAXV];
		unsigned idx[LP_IO_MAXV];
		if (!pages)
			break;
		unsigned n = s->ops->flush_take(s, LP_IO_MAXV, slots, pages);
		if (!n) {
			free(pages);
			break;
		}
		/* In slot order, each with its page's index. */
		uint64_t key[LP_IO_MAXV];
		for (unsigned k = 0; k < n; k++)
			key[k] = slots[k] << 8 | k;
		qsort(key, n, sizeof(*key), by_slot);
		for (unsigned k = 0; k < n; k++) {
			sorted[k] = key[k] >> 8;
			idx[k] = (unsigned)(key[k] & 0xff);
		}
		tier_wb_runs(vm, s, sorted, idx, pages, n);
		free(pages);
	}
}

static void tier_balance(struct lp_vm *vm)
{
	const struct lp_chain *c = &vm->swap->chain;
	uint32_t ext = atomic_load(&vm->ev.ext_hold);

	/* (The memory stores are sized by the vm that made them.) */
	if (vm->parent)
		return;

	if (!chain_has_memory(c)) {
		if (ext || vm->fr.nheld)
			vm->ev.hold_short = frames_hold(&vm->fr, ext, 0) < ext;
		return;
	}
	/* (Each memory store passes its pages on to the last store, and
	 * holds no more than its part of what a shared budget lends us.) */
	uint64_t lent = frames_lent(&vm->fr);
	if (lent > vm->fr.n - ext)
		lent = vm->fr.n - ext; /* (evict_set_hold()'s limit) */
	uint32_t pool = 0;
	for (unsigned i = 0; i + 1 < c->n; i++) {
		if (c->s[i]->ops->lend)
			c->s[i]->ops->lend(c->s[i], lent, vm->fr.n);
		flush_store(vm, c->s[i]);
		pool += c->s[i]->ops->pages(c->s[i]);
	}
	(void)io_flush(&vm->ev.io);
	vm->ev.hold_short = frames_hold(&vm->fr, pool + ext, pool) < pool + ext;
}

void evict_poke(struct lp_vm *vm)
{
	evictor_kick(vm);
}

void evict_set_hold(struct lp_vm *vm, uint32_t frames)
{
	if (!vm->fr.n)
		return;
	if (frames >= vm->fr.n)
		frames = vm->fr.n - 1;
	if (atomic_exchange(&vm->ev.ext_hold, frames) != frames)
		evictor_kick(vm);
}

void evict_share(struct lp_vm *vm, struct frame_share *share, _Atomic uint64_t *mine,
		 uint64_t floor)
{
	if (!vm->fr.n)
		return;
	frames_share_floor(&vm->fr, floor);
	frames_share(&vm->fr, share, mine);
}

bool evict_waiting(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->fr.lock);
	bool w = vm->fr.waiting > 0;
	pthread_mutex_unlock(&vm->fr.lock);
	return w;
}

void evict_nudge(struct lp_vm *vm)
{
	if (vm->fr.n && frames_excess(&vm->fr, false))
		evictor_kick(vm);
}

uint64_t evict_resident(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->fr.lock);
	uint64_t u = vm->fr.used;
	pthread_mutex_unlock(&vm->fr.lock);
	return u;
}

static void write_done(struct lp_vm *vm, struct ev_write *w)
{
	unsigned evicted = 0;

	if (w->tier_wb) {
		tier_wb_end(vm, w);
		return;
	}
	for (unsigned i = 0; i < w->n; i++)
		evicted += write_done_page(vm, w, i);
	write_count(vm, w, w->req.res, evicted);
	if (!w->unsent)
		vm->ev.pending -= w->n;
	note_failing(&vm->ev, w->req.res);
	/* Nothing left memory and handlers wait: let them go on beyond the
	 * budget rather than wait for a write that keeps failing, once no
	 * other write is in flight.  A write that may still succeed frees a
	 * frame soon: failures can complete ahead of it (refused at once,
	 * where it waits for the disk), and a streak of them is no reason to
	 * break the budget while it is out (a test's one write in two failing
	 * went 7 frames over a budget of 32 under load). */
	update_stuck(vm, evicted > 0, vm->ev.failing && !vm->ev.pending);
	free(w->sealed);
	free(w);
}

/* One round; returns whether there may be more to do at once. */
static bool round_once(struct lp_vm *vm)
{
	struct lp_evictor *ev = &vm->ev;
	struct ev_item *it = ev->items;

	ev->why = EVW_NONE;
	ev->waited = false;
	release_kva(vm);
	unsigned adopted = adopt_overflow(vm);
	if (vm->parent && inject_pending(&vm->inj))
		(void)kid_settle(vm);
	/* (A child's new memory: fork.c's hook.) */
	if (vm->adopt && atomic_load(&vm->maps_noted) && kid_ready(vm))
		vm->adopt(vm);
	ev->excess = frames_excess(&vm->fr, vm->parent != NULL);
	unsigned n = select_items(vm, it);
	unsigned progress = 0;
	if (n) {
		n = claim_items(vm, it, n);
		park(vm, it, n);
		progress = evict(vm, it, n);
		for (unsigned i = 0; i < n; i++)
			region_put(it[i].r);
	}
	tier_balance(vm);
	atomic_fetch_add_explicit(&ev->rounds, 1, memory_order_relaxed);
	if (ev->waited && !progress && !adopted && !ev->pending) {
		/* Faults wait and this round freed nothing: say why (the
		 * victims' pages were owned by a handler, lp_sync() or an
		 * unmap; the frames were all held outside the policy; or
		 * parking failed).  The loop retries soon. */
		if (ev->why == EVW_NONE)
			ev->why = n ? EVW_PARK_FAILED : EVW_NO_VICTIM;
		ev->last_why = ev->why;
		atomic_fetch_add_explicit(&ev->barren, 1, memory_order_release);
	}
	return progress + adopted > 0;
}

/* Whether fault handlers wait for a frame, none being free (a waiter woken
 * for a free frame that somebody else took kicks again). */
static bool frames_awaited(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->fr.lock);
	bool w = vm->fr.waiting > 0 && vm->fr.nfree == 0;
	pthread_mutex_unlock(&vm->fr.lock);
	return w;
}

static void *evictor_main(void *arg)
{
	struct lp_vm *vm = arg;
	struct lp_evictor *ev = &vm->ev;
	int timeout = -1;

	atomic_store(&ev->ktid, (pid_t)syscall(SYS_gettid));
	ev->poll.fd = ev->wake_fd;
	(void)io_submit_poll(&ev->io, &ev->poll);
	for (;;) {
		struct lp_io_req *done[64];
		int n = io_reap(&ev->io, done, 64, timeout);
		/* While frozen (a fork is being copied), pages hold still. */
		pthread_rwlock_rdlock(&vm->freeze_lock);
		for (int i = 0; i < n; i++) {
			if (done[i] == &ev->kid_poll) {
				kid_gone(vm);
			} else if (done[i] == &ev->poll) {
				uint64_t v;
				(void)!read(ev->wake_fd, &v, sizeof(v));
				atomic_store(&ev->kicked, false);
				(void)io_submit_poll(&ev->io, &ev->poll);
			} else {
				write_done(vm, done[i]->owner);
			}
		}
		if (atomic_load(&vm->stopping) && !ev->pending) {
			pthread_rwlock_unlock(&vm->freeze_lock);
			break;
		}
		bool more = round_once(vm);
		pthread_rwlock_unlock(&vm->freeze_lock);
		/* LP_CFG_SYNC_EVICT: faults wait until this round's
		 * victims are gone (only then: it takes the frame lock). */
		if (!ev->pending && (vm->flags & LP_CFG_SYNC_EVICT))
			frame_round_done(&vm->fr, ev->ticket);
		if (more && !ev->failing)
			timeout = 0;
		else if (more || ev->pending || ev->failing || ev->hold_short ||
			 __atomic_load_n(&vm->fr.stuck, __ATOMIC_RELAXED) ||
			 frame_overflow_pending(&vm->fr))
			timeout = EV_RETRY_MS;
		else if (vm->parent && (inject_pending(&vm->inj) ||
					(kid_reachable(vm) &&
					 atomic_load(&vm->maps_noted) != vm->maps_scanned)))
			timeout = 1; /* (kid_settle(), vm->adopt) */
		else if (frames_excess(&vm->fr, vm->parent != NULL))
			timeout = EV_RETRY_MS; /* (select_items()) */
		else if (frames_awaited(vm))
			/* Never sleep for good while a fault waits for a
			 * frame: what kept this round from freeing one (a page
			 * owned by a handler, lp_sync(), an unmap) lets go
			 * without a kick. */
			timeout = EV_WAIT_MS;
		else
			timeout = -1;
		/* A child that maps memory is looked at now and then. */
		if (vm->adopt && atomic_load(&vm->maps_noted) && kid_reachable(vm) &&
		    (timeout < 0 || timeout > KID_LOOK_MS))
			timeout = KID_LOOK_MS;
	}
	release_kva(vm);
	if (vm->parent) /* (ptrace: only this thread can let go) */
		inject_release(&vm->inj, KID_WAIT_MS);
	return NULL;
}

/* The frame table's wake callback (frames_set_wake()): make room, soon.
 * Cheap when already asked; never blocks. */
static void evictor_kick(void *ctx)
{
	struct lp_vm *vm = ctx;
	uint64_t one = 1;

	if (vm->ev.wake_fd < 0)
		return;
	if (!atomic_exchange(&vm->ev.kicked, true))
		(void)!write(vm->ev.wake_fd, &one, sizeof(one));
}

#define RUNS_LEN ((size_t)(EV_BATCH + EV_PARKS) << LP_PAGE_SHIFT)

/* The area runs of pages leave to (move_runs()): registered, as the kva
 * slots are (UFFDIO_MOVE moves only between registered ranges), and not
 * inherited.  Without it, every page leaves alone. */
static void runs_area(struct lp_vm *vm)
{
	if (prim_uffd_area(vm->uffd, RUNS_LEN, UFFDIO_REGISTER_MODE_MISSING, &vm->ev.runs))
		vm->ev.runs = 0;
	vm->ev.runs_len = vm->ev.runs ? RUNS_LEN : 0;
}

int evictor_start(struct lp_vm *vm)
{
	struct lp_evictor *ev = &vm->ev;
	sigset_t old;
	int rc;

	ev->wake_fd = -1;
	if (!vm->fr.n)
		return 0;
	ev->items = calloc(EV_BATCH + EV_PARKS, sizeof(*ev->items));
	size_t niov = 2 * (size_t)vm->fr.n + EV_BATCH + EV_PARKS;
	ev->iov = calloc(niov, sizeof(*ev->iov));
	if (!ev->items || !ev->iov)
		return -ENOMEM;
	ev->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ev->wake_fd < 0)
		return -errno;
	if (!vm->parent)
		runs_area(vm);
	frames_set_wake(&vm->fr, evictor_kick, vm);
	rc = io_setup(&ev->io, 256);
	if (rc)
		return rc;
	prim_block_signals(&old);
	rc = -pthread_create(&ev->tid, NULL, evictor_main, vm);
	prim_restore_signals(&old);
	ev->started = rc == 0;
	return rc;
}

void evictor_stop(struct lp_vm *vm)
{
	struct lp_evictor *ev = &vm->ev;
	uint64_t one = 1;

	if (ev->started) {
		(void)!write(ev->wake_fd, &one, sizeof(one));
		pthread_join(ev->tid, NULL);
		ev->started = false;
	}
	io_teardown(&ev->io);
	if (ev->wake_fd >= 0) {
		/* Handlers may still run: their kicks end here, before the
		 * descriptor goes. */
		frames_set_wake(&vm->fr, NULL, NULL);
		close(ev->wake_fd);
	}
	ev->wake_fd = -1;
	free(ev->items);
	free(ev->iov);
	ev->items = NULL;
	ev->iov = NULL;
	if (ev->runs) {
		prim_uffd_area_free(vm->uffd, ev->runs, RUNS_LEN);
		ev->runs = 0;
	}
}
