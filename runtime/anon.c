/* SPDX-License-Identifier: MIT */
/*
 * Anonymous pages (Pintos' anon.c): zero-filled or initialised once, then
 * backed by a swap slot whenever they leave memory dirty.
 */
#include <errno.h>

#include "prim.h"
#include "core.h"
#include "backing.h"

static int anon_swap_in(struct lp_handler *h, const struct lp_page *pg,
			struct lp_region *r, void *buf, struct lp_fill *out)
{
	out->ops = &lp_anon_ops;
	out->backing = pg->backing;
	out->clean = true;
	switch (pg->backing) {
	case BK_SLOT:
		out->kind = LP_FAULT_SWAPIN;
		return swap_read_page(h->vm, &h->io, pg->slot, buf, &h->st);
	case BK_REFILL:
		out->kind = LP_FAULT_INIT;
		return lazy_fill(r, page_addr(pg), buf);
	case BK_ZERO:
		out->kind = LP_FAULT_ZERO;
		return 0;
	default:
		return -EIO; /* a dirty page never leaves memory without a copy */
	}
}

static int anon_swap_out(const struct lp_page *pg, struct lp_region *r,
			 uint64_t *off, uint32_t *len)
{
	(void)pg;
	(void)r;
	(void)off;
	(void)len;
	return 0;
}

static void anon_destroy(struct lp_vm *vm, struct lp_page *pg)
{
	if (pg->slot != LP_NO_SLOT)
		swap_free(vm->swap, pg->slot);
	pg->slot = LP_NO_SLOT;
}

const struct lp_page_ops lp_anon_ops = {
	.type = LP_PT_ANON,
	.swap_in = anon_swap_in,
	.swap_out = anon_swap_out,
	.destroy = anon_destroy,
};
