/* SPDX-License-Identifier: MIT */
/*
 * File-backed pages (Pintos' file.c): read from their file on fault.  Pages
 * of a shared mapping are written back to the file when they leave memory
 * dirty; pages of a private mapping that were written go to swap instead.
 */
#include <errno.h>
#include <sys/stat.h>

#include "prim.h"
#include "core.h"
#include "backing.h"

static int file_swap_in(struct lp_handler *h, const struct lp_page *pg,
			struct lp_region *r, void *buf, struct lp_fill *out)
{
	out->ops = &lp_file_ops;
	out->backing = pg->backing;
	out->clean = true;
	switch (pg->backing) {
	case BK_SLOT:
		out->kind = LP_FAULT_SWAPIN;
		return swap_read_page(h->vm, &h->io, pg->slot, buf, &h->st);
	case BK_FILE:
		out->kind = LP_FAULT_FILE;
		return file_read_page(h, r, pg->vpn, buf);
	case BK_ZERO:
		out->kind = LP_FAULT_ZERO;
		return 0;
	default:
		return -EIO;
	}
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

static void file_destroy(struct lp_vm *vm, struct lp_page *pg)
{
	if (pg->slot != LP_NO_SLOT)
		swap_free(vm->swap, pg->slot);
	pg->slot = LP_NO_SLOT;
}

const struct lp_page_ops lp_file_ops = {
	.type = LP_PT_FILE,
	.swap_in = file_swap_in,
	.swap_out = file_swap_out,
	.destroy = file_destroy,
};
