/* SPDX-License-Identifier: MIT */
/*
 * Anonymous pages (Pintos' anon.c): zero-filled or initialised once, then
 * backed by a swap slot whenever they leave memory dirty.  Their content
 * is read through backing.c.
 */
#include <errno.h>

#include "core.h"
#include "backing.h"

static int anon_swap_in(struct lp_handler *h, const struct lp_page *pg,
			struct lp_region *r, void *buf, struct lp_fill *out)
{
	if (pg->backing == BK_FILE)
		return -EIO; /* an anonymous page has no file */
	out->ops = &lp_anon_ops;
	return backing_read(h, pg, r, buf, out);
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

const struct lp_page_ops lp_anon_ops = {
	.type = LP_PT_ANON,
	.swap_in = anon_swap_in,
	.swap_out = anon_swap_out,
	.destroy = backing_free_slot,
};
