/* SPDX-License-Identifier: MIT */
/*
 * File-backed pages (Pintos' file.c): read from their file on fault.  Pages
 * of a shared mapping are written back to the file when they leave memory
 * dirty; pages of a private mapping that were written go to swap instead.
 * Their content is read through backing.c.
 */
#include <errno.h>
#include <sys/stat.h>

#include "prim.h"
#include "core.h"
#include "backing.h"

static int file_swap_in(struct lp_handler *h, const struct lp_page *pg,
			struct lp_region *r, void *buf, struct lp_fill *out)
{
	if (pg->backing == BK_REFILL)
		return -EIO; /* a file page has no initializer */
	out->ops = &lp_file_ops;
	return backing_read(h, pg, r, buf, out);
}

/* Size of r's file, refreshed when the page may lie at its end. */
static uint64_t file_size(struct lp_file *f, uint64_t need)
{
	uint64_t size = atomic_load_explicit(&f->size, memory_order_relaxed);
	struct stat st;

	if (size < need && fstat(f->fd, &st) == 0) {
		size = (uint64_t)st.st_size;
		atomic_store_explicit(&f->size, size, memory_order_relaxed);
	}
	return size;
}

static int file_swap_out(const struct lp_page *pg, struct lp_region *r,
			 uint64_t *off, uint32_t *len)
{
	if (!r->shared)
		return 0; /* private: written pages are anonymous now */
	uint64_t at = region_file_off(r, pg->vpn);
	uint64_t size = file_size(r->file, at + LP_PG);
	*off = at;
	*len = size <= at ? 0 : (uint32_t)(size - at < LP_PG ? size - at : LP_PG);
	return 1;
}

const struct lp_page_ops lp_file_ops = {
	.type = LP_PT_FILE,
	.swap_in = file_swap_in,
	.swap_out = file_swap_out,
	.destroy = backing_free_slot,
};
