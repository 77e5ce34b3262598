/* SPDX-License-Identifier: MIT */
/*
 * Page life-cycle helpers shared by the fault path, the evictor and the API
 * (pagelife.c): state changes, the hand-off from an owner to the threads
 * waiting for it, a page's death, and the accounting of writes in flight.
 */
#ifndef LP_PAGELIFE_H
#define LP_PAGELIFE_H

#include "core.h"

/* Change pg's state along the life cycle of page.h (recorded in the page's
 * verify history).  A change the life cycle does not have is a bug of the
 * runtime: it asserts.  Caller holds the stripe lock. */
void page_set_state(struct lp_page *pg, enum lp_page_state to);

/*
 * The owner of pg lets go of it: under pg's stripe lock s, set state `to`,
 * collect the waiters, unlock s, and wake them (lp_unmap()/lp_sync() through
 * the stripe's condition variable, faulting threads with UFFDIO_WAKE at the
 * page's address, taken before the unlock: pg may be freed once it is let
 * go).
 */
void page_handoff(struct lp_vm *vm, struct spt_stripe *s, struct lp_page *pg,
		  enum lp_page_state to);

/* Under pg's stripe lock, pg not owned and its frame released: pg is
 * unmapped.  Release what it holds outside memory, make it DEAD and take it
 * out of the table (its struct is recycled: let go of pg). */
void page_remove(struct lp_vm *vm, struct lp_page *pg);

/* Under the stripe lock: whether threads wait on pg (the flag is cleared:
 * the caller wakes them, faulting threads with page_wake() once the lock is
 * dropped).  page_handoff() does all of it. */
bool page_take_waiters(struct lp_page *pg);
/* Wake faulting threads blocked on the page at addr. */
void page_wake(struct lp_vm *vm, uintptr_t addr);
/* Under pg's stripe lock: the evictor starts / ends writing pg's kva slot
 * (PGF_IO).  vm->io_pages counts the calls, not the flags: each begin has
 * exactly one end, on the same struct (the frame is busy meanwhile, so the
 * page cannot be handed to a second write before the first ends). */
void page_io_begin(struct lp_vm *vm, struct lp_page *pg);
void page_io_end(struct lp_vm *vm, struct lp_page *pg);
/* Under the stripe lock: make pg dirty (observed: a write was seen, not
 * predicted); returns the swap slot its old copy held, to free once the
 * lock is dropped, or LP_NO_SLOT. */
uint64_t page_dirty_locked(struct lp_page *pg, bool observed);

/*
 * A forked child's mremap about to happen (vm->remaps, core.h): noted by
 * its prep (mmap.c) before the kernel acts, taken at its event (fault.c).
 * A note with table (the host holds the mover) keeps the range's pages
 * from being victims (vm_child_moving()) and new memory from being adopted
 * (vm->moving) until it is taken and its table moved (then
 * vm_child_move_done()), or dropped: the mover did not move
 * (vm_child_move_drop()).  At most 8 notes: the oldest goes.
 */
void vm_child_move_note(struct lp_vm *vm, uintptr_t old, size_t oldlen, size_t newlen,
			bool table);
/* The last region of the range noted for old was grown in place. */
void vm_child_move_grown(struct lp_vm *vm, uintptr_t old);
bool vm_child_moving(struct lp_vm *vm, uint64_t vpn);
bool vm_child_move_take(struct lp_vm *vm, uintptr_t old, struct lp_remap_note *out);
void vm_child_move_done(struct lp_vm *vm);
void vm_child_move_drop(struct lp_vm *vm, uintptr_t old);
/* Whether a move's note or hand-over is still under way (vm->moving). */
bool vm_child_moves_pending(struct lp_vm *vm);

#endif /* LP_PAGELIFE_H */
