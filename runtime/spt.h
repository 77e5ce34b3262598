/* SPDX-License-Identifier: MIT */
/*
 * Supplemental page table: a hash of struct lp_page keyed by page number,
 * one per lp_vm.  The table is split into SPT_STRIPES stripes; a page's
 * stripe lock protects the page's fields and its hash chain, and the
 * stripe's condition variable is where lp_unmap()/lp_sync() wait for an
 * owner to let go of a page.  Growing the table takes every stripe lock in
 * index order.  Pages that exist are the ones that were touched (or are
 * being touched): an address of a region without a page is UNINIT.
 */
#ifndef LP_SPT_H
#define LP_SPT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "page.h"

#define SPT_STRIPES 256u

struct spt_stripe {
	pthread_mutex_t lock;
	pthread_cond_t settle;
	struct lp_page *free;  /* recycled page structs of this stripe */
} __attribute__((aligned(64)));

struct spt_block;

struct lp_spt {
	struct spt_stripe stripe[SPT_STRIPES];
	pthread_mutex_t chunk_lock;
	struct spt_block *blocks; /* every page struct ever allocated */
	struct lp_page **bucket; /* nbucket chains; nbucket % SPT_STRIPES == 0 */
	size_t nbucket;          /* read under any stripe lock */
	atomic_size_t count;
	uint16_t vf_flags;        /* verify.h: set in every new page's flags */
};

int spt_init(struct lp_spt *spt);
/* Free every page struct; the table must be quiescent. */
void spt_fini(struct lp_spt *spt);

static inline uint64_t spt_hash(uint64_t vpn)
{
	vpn ^= vpn >> 29;
	vpn *= 0xbf58476d1ce4e5b9ull;
	vpn ^= vpn >> 32;
	return vpn;
}

static inline struct spt_stripe *spt_stripe_of(struct lp_spt *spt, uint64_t vpn)
{
	return &spt->stripe[spt_hash(vpn) & (SPT_STRIPES - 1)];
}

/* Lock and return the stripe of vpn. */
struct spt_stripe *spt_lock(struct lp_spt *spt, uint64_t vpn);
static inline void spt_unlock(struct spt_stripe *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* Under the stripe lock of vpn: the page, or NULL. */
struct lp_page *spt_find(struct lp_spt *spt, uint64_t vpn);
/* Under the stripe lock of vpn: a new UNINIT page for vpn (which must not
 * exist yet) of type ops (the caller's: the table knows no type), or NULL
 * when out of memory. */
struct lp_page *spt_insert(struct lp_spt *spt, uint64_t vpn,
			   const struct lp_page_ops *ops);
/* Under the stripe lock of pg, pg DEAD (its owner made it so, through
 * page_set_state()): unlink pg and recycle its struct. */
void spt_remove(struct lp_spt *spt, struct lp_page *pg);

/*
 * Give page struct pg (in the table) the page number `to`, which must have
 * no page: the struct itself moves, so that whoever holds a pointer to it
 * across the move — a swap write in flight (evict.c), the frame table —
 * finds it under its new number.  Takes the two stripe locks in turn,
 * never both; pg is in no chain for a moment, so the caller keeps everyone
 * else from looking it up meanwhile (mremap: the vm is frozen).  Returns 0,
 * or -EEXIST when `to` has a page (pg is not moved).
 */
int spt_move(struct lp_spt *spt, struct lp_page *pg, uint64_t to);

/* Grow the table when it is loaded above 2 pages per chain.  No lock held. */
void spt_maybe_grow(struct lp_spt *spt);

/*
 * The page numbers in [lo, hi) that have a page, in *out (malloc'd, caller
 * frees), their number in *n.  A snapshot: pages may come and go after.
 * Returns 0 or -ENOMEM.
 */
int spt_collect(struct lp_spt *spt, uint64_t lo, uint64_t hi, uint64_t **out,
		size_t *n);

#endif /* LP_SPT_H */
