/* SPDX-License-Identifier: MIT */
/*
 * Backing reads (backing.c): where a page's content comes from when it is
 * not in memory: its swap slot, its file, or its region's initializer.
 */
#ifndef LP_BACKING_H
#define LP_BACKING_H

#include "core.h"

/* Read one page of content from swap slot into buf (LP_PG bytes). */
int swap_read_page(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		   void *buf, struct lp_tstats *st);

/* Read the file bytes of page vpn of file region r; past EOF stays zero. */
int file_read_page(struct lp_handler *h, struct lp_region *r, uint64_t vpn,
		   void *buf);
/* Run the embedder's initializer of lazy region r for the page at addr. */
int lazy_fill(struct lp_region *r, uintptr_t addr, void *buf);

#endif /* LP_BACKING_H */
