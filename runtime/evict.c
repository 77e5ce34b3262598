/* SPDX-License-Identifier: MIT */
/*
 * The evictor: one thread that keeps free frames between the low and high
 * watermarks, ahead of demand, so that a fault rarely waits.  The frame
 * table asks it for room through the wake callback evictor_start() installs
 * (frames_set_wake(): frame.c never calls up here).
 *
 * A round:
 *   1. release kva slots nobody needs any more (one batched MADV_DONTNEED);
 *   2. ask the policy for victims (and collect the pages whose reference
 *      bits it cleared: those are unmapped only, to observe their next use);
 *   3. park: move each page out of the process into its frame's kva slot.
 *      A clean page is write-protected already, so a copy is stable; a
 *      dirty one is moved atomically (UFFDIO_MOVE) or write-protected first.
 *      Copied pages are then dropped from the page table in one batch.
 *      From here on nobody can change the content behind our back: a thread
 *      touching the page faults and gets it back from kva, intact;
 *   4. evict the victims: a clean page (its swap slot, file or zero copy is
 *      still valid) is dropped without I/O; a dirty one is written from its
 *      kva slot — to contiguous swap slots, one write per run — or back to
 *      its file.  A fault on a page whose write is in flight restores it
 *      from kva at once: faults never wait for an eviction write.
 *
 * Writes that fail, or find the swap full, leave the page parked and dirty
 * in memory; the policy gets it back and the error goes to the statistics.
 * When nothing at all can be evicted and handlers wait, the frame table is
 * marked stuck: faults then proceed beyond the budget instead of waiting
 * forever (frame.c).  Only a frame actually freed (a clean drop, a write
 * that succeeded) unsticks it: a write merely submitted may fail too.
 * While writes keep failing (EV_FAIL_STREAK in a row, none good for
 * EV_RETRY_MS), rounds are retried every EV_RETRY_MS, not at once; a
 * failure among good writes is retried at once, within the budget.
 * Once frames come free again, pages that came in beyond the budget are
 * adopted into them (step 0), so that the budget holds again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evict.h"
#include "prim.h"
#include "core.h"
#include "pagelife.h"

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
	bool ok;
	struct lp_page *pg;
	struct lp_region *r;
};

struct ev_write {
	struct lp_io_req req;
	bool to_file;
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
	uint64_t vpn;

	while (frame_overflow_next(&vm->fr, &vpn) == 0) {
		struct spt_stripe *s = spt_lock(&vm->spt, vpn);
		struct lp_page *pg = spt_find(&vm->spt, vpn);
		bool later = false;
		if (pg && pg->frame == LP_NO_FRAME) {
			if (pg->state == PG_RESIDENT)
				n += frame_adopt(&vm->fr, pg) == 0;
			else if (pg->state == PG_SYNCING)
				later = true; /* lp_sync() owns it for now */
		}
		/* Otherwise unmapped (or moved by mremap) meanwhile. */
		if (later)
			frame_overflow_note(&vm->fr, vpn);
		spt_unlock(s);
		if (later)
			break;
	}
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
	if (fr->nfree < fr->low || fr->waiting) {
		uint32_t have = fr->nfree + ev->pending;
		want = have < fr->high ? fr->high - have : 0;
		if (!want && fr->waiting && !ev->pending)
			want = 1;
	}
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
	pthread_mutex_unlock(&fr->lock);
	return n;
}

/* Take ownership of the page of each item; drop the items we cannot use. */
static unsigned claim_items(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ev_item x = it[i];
		bool keep = false;
		if (x.pg) {
			uint64_t vpn = __atomic_load_n(&x.pg->vpn, __ATOMIC_RELAXED);
			struct spt_stripe *s = spt_lock(&vm->spt, vpn);
			/* The struct may have been recycled for another page
			 * of this stripe: it must still hold our frame. */
			if (x.pg->vpn == vpn && x.pg->frame == x.f) {
				if (x.pg->state == PG_RESIDENT) {
					page_set_state(x.pg, PG_PARKING);
					x.park = true;
					x.wp = (x.pg->flags & PGF_WP) != 0;
					keep = true;
				} else if (x.pg->state == PG_PARKED && x.victim) {
					keep = true;
				}
			}
			spt_unlock(s);
		}
		if (keep) {
			pthread_rwlock_rdlock(&vm->map_lock);
			x.r = regions_find(&vm->regions, page_addr(x.pg));
			if (x.r)
				region_get(x.r);
			pthread_rwlock_unlock(&vm->map_lock);
			if (!x.r && x.park) {
				/* Being unmapped: let lp_unmap() have it. */
				struct spt_stripe *s = spt_lock(&vm->spt, x.pg->vpn);
				bool w = false;
				page_set_state(x.pg, PG_RESIDENT);
				if (page_take_waiters(x.pg)) {
					pthread_cond_broadcast(&s->settle);
					w = true;
				}
				spt_unlock(s);
				if (w)
					page_wake(vm, page_addr(x.pg));
			}
			keep = x.r != NULL;
		}
		if (keep)
			it[m++] = x;
		else
			frame_idle(&vm->fr, x.f);
	}
	if (n && !m)
		vm->ev.why = EVW_OWNED;
	return m;
}

static int copy_out(struct lp_vm *vm, uintptr_t kva, uintptr_t addr)
{
	int rc = prim_uffd_copy(vm->uffd, kva, (const void *)addr, LP_PG, false);

	if (rc == -EEXIST) {
		/* A kva slot that was not released: release it now. */
		struct iovec iov = { (void *)kva, LP_PG };
		(void)prim_zap(vm->pidfd, &iov, 1);
		rc = prim_uffd_copy(vm->uffd, kva, (const void *)addr, LP_PG,
				    false);
	}
	return rc;
}

/* Step 3: park the mapped pages among the items. */
static void park(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct lp_frames *fr = &vm->fr;
	struct iovec *zap = vm->ev.iov;
	size_t nz = 0;

	/* Their kva slots must be empty before anything moves in. */
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
	nz = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ev_item *x = &it[i];
		if (!x->park)
			continue;
		uintptr_t addr = page_addr(x->pg), kva = kva_of(fr, x->f);
		int rc = -1;
		/* The protection the region was mapped with may have changed
		 * since (mprotect): never rely on it.  MOVE refuses what it
		 * cannot move atomically; write protection works on any page. */
		if (!x->wp && vm->have_move) {
			rc = prim_uffd_move(vm->uffd, kva, addr, LP_PG);
			if (rc == -EEXIST) {
				struct iovec iov = { (void *)kva, LP_PG };
				(void)prim_zap(vm->pidfd, &iov, 1);
				rc = prim_uffd_move(vm->uffd, kva, addr, LP_PG);
			}
			x->ok = x->moved = rc == 0;
			if (x->ok)
				continue;
		}
		/* Copy path: stop writers first, then copy; the page leaves
		 * in the batch below. */
		if (!x->wp && prim_uffd_wp(vm->uffd, addr, LP_PG, true) != 0)
			continue;
		if (copy_out(vm, kva, addr) != 0)
			continue;
		x->ok = true;
		zap[nz].iov_base = (void *)addr;
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

	for (unsigned i = 0; i < n; i++) {
		struct ev_item *x = &it[i];
		if (!x->park)
			continue;
		struct spt_stripe *s = spt_lock(&vm->spt, x->pg->vpn);
		bool wake = false;
		if (x->ok) {
			page_set_state(x->pg, PG_PARKED);
			if (vm->vf)
				verify_left(vm, x->pg, (const void *)kva_of(fr, x->f));
			pthread_mutex_lock(&fr->lock);
			fr->tab[x->f].kva = KVA_FULL;
			pthread_mutex_unlock(&fr->lock);
		} else {
			page_set_state(x->pg, PG_RESIDENT);
		}
		if (page_take_waiters(x->pg)) {
			pthread_cond_broadcast(&s->settle);
			wake = true;
		}
		spt_unlock(s);
		if (wake)
			page_wake(vm, page_addr(x->pg));
		if (x->ok && !x->victim)
			st_add(&vm->ev.st, C_REF_SWEEP, 1);
	}
}

/* Under the stripe lock: pg (PARKED in frame f) leaves memory. */
static void evicted_locked(struct lp_vm *vm, struct lp_page *pg, uint32_t f)
{
	page_set_state(pg, PG_EVICTED);
	frame_release(&vm->fr, f);
	pg->frame = LP_NO_FRAME;
}

static void submit(struct lp_vm *vm, struct ev_write *w, int fd, uint64_t off)
{
	w->req.fd = fd;
	w->req.off = off;
	w->req.owner = w;
	w->bytes = (uint32_t)(w->n > 1 ? w->n * LP_PG : w->req.iov[0].iov_len);
	if (io_submit_write(&vm->ev.io, &w->req)) {
		w->req.res = -EBUSY;
		w->unsent = true;
	} else {
		vm->ev.pending += w->n;
	}
}

static void write_done(struct lp_vm *vm, struct ev_write *w);

static int by_address(const void *a, const void *b)
{
	const struct ev_item *x = *(const struct ev_item *const *)a;
	const struct ev_item *y = *(const struct ev_item *const *)b;

	return x->pg->vpn < y->pg->vpn ? -1 : x->pg->vpn > y->pg->vpn;
}

/* Step 4: evict the parked victims.  Returns how many left or are on their
 * way out (progress). */
static unsigned evict(struct lp_vm *vm, struct ev_item *it, unsigned n)
{
	struct lp_frames *fr = &vm->fr;
	struct ev_item *swap_it[EV_BATCH];
	uint64_t slots[EV_BATCH];
	unsigned ns = 0, progress = 0, freed = 0;
	bool full = false;

	for (unsigned i = 0; i < n; i++) {
		struct ev_item *x = &it[i];
		if (!x->victim || (x->park && !x->ok)) {
			frame_idle(&vm->fr, x->f);
			continue;
		}
		struct lp_page *pg = x->pg;
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		if (pg->state != PG_PARKED || pg->frame != x->f) {
			spt_unlock(s); /* wanted again meanwhile */
			frame_idle(&vm->fr, x->f);
			continue;
		}
		const void *kva = (const void *)kva_of(fr, x->f);
		uint64_t off = 0;
		uint32_t len = LP_PG;
		int to = 0;
		bool clean = !(pg->flags & PGF_DIRTY);
		if (!clean) {
			to = pg->ops->swap_out(pg, x->r, &off, &len);
			if (to == 1 && len == 0) {
				clean = true; /* wholly past end of file */
			} else if (to == 0 && is_zero(kva)) {
				pg->backing = BK_ZERO;
				clean = true;
			}
		} else {
			pg->flags &= (uint16_t)~PGF_WASDIRTY;
		}
		if (clean) {
			pg->flags &= (uint16_t)~(PGF_DIRTY | PGF_WP);
			evicted_locked(vm, pg, x->f);
			spt_unlock(s);
			frame_idle(&vm->fr, x->f);
			st_add(&vm->ev.st, C_EVICT, 1);
			st_add(&vm->ev.st, C_CLEAN_DROP, 1);
			progress++;
			freed++;
			continue;
		}
		page_io_begin(vm, pg);
		spt_unlock(s);
		if (to == 0) {
			swap_it[ns++] = x;
			continue;
		}
		/* Back to its file. */
		struct ev_write *w = calloc(1, sizeof(*w));
		if (!w) {
			/* No memory for the request: stay parked and dirty. */
			s = spt_lock(&vm->spt, pg->vpn);
			page_io_end(vm, pg);
			pthread_cond_broadcast(&s->settle);
			spt_unlock(s);
			frame_idle(&vm->fr, x->f);
			continue;
		}
		w->to_file = true;
		w->n = 1;
		w->f[0] = x->f;
		w->pg[0] = pg;
		w->req.iov[0] = (struct iovec){ (void *)kva, len };
		w->req.niov = 1;
		submit(vm, w, x->r->file->fd, off);
		progress++;
		if (w->unsent)
			write_done(vm, w);
	}

	/* In address order, neighbours land in neighbouring slots: one read
	 * brings them back (readahead). */
	qsort(swap_it, ns, sizeof(*swap_it), by_address);
	int err = 0;
	unsigned got = ns ? swap_alloc(vm->swap, ns, slots, &err) : 0;
	for (unsigned i = 0; i < got;) {
		struct ev_write *w = calloc(1, sizeof(*w));
		unsigned j = i;
		while (w && j < got && j - i < LP_IO_MAXV &&
		       (j == i || slots[j] == slots[j - 1] + 1)) {
			w->f[j - i] = swap_it[j]->f;
			w->pg[j - i] = swap_it[j]->pg;
			w->req.iov[j - i] = (struct iovec){
				(void *)kva_of(fr, swap_it[j]->f), LP_PG };
			j++;
		}
		if (!w) {
			for (; i < got; i++)
				swap_free(vm->swap, slots[i]);
			got = i;
			break;
		}
		w->n = j - i;
		w->req.niov = (int)w->n;
		w->slot0 = slots[i];
		if (swap_encrypted(vm->swap)) {
			/* Sealed copies are written, never the pages. */
			w->sealed = aligned_alloc(LP_PG, (size_t)w->n << LP_PAGE_SHIFT);
			if (!w->sealed) {
				for (unsigned k = i; k < got; k++)
					swap_free(vm->swap, slots[k]);
				free(w);
				got = i;
				break;
			}
			for (unsigned k = 0; k < w->n; k++) {
				unsigned char *out = w->sealed + ((size_t)k << LP_PAGE_SHIFT);
				swap_seal(vm->swap, w->slot0 + k, w->req.iov[k].iov_base, out);
				w->req.iov[k].iov_base = out;
			}
		}
		submit(vm, w, vm->swap->fd, swap_off(slots[i]));
		progress += w->n;
		if (w->unsent)
			write_done(vm, w);
		i = j;
	}
	for (unsigned i = got; i < ns; i++) {
		/* No slot: the page stays in memory, parked and dirty. */
		struct lp_page *pg = swap_it[i]->pg;
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		page_io_end(vm, pg);
		pthread_cond_broadcast(&s->settle);
		spt_unlock(s);
		frame_idle(&vm->fr, swap_it[i]->f);
		full = true;
	}
	if (full) {
		st_add(&vm->ev.st, C_SWAP_FULL, ns - got);
		vm_error(vm, err ? err : -ENOSPC);
	}
	(void)io_flush(&vm->ev.io);

	pthread_mutex_lock(&fr->lock);
	if (freed)
		fr->stuck = false;
	else if (!progress && full && fr->waiting && !vm->ev.pending)
		fr->stuck = true;
	if (fr->stuck)
		pthread_cond_broadcast(&fr->cond);
	pthread_mutex_unlock(&fr->lock);
	return progress;
}

static void write_done(struct lp_vm *vm, struct ev_write *w)
{
	int res = w->req.res;
	unsigned evicted = 0;

	for (unsigned i = 0; i < w->n; i++) {
		struct lp_page *pg = w->pg[i];
		uint32_t f = w->f[i];
		uint64_t slot = w->to_file ? LP_NO_SLOT : w->slot0 + i;
		uint64_t drop = LP_NO_SLOT;
		bool wake = false;
		/* pg is the struct the write was made for, wherever mremap
		 * has moved it since (spt_move): its vpn is current. */
		struct spt_stripe *s = spt_lock(&vm->spt, pg->vpn);
		page_io_end(vm, pg);
		if (res == 0 && pg->state == PG_PARKED) {
			if (!w->to_file) {
				pg->slot = slot;
				pg->backing = BK_SLOT;
				swap_set_owner(vm->swap, slot, pg->vpn);
			} else {
				pg->backing = BK_FILE;
			}
			pg->flags &= (uint16_t)~(PGF_DIRTY | PGF_WP);
			evicted_locked(vm, pg, f);
			evicted++;
		} else {
			/* Failed, or the page was wanted back meanwhile (it
			 * is dirty and mapped writable: the copy is stale). */
			drop = slot;
			if (pg->state == PG_RESIDENT)
				frame_kva_release(&vm->fr, f);
		}
		if (page_take_waiters(pg))
			wake = true;
		/* Unlocked, pg may be unmapped and its struct reused. */
		uintptr_t addr = page_addr(pg);
		pthread_cond_broadcast(&s->settle);
		spt_unlock(s);
		if (drop != LP_NO_SLOT)
			swap_free(vm->swap, drop);
		if (wake)
			page_wake(vm, addr);
		frame_idle(&vm->fr, f);
	}
	struct lp_tstats *st = &vm->ev.st;
	if (res) {
		st_add(st, C_IO_ERR, 1);
		vm_error(vm, res);
	} else if (w->to_file) {
		st_add(st, C_FILE_WB, 1);
		st_add(st, C_FILE_WBB, w->bytes);
	} else {
		st_add(st, C_SWAP_OUT, w->n);
		st_add(st, C_SWAP_WB, w->bytes);
	}
	st_add(st, C_EVICT, evicted);
	if (!w->unsent)
		vm->ev.pending -= w->n;
	/* A failed write among good ones is retried at once, the handlers
	 * waiting meanwhile: only writes that keep failing — EV_FAIL_STREAK
	 * in a row and none good for EV_RETRY_MS — slow the rounds down and
	 * let faults go beyond the budget.  (Giving up at the first failure
	 * let one write in five failing fill memory beyond the budget with
	 * every page touched.)  Failures found before submission are reaped
	 * before the writes of the same round that went through, hence the
	 * time as well as the count. */
	uint64_t now = prim_now_ns();
	if (res) {
		vm->ev.fail_streak++;
	} else {
		vm->ev.fail_streak = 0;
		vm->ev.last_ok_ns = now;
	}
	vm->ev.failing = vm->ev.fail_streak >= EV_FAIL_STREAK &&
			 now - vm->ev.last_ok_ns >= EV_RETRY_MS * 1000000ull;
	pthread_mutex_lock(&vm->fr.lock);
	if (evicted) {
		vm->fr.stuck = false;
	} else if (vm->ev.failing && vm->fr.waiting) {
		/* Nothing left memory and handlers wait: let them go on
		 * beyond the budget rather than wait for a write that keeps
		 * failing. */
		vm->fr.stuck = true;
		pthread_cond_broadcast(&vm->fr.cond);
	}
	pthread_mutex_unlock(&vm->fr.lock);
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
	unsigned n = select_items(vm, it);
	unsigned progress = 0;
	if (n) {
		n = claim_items(vm, it, n);
		park(vm, it, n);
		progress = evict(vm, it, n);
		for (unsigned i = 0; i < n; i++)
			region_put(it[i].r);
	}
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
			if (done[i] == &ev->poll) {
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
		if (more && !ev->failing)
			timeout = 0;
		else if (more || ev->pending || ev->failing ||
			 __atomic_load_n(&vm->fr.stuck, __ATOMIC_RELAXED) ||
			 frame_overflow_pending(&vm->fr))
			timeout = EV_RETRY_MS;
		else if (frames_awaited(vm))
			/* Never sleep for good while a fault waits for a
			 * frame: what kept this round from freeing one (a page
			 * owned by a handler, lp_sync(), an unmap) lets go
			 * without a kick. */
			timeout = EV_WAIT_MS;
		else
			timeout = -1;
	}
	release_kva(vm);
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
}
