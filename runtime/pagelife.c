/* SPDX-License-Identifier: MIT */
/* The page life cycle: which state changes exist (see page.h), how an
 * owner lets go of a page, and how a page dies. */
#include "pagelife.h"
#include "verify.h"

#include <assert.h>
#include <errno.h>

#include "prim.h"

#define T(s) (1u << (s))

static const unsigned allowed[PG_NSTATES] = {
	[PG_UNINIT] = T(PG_LOADING) | T(PG_DEAD),
	[PG_EVICTED] = T(PG_LOADING) | T(PG_DEAD),
	[PG_LOADING] = T(PG_RESIDENT) | T(PG_EVICTED) | T(PG_UNINIT),
	[PG_RESIDENT] = T(PG_PARKING) | T(PG_SYNCING) | T(PG_DEAD),
	[PG_PARKING] = T(PG_PARKED) | T(PG_RESIDENT),
	[PG_PARKED] = T(PG_RESTORING) | T(PG_EVICTED) | T(PG_SYNCING) |
		      T(PG_DEAD),
	[PG_RESTORING] = T(PG_RESIDENT) | T(PG_PARKED),
	[PG_SYNCING] = T(PG_RESIDENT) | T(PG_PARKED),
	[PG_DEAD] = 0,
};

void page_set_state(struct lp_page *pg, enum lp_page_state to)
{
	assert(pg->state < PG_NSTATES && to < PG_NSTATES &&
	       (allowed[pg->state] & T(to)));
	if (pg->flags & PGF_VF_MASK)
		verify_note(pg, pg->state, to);
	pg->state = (uint8_t)to;
}

void page_remove(struct lp_vm *vm, struct lp_page *pg)
{
	page_drop_backing(vm, pg);
	page_set_state(pg, PG_DEAD);
	if (pg->flags & PGF_VF_MASK) /* its struct is about to be reused */
		verify_forget(pg);
	spt_remove(&vm->spt, pg);
}

bool page_take_waiters(struct lp_page *pg)
{
	if (!(pg->flags & PGF_WAITERS))
		return false;
	pg->flags &= (uint16_t)~PGF_WAITERS;
	return true;
}

void page_handoff(struct lp_vm *vm, struct spt_stripe *s, struct lp_page *pg,
		  enum lp_page_state to)
{
	uintptr_t addr = page_addr(pg);
	bool wake = page_take_waiters(pg);

	page_set_state(pg, to);
	if (wake)
		pthread_cond_broadcast(&s->settle);
	spt_unlock(s);
	if (wake)
		page_wake(vm, addr);
}

void page_wake(struct lp_vm *vm, uintptr_t addr)
{
	(void)prim_uffd_wake(vm->uffd, addr, LP_PG);
}

void page_io_begin(struct lp_vm *vm, struct lp_page *pg)
{
	pg->flags |= PGF_IO;
	atomic_fetch_add_explicit(&vm->io_pages, 1, memory_order_relaxed);
}

void page_io_end(struct lp_vm *vm, struct lp_page *pg)
{
	pg->flags &= (uint16_t)~PGF_IO;
	atomic_fetch_sub_explicit(&vm->io_pages, 1, memory_order_relaxed);
}

/*
 * Under the stripe lock: make pg dirty; returns a swap slot to free.
 * observed: a write was seen (a write fault), rather than predicted.
 * PGF_WASDIRTY remembers observed writes only, and a page mapped writable
 * on prediction forgets it: the next time it comes in write-protected and
 * shows whether it is still written.  So a page that turned read-only is
 * rewritten at most once.  (A prediction for a page with a swap slot keeps
 * the slot and a digest instead: predict_locked() in fault.c.)
 */
uint64_t page_dirty_locked(struct lp_page *pg, bool observed)
{
	uint64_t old = LP_NO_SLOT;

	pg->flags |= PGF_DIRTY;
	pg->flags &= (uint16_t)~PGF_MAYBE;
	if (observed)
		pg->flags |= PGF_WASDIRTY;
	else
		pg->flags &= (uint16_t)~PGF_WASDIRTY;
	if (pg->backing == BK_SLOT) {
		old = pg->slot;
		pg->slot = LP_NO_SLOT;
		pg->backing = BK_NONE;
	}
	return old;
}

/*
 * A forked child's moves (mremap) about to happen: vm->remaps, under
 * defer_lock (core.h).
 */
/* Under defer_lock: note n is gone (its table no longer held still). */
static void note_drop_locked(struct lp_vm *vm, unsigned n)
{
	if (vm->remaps[n].table) {
		atomic_fetch_sub(&vm->table_moves, 1);
		pthread_mutex_lock(&vm->maps_lock);
		vm->moving--;
		pthread_mutex_unlock(&vm->maps_lock);
	}
	vm->remaps[n] = vm->remaps[--vm->nremaps];
}

void vm_child_move_note(struct lp_vm *vm, uintptr_t old, size_t oldlen, size_t newlen,
		      bool table)
{
	pthread_mutex_lock(&vm->defer_lock);
	for (unsigned i = 0; i < vm->nremaps;) {
		if (vm->remaps[i].old == old || (i == 0 && vm->nremaps == 8))
			note_drop_locked(vm, i);
		else
			i++;
	}
	if (table) {
		atomic_fetch_add(&vm->table_moves, 1);
		pthread_mutex_lock(&vm->maps_lock);
		vm->moving++;
		pthread_mutex_unlock(&vm->maps_lock);
	}
	vm->remaps[vm->nremaps++] = (struct lp_remap_note){
		.old = old, .oldlen = oldlen, .newlen = newlen, .table = table
	};
	pthread_mutex_unlock(&vm->defer_lock);
}

void vm_child_move_grown(struct lp_vm *vm, uintptr_t old)
{
	pthread_mutex_lock(&vm->defer_lock);
	for (unsigned i = 0; i < vm->nremaps; i++)
		if (vm->remaps[i].old == old)
			vm->remaps[i].grown = true;
	pthread_mutex_unlock(&vm->defer_lock);
}

bool vm_child_moving(struct lp_vm *vm, uint64_t vpn)
{
	if (!atomic_load(&vm->table_moves))
		return false;
	uintptr_t a = (uintptr_t)vpn << LP_PAGE_SHIFT;
	bool in = false;
	pthread_mutex_lock(&vm->defer_lock);
	for (unsigned i = 0; i < vm->nremaps && !in; i++) {
		const struct lp_remap_note *m = &vm->remaps[i];
		size_t len = m->grown && m->newlen > m->oldlen ? m->newlen : m->oldlen;
		in = m->table && a - m->old < len;
	}
	pthread_mutex_unlock(&vm->defer_lock);
	return in;
}

bool vm_child_move_take(struct lp_vm *vm, uintptr_t old, struct lp_remap_note *out)
{
	bool found = false;

	pthread_mutex_lock(&vm->defer_lock);
	for (unsigned i = 0; i < vm->nremaps && !found; i++) {
		if (vm->remaps[i].old != old)
			continue;
		*out = vm->remaps[i];
		found = true;
		/* (A table note stays counted in vm->moving: the caller
		 * moves the table, then vm_child_move_done().) */
		if (out->table)
			atomic_fetch_sub(&vm->table_moves, 1);
		vm->remaps[i] = vm->remaps[--vm->nremaps];
	}
	pthread_mutex_unlock(&vm->defer_lock);
	return found;
}

void vm_child_move_done(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->maps_lock);
	vm->moving--;
	pthread_mutex_unlock(&vm->maps_lock);
}

void vm_child_move_drop(struct lp_vm *vm, uintptr_t old)
{
	pthread_mutex_lock(&vm->defer_lock);
	for (unsigned i = 0; i < vm->nremaps; i++) {
		if (vm->remaps[i].old == old && vm->remaps[i].table) {
			note_drop_locked(vm, i);
			break;
		}
	}
	pthread_mutex_unlock(&vm->defer_lock);
}

bool vm_child_moves_pending(struct lp_vm *vm)
{
	pthread_mutex_lock(&vm->maps_lock);
	bool any = vm->moving != 0;
	pthread_mutex_unlock(&vm->maps_lock);
	return any;
}
