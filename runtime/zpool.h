/* SPDX-License-Identifier: MIT */
/*
 * The compressed tier (zswap's design, in user space): evicted pages kept
 * compressed in memory, in front of the swap file, keyed by the swap slot
 * each was given.  A page's table entry says BK_SLOT either way; whether
 * the slot's content is in the pool or on disk is the pool's business, and
 * every read of a slot asks the pool first (backing.c, fault.c).  So fork's
 * shared slots, readahead, clean drops, digests and encryption of the disk
 * copy work across both tiers unchanged.
 *
 * Memory.  Compressed blocks live in size classes of 64 bytes, each class
 * in slabs of one to four pages (whichever wastes least) taken from an
 * arena of max_pages pages reserved at creation.  The pool's pages count
 * inside the budget: every vm that evicts into it holds as many frames out
 * of use as the pool has pages (frames_hold(), evict.c).  A page that does
 * not compress to 7/8 of a page goes to disk.
 *
 * Shrinking.  Past its limit the pool writes its oldest entries to their
 * slots on disk (zpool_wb_take(), zpool_wb_done(): the evictor does the
 * write) and forgets them.  An entry being written is still read from the
 * pool; its slot, if freed meanwhile, is freed by the writer when the write
 * ends (zpool_forget() says so), so that no late write lands on a slot
 * that was given to another page.
 *
 * Integrity.  Each entry keeps the XXH3 digest of the page it holds; a
 * block that does not decompress to that page is refused (-EBADMSG: the
 * faulting thread gets SIGBUS), never returned.
 *
 * Locks: zp->lock, taken after swap.lock (zpool_forget() is called under
 * it) and never held while taking another.
 */
#ifndef LP_ZPOOL_H
#define LP_ZPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "page.h"
#include "store.h"

enum zp_algo { ZP_NONE = 0, ZP_LZ4, ZP_ZSTD };

struct zpool;

struct zpool_stats {
	uint64_t stores;      /* pages stored */
	uint64_t rejects;     /* pages that did not compress enough */
	uint64_t bypasses;    /* pages not admitted (zpool_admit()) */
	uint64_t loads;       /* pages read back from the pool */
	uint64_t corrupt;     /* blocks refused (digest mismatch) */
	uint64_t writebacks;  /* entries written on to disk */
	uint64_t entries;     /* pages held now */
	uint64_t bytes;       /* compressed bytes held now */
	uint64_t pages;       /* memory pages held now */
	uint64_t peak_pages;
	uint64_t limit_pages;
};

/* Whether this build has algo (LP_HAVE_LZ4, LP_HAVE_ZSTD). */
bool zpool_algo_built(enum zp_algo algo);
/* A pool of at most max_pages pages (its arena), written back once it
 * holds more than limit_pages.  0, -ENOTSUP (algo not built), -EINVAL,
 * -ENOMEM. */
int zpool_new(struct zpool **out, enum zp_algo algo, uint32_t max_pages,
	      uint32_t limit_pages);
void zpool_free(struct zpool *zp);
/* Whether the n pages offered for slots[] (a batch being evicted) are to
 * be stored at all: false while the pages the pool stores are written on
 * unread (then they go to disk as they are, uncompressed).  Called before
 * zpool_store(), for every batch the pool is offered. */
bool zpool_admit(struct zpool *zp, const uint64_t *slots, unsigned n);
/* Store page (LP_PG bytes) for slot, which has no entry: 0, -E2BIG (does
 * not compress to 7/8 of a page), -ENOSPC (the pool is at its limit: the
 * page goes to disk), -ENOMEM. */
int zpool_store(struct zpool *zp, uint64_t slot, const void *page);
/* Slot's page into buf: 1 (from the pool), 0 (not held: read the disk),
 * -EBADMSG (the block is corrupt: the content is lost), -ENOMEM (no codec
 * context for this thread: the entry stays, try again). */
int zpool_load(struct zpool *zp, uint64_t slot, void *buf);
/* Whether slot's page is in the pool.  When it is not, the caller is
 * taken to read it from disk: a miss for the share's adaptation. */
bool zpool_holds(struct zpool *zp, uint64_t slot);
/* Under swap.lock: slot's last reference went.  false: forgotten (or never
 * held), the slot is free; true: its entry is being written back, and the
 * writer frees the slot (swap_release()) when the write ends. */
bool zpool_forget(struct zpool *zp, uint64_t slot);
/* Pages of memory the pool holds now, and whether it is to write its
 * oldest entries on (near its limit). */
uint32_t zpool_pages(struct zpool *zp);
bool zpool_over(struct zpool *zp);
/* A shared budget lends us lent of our budget's frames now: the pool
 * holds at most (lent / budget)^2 of its largest share (its limit is cut,
 * and zpool_over() says so), all of it again once lent >= budget.
 * Pools of many processes under one budget would otherwise each keep a
 * share of the whole, together more than the budget, and leave no frame
 * to run on. */
void zpool_lend(struct zpool *zp, uint64_t lent, uint64_t budget);
/* Take up to n of the oldest entries for writing back: their slots in
 * slots[], their pages decompressed into bufs (n pages).  Returns how many.
 * An entry whose block is corrupt is never written out (that would hide
 * the loss): it stays, and its reader gets SIGBUS. */
unsigned zpool_wb_take(struct zpool *zp, unsigned n, uint64_t *slots,
		       void *bufs);
/* The write of the taken entries ended with res (0: on disk).  Entries on
 * disk are forgotten; failed ones stay.  The slots freed meanwhile are
 * returned in dead[] (count returned): the caller frees them. */
unsigned zpool_wb_done(struct zpool *zp, const uint64_t *slots, unsigned n,
		       int res, uint64_t *dead);
void zpool_stats(struct zpool *zp, struct zpool_stats *out);
/* Tests (white-box): flip the last byte of slot's block.  With LZ4 that
 * is a literal: the block still decompresses, to other bytes, which only
 * the digest tells.  0 or -ENOENT. */
int zpool_corrupt(struct zpool *zp, uint64_t slot);
/* The pool as a memory store of a chain (store.h): the chain owns it from
 * then on (its destroy frees it). */
struct lp_store *zpool_as_store(struct zpool *zp);
/* The pool a store is, or NULL when it is another kind. */
struct zpool *zpool_of_store(struct lp_store *s);

#endif /* LP_ZPOOL_H */
