/* SPDX-License-Identifier: MIT */
/*
 * Backing reads (backing.c): where a page's content comes from when it is
 * not in memory: its swap slot, its file, or its region's initializer; and
 * the release of its swap slot.  The page types (anon.c, file.c, uninit.c)
 * stand on these.
 */
#ifndef LP_BACKING_H
#define LP_BACKING_H

#include "core.h"

/* A slot is read up to this many times before its page is given up. */
#define SWAP_READ_TRIES 3

/* Read one page of content from swap slot into buf (LP_PG bytes): 1 (it
 * came from the compressed tier), 0 (from the file), or -errno once
 * SWAP_READ_TRIES reads failed (-EIO: altered on disk; -EBADMSG: corrupt
 * in the tier). */
int swap_read_page(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		   void *buf, struct lp_tstats *st);
/* Slot's page from the compressed tier into buf: 1, 0 (not there: on
 * disk), or -EBADMSG (its block is corrupt: counted and recorded). */
int tier_read(struct lp_vm *vm, uint64_t slot, void *buf,
	      struct lp_tstats *st);
/* The same with `tries` reads at most. */
int swap_read_retry(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
		    void *buf, struct lp_tstats *st, int tries);
/* The content of slot is in buf (a read succeeded): count it, and unseal
 * it on an encrypted swap file.  0 or -EIO. */
int swap_read_done(struct lp_vm *vm, uint64_t slot, void *buf,
		   struct lp_tstats *st);
/* An asynchronous read of slot into buf ended with res (io_reap's: 0 when
 * all was read): as swap_read_page() would have ended, the failed read
 * counting as its first try (the others are made here, synchronously on
 * io). */
int swap_read_async_done(struct lp_vm *vm, struct lp_io *io, uint64_t slot,
			 void *buf, struct lp_tstats *st, int res);

/* Read the file bytes of page vpn of file region r; past EOF stays zero. */
int file_read_page(struct lp_handler *h, struct lp_region *r, uint64_t vpn,
		   void *buf);
/* Run the embedder's initializer of lazy region r for the page at addr. */
int lazy_fill(struct lp_region *r, uintptr_t addr, void *buf);

/* Read pg's content from where pg->backing says into buf (LP_PG bytes,
 * zeroed), and fill in *out but for out->ops (the caller's type).  -EIO
 * for BK_NONE (a dirty page never leaves memory without a copy).  Context:
 * lp_page_ops.swap_in's. */
int backing_read(struct lp_handler *h, const struct lp_page *pg,
		 struct lp_region *r, void *buf, struct lp_fill *out);
/* lp_page_ops.destroy of the types that may hold a swap slot: free it. */
void backing_free_slot(struct lp_vm *vm, struct lp_page *pg);

#endif /* LP_BACKING_H */
