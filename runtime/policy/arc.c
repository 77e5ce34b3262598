/* SPDX-License-Identifier: MIT */
/*
 * ARC, Adaptive Replacement Cache (N. Megiddo and D. S. Modha, "ARC: a
 * self-tuning, low overhead replacement cache", FAST 2003), as in the
 * paper's Figure 4.
 *
 * Two LRU lists of resident frames, T1 (used once recently) and T2 (used at
 * least twice), and two LRU lists of ghost keys, B1 and B2, evicted from
 * T1 and T2.  A hit moves a frame to T2's MRU end.  A miss on a key in B1
 * raises the target p for T1 by max(1, |B2|/|B1|), one in B2 lowers it by
 * max(1, |B1|/|B2|); either page then goes to T2, any other to T1.
 * REPLACE evicts T1's LRU frame (key to B1) when |T1| > p, or |T1| = p and
 * the missed key is in B2, else T2's (key to B2).  Case IV keeps the
 * directory within |T1|+|B1| <= c and |T1|+|T2|+|B1|+|B2| <= 2c.  Ratios
 * are integer quotients, as in common implementations.
 *
 * REPLACE depends on the key being brought in, and the paper adapts p
 * before it: the simulator announces the miss (miss()) and gets exactly
 * Figure 4.  The runtime evicts ahead of its misses and cannot: there,
 * REPLACE does without the |T1| = p tie rule, and p is adapted, and the
 * directory trimmed, when the page comes in (insert()).
 *
 * In the runtime, T1 and T2 are ordered by the uses reported, their older
 * halves armed as in lru.c (window.h): a frame of T1 whose use the runtime
 * sees after arming moves to T2, one used only while unarmed stays in T1.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "ghost.h"
#include "window.h"

enum { IN_NONE, IN_B1, IN_B2 };

struct arc {
	struct wlinks w;
	struct wlist t1, t2;  /* head: LRU */
	uint64_t *key;
	struct ghost g;
	struct flist b1, b2;  /* over g.l; head: LRU */
	uint32_t c, p;
	/* The miss announced by miss(), until insert() serves it. */
	bool pending;
	bool discard;         /* case IV with |T1| = c: T1's LRU, no ghost */
	uint8_t where;        /* IN_*: where the key was found */
	uint64_t pkey;
	struct lp_policy_host *h;
};

static void arc_destroy(void *state)
{
	struct arc *p = state;

	wlinks_fini(&p->w);
	ghost_fini(&p->g);
	free(p->key);
	free(p);
}

static int arc_create(void **state, uint32_t n, struct lp_policy_host *h,
		      uint64_t seed)
{
	struct arc *p;

	(void)seed;
	/* The 2n ghost slots are numbered below FL_NIL. */
	if (n > (UINT32_MAX - 1) / 2)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = n;
	p->key = calloc(n, sizeof(*p->key));
	if (wlinks_init(&p->w, n) || ghost_init(&p->g, 2 * n) || !p->key) {
		arc_destroy(p);
		return -ENOMEM;
	}
	wl_init(&p->t1, 1);
	wl_init(&p->t2, 2);
	flist_init(&p->b1, 1);
	flist_init(&p->b2, 2);
	p->h = h;
	*state = p;
	return 0;
}

static void drop_lru(struct arc *p, struct flist *b)
{
	ghost_del(&p->g, flist_pop(&p->g.l, b));
}

/* Cases II and III: adapt p to a ghost hit; returns IN_*. */
static uint8_t adapt(struct arc *p, uint32_t g)
{
	uint32_t b1 = p->b1.count, b2 = p->b2.count;

	if (g == FL_NIL)
		return IN_NONE;
	if (flist_has(&p->g.l, &p->b1, g)) {
		uint32_t d = b2 / b1 > 1 ? b2 / b1 : 1;
		p->p = p->c - p->p > d ? p->p + d : p->c;
		return IN_B1;
	}
	uint32_t d = b1 / b2 > 1 ? b1 / b2 : 1;
	p->p = p->p > d ? p->p - d : 0;
	return IN_B2;
}

static void arc_miss(void *state, uint64_t key)
{
	struct arc *p = state;
	uint32_t t1 = wl_count(&p->t1), t2 = wl_count(&p->t2);
	uint32_t b1 = p->b1.count, b2 = p->b2.count;

	p->pending = true;
	p->discard = false;
	p->pkey = key;
	p->where = adapt(p, ghost_find(&p->g, key));
	if (p->where != IN_NONE)
		return;
	/* Case IV. */
	if (t1 + b1 == p->c) {
		if (t1 < p->c)
			drop_lru(p, &p->b1);
		else
			p->discard = true;
	} else if (t1 + t2 + b1 + b2 == 2 * p->c) {
		drop_lru(p, &p->b2);
	}
}

static void arc_insert(void *state, uint32_t f, uint64_t key)
{
	struct arc *p = state;
	uint32_t g = ghost_find(&p->g, key);

	p->key[f] = key;
	if (!p->pending || p->pkey != key) {
		/* Not announced (the runtime): adapt now, trim the
		 * directory as case IV would have. */
		if (adapt(p, g) == IN_NONE) {
			uint32_t t1 = wl_count(&p->t1), t2 = wl_count(&p->t2);
			uint32_t b1 = p->b1.count, b2 = p->b2.count;
			if (t1 + b1 >= p->c && b1)
				drop_lru(p, &p->b1);
			else if (t1 + t2 + b1 + b2 >= 2 * p->c && b2)
				drop_lru(p, &p->b2);
		}
	}
	p->pending = false;
	if (g == FL_NIL) {
		wl_push(&p->w, &p->t1, f);
		return;
	}
	flist_del(&p->g.l, flist_has(&p->g.l, &p->b1, g) ? &p->b1 : &p->b2, g);
	ghost_del(&p->g, g);
	wl_push(&p->w, &p->t2, f);
}

static void arc_hit(void *state, uint32_t f)
{
	struct arc *p = state;

	if (wl_has(&p->w, &p->t1, f))
		wl_del(&p->w, &p->t1, f);
	else
		wl_del(&p->w, &p->t2, f);
	wl_push(&p->w, &p->t2, f);
}

static void arc_remove(void *state, uint32_t f)
{
	struct arc *p = state;

	if (wl_has(&p->w, &p->t1, f))
		wl_del(&p->w, &p->t1, f);
	else if (wl_has(&p->w, &p->t2, f))
		wl_del(&p->w, &p->t2, f);
}

static int arc_evict(void *state, uint32_t *out)
{
	struct arc *p = state;
	uint32_t t1 = wl_count(&p->t1), f;
	bool from_t1;

	if (!t1 && !wl_count(&p->t2))
		return -ENOENT;
	if (p->pending && p->discard) {
		p->discard = false;
		f = wl_pop(&p->w, &p->t1);
		goto out;
	}
	/* REPLACE(x, p). */
	from_t1 = t1 && (t1 > p->p ||
			 (p->pending && p->where == IN_B2 && t1 == p->p));
	if (!wl_count(&p->t2))
		from_t1 = true;
	if (from_t1) {
		f = wl_pop(&p->w, &p->t1);
		flist_push(&p->g.l, &p->b1, ghost_add(&p->g, p->key[f]));
	} else {
		f = wl_pop(&p->w, &p->t2);
		flist_push(&p->g.l, &p->b2, ghost_add(&p->g, p->key[f]));
	}
out:
	wl_fill(&p->w, &p->t1, p->h);
	wl_fill(&p->w, &p->t2, p->h);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_arc = {
	.name = "arc",
	.summary = "ARC: adaptive replacement cache (FAST'03; runtime: "
		   "observed uses, older halves armed)",
	.uses_ref = true,
	.uses_hits = true,
	.create = arc_create,
	.destroy = arc_destroy,
	.insert = arc_insert,
	.hit = arc_hit,
	.remove = arc_remove,
	.evict = arc_evict,
	.miss = arc_miss,
};
