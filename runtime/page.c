/* SPDX-License-Identifier: MIT */
/* The page life cycle: which state changes exist (see page.h). */
#include "page.h"

#include <errno.h>

#include "prim.h"
#include "vm.h"

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

static const char *const names[PG_NSTATES] = {
	"uninit", "evicted", "loading", "resident", "parking",
	"parked", "restoring", "syncing", "dead",
};

int page_set_state(struct lp_page *pg, enum lp_page_state to)
{
	if (pg->state >= PG_NSTATES || to >= PG_NSTATES ||
	    !(allowed[pg->state] & T(to)))
		return -EINVAL;
	if (pg->flags & PGF_VF_MASK)
		verify_note(pg, pg->state, to);
	pg->state = (uint8_t)to;
	return 0;
}

const char *page_state_name(enum lp_page_state s)
{
	return s < PG_NSTATES ? names[s] : "?";
}

bool page_take_waiters(struct lp_page *pg)
{
	if (!(pg->flags & PGF_WAITERS))
		return false;
	pg->flags &= (uint16_t)~PGF_WAITERS;
	return true;
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
