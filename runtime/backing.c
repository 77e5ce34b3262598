/* SPDX-License-Identifier: MIT */
/*
 * Backing reads: a page's content from its swap slot, its file, or its
 * region's initializer.  Context: a thread that owns the page (page.h).
 * And the release of a page's swap slot when the page goes.
 */
#include "backing.h"

#include <errno.h>

#include "prim.h"
#include "store.h"

/* One read of a slot went wrong (n: what it gave): count and record it. */
static void swap_read_failed(struct lp_vm *vm, long n, struct lp_tstats *st)
{
	st_add(st, C_IO_ERR, 1);
	vm_error(vm, n < 0 ? (int)n : -EIO);
}

int swap_read_retry(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		    void *buf, struct lp_tstats *st, int tries)
{
	struct lp_store *last = chain_last(&vm->swap->chain);
	struct iovec iov = { buf, LP_PG };
	long n = -EIO;

	/* A failed read is retried: the copy there is the only one. */
	for (int i = 0; i < tries; i++) {
		n = last->ops->read_sync(last, io, slot, &iov, 1);
		if (n == (long)LP_PG)
			break;
		swap_read_failed(vm, n, st);
	}
	if (n != (long)LP_PG)
		return n < 0 ? (int)n : -EIO;
	return swap_read_done(vm, slot, buf, st);
}

int swap_read_page(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		   void *buf, struct lp_tstats *st)
{
	int rc = tier_read(vm, slot, buf, st);

	if (rc)
		return rc;
	return swap_read_retry(vm, io, slot, buf, st, SWAP_READ_TRIES);
}

int tier_read(struct lp_vm *vm, uint64_t slot, void *buf,
	      struct lp_tstats *st)
{
	if (!chain_has_memory(&vm->swap->chain))
		return 0;
	int rc = chain_get(&vm->swap->chain, slot, buf);
	if (rc < 0) {
		/* Corrupt in memory: the content is lost, say so loudly. */
		st_add(st, C_IO_ERR, 1);
		vm_error(vm, rc);
	}
	return rc;
}

int swap_read_done(struct lp_vm *vm, uint64_t slot, void *buf,
		   struct lp_tstats *st)
{
	struct lp_store *last = chain_last(&vm->swap->chain);

	st_add(st, C_SWAP_RB, LP_PG);
	if (last->ops->finish_read(last, slot, buf)) {
		/* Altered on the way: the content is lost, say so loudly. */
		st_add(st, C_IO_ERR, 1);
		vm_error(vm, -EBADMSG);
		return -EIO;
	}
	return 0;
}

int swap_read_async_done(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
			 void *buf, struct lp_tstats *st, int res)
{
	if (res == 0)
		return swap_read_done(vm, slot, buf, st);
	swap_read_failed(vm, res, st);
	return swap_read_retry(vm, io, slot, buf, st, SWAP_READ_TRIES - 1);
}

int file_read_page(struct lp_handler *h, struct lp_region *r, uint64_t vpn,
		   void *buf)
{
	struct iovec iov = { buf, LP_PG };
	long n = io_preadv(&h->io, r->file->fd, &iov, 1, region_file_off(r, vpn));

	if (n < 0)
		return (int)n;
	st_add(&h->st, C_FILE_RB, (uint64_t)n);
	return 0;
}

int lazy_fill(struct lp_region *r, uintptr_t addr, void *buf)
{
	int rc = r->init.fill((void *)addr, buf, r->init.aux);

	return rc > 0 ? 0 : rc;
}

int backing_read(struct lp_handler *h, const struct lp_page *pg,
		 struct lp_region *r, void *buf, struct lp_fill *out)
{
	out->backing = pg->backing;
	out->clean = true;
	switch (pg->backing) {
	case BK_SLOT: {
		int rc = swap_read_page(h->vm, &h->io, pg->slot, buf, &h->st);
		/* From the tier, the page leaves it (its slot is freed): a
		 * copy kept there would hold the tier's memory for a page
		 * that is resident, and compressing it again costs less
		 * than the room. */
		out->kind = rc == 1 ? LP_FAULT_TIER : LP_FAULT_SWAPIN;
		out->clean = rc != 1;
		return rc == 1 ? 0 : rc;
	}
	case BK_FILE:
		out->kind = LP_FAULT_FILE;
		return file_read_page(h, r, pg->vpn, buf);
	case BK_REFILL:
		out->kind = LP_FAULT_INIT;
		return lazy_fill(r, page_addr(pg), buf);
	case BK_ZERO:
		out->kind = LP_FAULT_ZERO;
		return 0;
	default:
		/* BK_NONE: a dirty page never leaves memory without a copy. */
		return -EIO;
	}
}

void backing_free_slot(struct lp_vm *vm, struct lp_page *pg)
{
	if (pg->slot != LP_NO_SLOT)
		swap_free(vm->swap, pg->slot);
	pg->slot = LP_NO_SLOT;
}
