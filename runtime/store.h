/* SPDX-License-Identifier: MIT */
/*
 * Backing stores: where the content of a page evicted to swap lives.
 *
 * A page that leaves memory with content gets a swap slot (swap.c numbers
 * the slots, counts their references across forks, records which page each
 * holds).  The content of a slot is held by one store of a chain, tried
 * first to last:
 *
 *   memory stores  hold what they take at once, in memory that counts in
 *                  the budget; each may refuse a page (it does not
 *                  compress, the store is full, it admits nothing now) and
 *                  must pass its oldest pages on to the last store when
 *                  it shrinks (flush_take / flush_done).  The compressed pool
 *                  (zpool.c).
 *   the last store holds every slot no store before it holds: it takes
 *                  runs of pages through asynchronous, batched, fallible
 *                  requests on the caller's io_uring (write / read, each
 *                  ending as a completion of the caller's ring;
 *                  finish_read then has the last word on each page read:
 *                  a sealed page is opened and checked there).  The swap
 *                  file (swap.c).
 *
 * Which store holds a slot: a memory store says (holds(), its own index of
 * what it took); a slot none of them holds is the last store's.  A store
 * of another kind (a remote one) goes last, in the file's place: its
 * requests complete on the caller's ring as the file's do (a store served by threads of its own posts them there with
 * IORING_OP_MSG_RING), so that the fault path and the evictor drive every
 * store from the one loop they already run.
 *
 * Encryption is the chain's caller's: pages are sealed before a request
 * takes them out of memory (evict.c), and opened by the store's finish_read.
 *
 * Thread safety: every operation may be called from any thread at once
 * (handlers, the evictor, forked vms sharing the swap area), but for
 * forget(), called under swap.lock.
 */
#ifndef LP_STORE_H
#define LP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "io.h"

struct lp_store;

/* What a store counts; 0 where it has no such thing. */
struct lp_store_stats {
	uint64_t stores;      /* pages taken */
	uint64_t rejects;     /* pages refused (do not compress enough) */
	uint64_t bypasses;    /* pages not admitted */
	uint64_t loads;       /* pages given back */
	uint64_t corrupt;     /* pages refused on the way back (corrupt) */
	uint64_t flushed;     /* pages passed on to the next store */
	uint64_t entries;     /* pages held now */
	uint64_t bytes;       /* bytes they take */
	uint64_t pages;       /* memory pages it holds now (in the budget) */
	uint64_t peak_pages;
	uint64_t limit_pages;
};

struct lp_store_ops {
	const char *name;

	/* Memory stores (NULL in the last store). */
	/* Whether the n pages of slots[] (a batch being evicted) are to be
	 * offered at all (put) or all sent on. */
	bool (*admit)(struct lp_store *s, const uint64_t *slots, unsigned n);
	/* Take page for slot, which it does not hold: 0, or -E2BIG (does
	 * not compress), -ENOSPC (full), -ENOMEM: the next store takes it. */
	int (*put)(struct lp_store *s, uint64_t slot, const void *page);
	/* Slot's page into buf: 1 (it held it: the page leaves the store),
	 * 0 (not held), -EBADMSG (held, but corrupt: the content is lost),
	 * -ENOMEM (could not look now: the entry stays). */
	int (*get)(struct lp_store *s, uint64_t slot, void *buf);
	bool (*holds)(struct lp_store *s, uint64_t slot);
	/* Memory pages held now (counted in the budget: frames are held out
	 * of use for them), and whether to pass pages on (flush_take). */
	uint32_t (*pages)(struct lp_store *s);
	bool (*over)(struct lp_store *s);
	/* A shared budget lends the vm lent of its budget's frames now
	 * (lent >= budget: all of it): hold a part to match. */
	void (*lend)(struct lp_store *s, uint64_t lent, uint64_t budget);
	/* Take up to n of the oldest pages to pass on: their slots, their
	 * content in pages (n pages).  Returns how many.  They stay held
	 * (and readable) until flush_done. */
	unsigned (*flush_take)(struct lp_store *s, unsigned n, uint64_t *slots,
			       void *pages);
	/* The next store took the taken pages (res 0), or did not (res < 0:
	 * they stay).  Slots freed meanwhile go to dead[] (count returned):
	 * the caller frees them (swap_release()). */
	unsigned (*flush_done)(struct lp_store *s, const uint64_t *slots,
			       unsigned n, int res, uint64_t *dead);

	/* The last store.  Requests on runs of consecutive slots from
	 * slot0, their pages at req->iov (at most LP_IO_MAXV); the store
	 * fills in req->fd and req->off. */
	/* Start writing (write) or reading (read) req's run on io: 0, and
	 * io_reap() on io returns req once it ended; or -errno (not
	 * started). */
	int (*write)(struct lp_store *s, struct lp_io *io, struct lp_io_req *req,
		     uint64_t slot0);
	int (*read)(struct lp_store *s, struct lp_io *io, struct lp_io_req *req,
		    uint64_t slot0);
	/* Read the run into iov now, continuing short reads: bytes read, or
	 * -errno. */
	long (*read_sync)(struct lp_store *s, struct lp_io *io, uint64_t slot0,
			  const struct iovec *iov, int n);
	/* Read the runs rd[0..n) at once and wait for them all (rd[i].off:
	 * the run's first slot, not an offset): each rd[i].res as
	 * io_read_many()'s. */
	void (*read_many)(struct lp_store *s, struct lp_io *io,
			  struct lp_io_read *rd, int n);
	/* A page of slot just read into page: 0, or -EIO when it was
	 * altered on the way (a sealed swap that fails to open). */
	int (*finish_read)(struct lp_store *s, uint64_t slot, void *page);

	/* Every store.  Slot's last reference went (under swap.lock): false
	 * when the slot may be reused at once, true when a write of it is
	 * under way (then its writer frees it when it ends). */
	bool (*forget)(struct lp_store *s, uint64_t slot);
	void (*stats)(struct lp_store *s, struct lp_store_stats *out);
	void (*destroy)(struct lp_store *s);
};

struct lp_store {
	const struct lp_store_ops *ops;
};

#define LP_STORES_MAX 4

/* The chain: s[0..n-1), memory stores, then s[n-1], the last. */
struct lp_chain {
	struct lp_store *s[LP_STORES_MAX];
	unsigned n;
};

/* Add s in front of the last store (a memory store) or, with an empty
 * chain, as the last.  0 or -ENOSPC. */
int chain_add(struct lp_chain *c, struct lp_store *s);
/* Put s in the last store's place (a remote store in the file's): the
 * store it replaces is returned, not destroyed. */
struct lp_store *chain_set_last(struct lp_chain *c, struct lp_store *s);
void chain_destroy(struct lp_chain *c);

static inline struct lp_store *chain_last(const struct lp_chain *c)
{
	return c->n ? c->s[c->n - 1] : NULL;
}

/* Whether the chain has a memory store (before the last). */
static inline bool chain_has_memory(const struct lp_chain *c)
{
	return c->n > 1;
}

/* Slot's page from a memory store into buf: 1 (from one: it left it), 0
 * (none holds it: the last store's), -EBADMSG (corrupt in one: lost). */
int chain_get(const struct lp_chain *c, uint64_t slot, void *buf);
/* Whether a memory store holds slot. */
bool chain_in_memory(const struct lp_chain *c, uint64_t slot);
/* Offer a batch being evicted, pages[i] for slots[i], to the memory
 * stores in turn (each admitting the batch or not): taken[i] says whether
 * one took page i; those not taken are the last store's. */
void chain_offer(const struct lp_chain *c, const uint64_t *slots,
		 const void *const *pages, unsigned n, bool *taken);
/* Slot's last reference went: as lp_store_ops.forget, over the chain. */
bool chain_forget(const struct lp_chain *c, uint64_t slot);

#endif /* LP_STORE_H */
