/* SPDX-License-Identifier: MIT */
/*
 * Uninit pages (Pintos' uninit.c): a page that was never filled.  Its first
 * fault runs the region's initializer (zero fill, file read, or the
 * embedder's fill callback) and the page transmutes into an anonymous or a
 * file page (anon.c, file.c), the types it stands on.  It is never in
 * memory and holds nothing outside it: no swap_out, no destroy.
 */
#include <errno.h>

#include "prim.h"
#include "backing.h"

static int uninit_swap_in(struct lp_handler *h, const struct lp_page *pg,
			  struct lp_region *r, void *buf, struct lp_fill *out)
{
	int rc = 0;

	switch (r->kind) {
	case RK_ANON:
		out->kind = LP_FAULT_ZERO;
		out->ops = &lp_anon_ops;
		out->backing = BK_ZERO;
		out->clean = true;
		return 0;
	case RK_FILE:
		rc = file_read_page(h, r, pg->vpn, buf);
		out->kind = LP_FAULT_FILE;
		out->ops = &lp_file_ops;
		out->backing = BK_FILE;
		out->clean = true;
		return rc;
	case RK_LAZY:
		rc = lazy_fill(r, page_addr(pg), buf);
		out->kind = LP_FAULT_INIT;
		out->ops = &lp_anon_ops;
		/* A deterministic initializer is a backing copy of its own. */
		out->clean = (r->init.flags & LP_INIT_REFILL) != 0;
		out->backing = out->clean ? BK_REFILL : BK_NONE;
		return rc;
	}
	return -EINVAL;
}

const struct lp_page_ops lp_uninit_ops = {
	.type = LP_PT_UNINIT,
	.swap_in = uninit_swap_in,
};
