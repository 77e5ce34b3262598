/* SPDX-License-Identifier: MIT */
/*
 * LIRS, Low Inter-reference Recency Set (S. Jiang and X. Zhang, "LIRS: an
 * efficient low inter-reference recency set replacement policy to improve
 * buffer cache performance", SIGMETRICS 2002).
 *
 * Frames are LIR (short reuse distance) or resident HIR; Lhirs = 1% of the
 * frames (at least one) hold HIR pages, the rest LIR pages.  Stack S orders
 * by recency the LIR pages, and the HIR pages, resident or not, more recent
 * than the least recent LIR page, which is always at S's bottom ("stack
 * pruning" removes HIR entries from there).  List Q holds the resident HIR
 * pages; its front is the victim, which stays in S as a non-resident entry
 * when it was there.  An access to a HIR page found in S (resident or not)
 * shows a reuse distance shorter than the oldest LIR page's: the page turns
 * LIR and the bottom LIR page turns HIR, to Q's end.  Any other missed page
 * is HIR, but for those that fill the LIR set before the first eviction.
 *
 * Non-resident entries are bounded, in a fixed pool (ghost.c) of twice the
 * frames plus one (the page being brought in is still non-resident while
 * a frame is freed for it); when the pool is full, the entry that became
 * non-resident first is dropped from S.  The paper's S is unbounded; with
 * at most three times as many distinct pages as frames, the two agree.
 * Otherwise exact in the simulator.
 *
 * The sizes are those of the frames in use when the host evicts: all of
 * them in the simulator, fewer in the runtime, which keeps a reserve of
 * free frames; the LIR set is capped at that count less Lhirs, or Q would
 * stay empty and LIRS would be LRU.  For the same reason only the first
 * pages fill the LIR set: the runtime evicts in bursts, larger than Q at
 * times, and the LIR pages evicted then are not replaced by new pages but
 * by HIR pages that show a short reuse distance.
 *
 * In the runtime, recency is that of the uses reported: the older halves of
 * the LIR list (S's bottom end) and of Q are armed (window.h), so that a LIR
 * page in use is seen before it turns HIR, and a HIR page in use before it
 * is evicted.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "ghost.h"
#include "window.h"

struct lirs {
	struct wlinks w;
	struct wlist lir;     /* LIR frames, in S order; head: S's bottom */
	struct wlist q;       /* resident HIR frames; head: the front */
	struct flinks sl;     /* S over nodes: frame f, ghost slot g = n + g */
	struct flist s;       /* head: bottom */
	struct ghost g;       /* non-resident HIR pages in S */
	struct flist gq;      /* over g.l, in the order they became so */
	uint64_t *key;
	uint32_t n, lhirs;
	uint32_t lir_cap;     /* LIR frames at most: the frames in use less Lhirs */
	uint32_t in_use;      /* most frames in use at an eviction */
	struct lp_policy_host *h;
};

static void lirs_fini(void *state)
{
	struct lirs *p = state;

	ghost_frames_fini(&p->g, &p->w, p->key);
	flinks_fini(&p->sl);
}

static int lirs_init(void *state, uint32_t n, struct lp_policy_host *h,
		     uint64_t seed)
{
	struct lirs *p = state;

	(void)seed;
	/* The 3n + 1 nodes of S are numbered below FL_NIL. */
	if (n > (UINT32_MAX - 1) / 3)
		return -EINVAL;
	p->n = n;
	p->lhirs = n / 100 ? n / 100 : 1;
	p->lir_cap = n > p->lhirs ? n - p->lhirs : 0;
	p->h = h;
	wl_init(&p->lir, 1);
	wl_init(&p->q, 2);
	flist_init(&p->s, 1);
	flist_init(&p->gq, 1);
	if (flinks_init(&p->sl, 3 * n + 1))
		return -ENOMEM;
	return ghost_frames_init(&p->g, 2 * (uint64_t)n + 1, &p->w, &p->key, n);
}

static bool in_s(const struct lirs *p, uint32_t x)
{
	return flist_has(&p->sl, &p->s, x);
}

static void forget_ghost(struct lirs *p, uint32_t g)
{
	flist_del(&p->sl, &p->s, p->n + g);
	flist_del(&p->g.l, &p->gq, g);
	ghost_del(&p->g, g);
}

/* Until a LIR page is at S's bottom. */
static void prune(struct lirs *p)
{
	uint32_t x;

	while ((x = p->s.head) != FL_NIL) {
		if (x < p->n) {
			if (wl_has(&p->w, &p->lir, x))
				return;
			flist_del(&p->sl, &p->s, x);
		} else {
			forget_ghost(p, x - p->n);
		}
	}
}

/* The LIR page at S's bottom turns HIR, to Q's end. */
static void demote(struct lirs *p)
{
	uint32_t b = wl_head(&p->lir);

	wl_del(&p->w, &p->lir, b);
	wl_push(&p->w, &p->q, b);
	prune(p);
}

static void make_lir(struct lirs *p, uint32_t f)
{
	wl_push(&p->w, &p->lir, f);
	if (wl_count(&p->lir) > p->lir_cap)
		demote(p);
}

static void lirs_insert(void *state, uint32_t f, uint64_t key)
{
	struct lirs *p = state;
	uint32_t g = ghost_find(&p->g, key);

	p->key[f] = key;
	if (g != FL_NIL)
		forget_ghost(p, g);
	flist_push(&p->sl, &p->s, f);
	if (g != FL_NIL || (!p->in_use && wl_count(&p->lir) < p->lir_cap))
		make_lir(p, f);
	else
		wl_push(&p->w, &p->q, f);
}

static void lirs_hit(void *state, uint32_t f)
{
	struct lirs *p = state;

	if (wl_has(&p->w, &p->lir, f)) {
		bool bottom = p->s.head == f;
		flist_move_tail(&p->sl, &p->s, f);
		wl_move_tail(&p->w, &p->lir, f);
		if (bottom)
			prune(p);
	} else if (in_s(p, f)) {
		flist_move_tail(&p->sl, &p->s, f);
		wl_del(&p->w, &p->q, f);
		make_lir(p, f);
	} else {
		flist_push(&p->sl, &p->s, f);
		wl_move_tail(&p->w, &p->q, f);
	}
}

static void lirs_remove(void *state, uint32_t f)
{
	struct lirs *p = state;

	if (in_s(p, f))
		flist_del(&p->sl, &p->s, f);
	if (wl_has(&p->w, &p->lir, f))
		wl_del(&p->w, &p->lir, f);
	else if (wl_has(&p->w, &p->q, f))
		wl_del(&p->w, &p->q, f);
	prune(p);
}

static int lirs_evict(void *state, uint32_t *out)
{
	struct lirs *p = state;
	uint32_t f, used = wl_count(&p->lir) + wl_count(&p->q);

	if (used > p->in_use) {
		p->in_use = used;
		p->lir_cap = used > p->lhirs ? used - p->lhirs : 0;
	}
	while (wl_count(&p->lir) > p->lir_cap)
		demote(p);
	if (!wl_count(&p->q)) {
		/* Q ran dry: a burst of evictions, or frames freed without
		 * eviction. */
		if (!wl_count(&p->lir))
			return -ENOENT;
		demote(p);
	}
	f = wl_pop(&p->w, &p->q);
	if (in_s(p, f)) {
		/* Stays in S, non-resident, in f's place. */
		if (ghost_full(&p->g))
			forget_ghost(p, p->gq.head);
		uint32_t g = ghost_add(&p->g, p->key[f]);
		flist_insert_before(&p->sl, &p->s, f, p->n + g);
		flist_del(&p->sl, &p->s, f);
		flist_push(&p->g.l, &p->gq, g);
	}
	wl_fill(&p->w, &p->q, p->h);
	wl_fill(&p->w, &p->lir, p->h);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_lirs = {
	.name = "lirs",
	.summary = "LIRS: low inter-reference recency set (SIGMETRICS'02; "
		   "runtime: observed uses, older halves armed)",
	.uses_ref = true,
	.uses_hits = true,
	.size = sizeof(struct lirs),
	.init = lirs_init,
	.fini = lirs_fini,
	.insert = lirs_insert,
	.hit = lirs_hit,
	.remove = lirs_remove,
	.evict = lirs_evict,
};
