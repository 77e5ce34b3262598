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

#include "adaptive.h"

struct arc {
	struct adir d;        /* T1, T2: head LRU */
	/* The miss announced by miss(), until insert() serves it. */
	bool pending;
	bool discard;         /* case IV with |T1| = c: T1's LRU, no ghost */
	uint8_t where;        /* IN_*: where the key was found */
	uint64_t pkey;
};

static void arc_fini(void *state)
{
	struct arc *p = state;

	adir_fini(&p->d);
}

static int arc_init(void *state, uint32_t n, struct lp_policy_host *h,
		    uint64_t seed)
{
	struct arc *p = state;

	(void)seed;
	return adir_init(&p->d, n, h);
}


static void arc_miss(void *state, uint64_t key)
{
	struct arc *p = state;
	uint32_t t1 = wl_count(&p->d.t1), t2 = wl_count(&p->d.t2);
	uint32_t b1 = p->d.b1.count, b2 = p->d.b2.count;

	p->pending = true;
	p->discard = false;
	p->pkey = key;
	p->where = adir_adapt(&p->d, ghost_find(&p->d.g, key));
	if (p->where != IN_NONE)
		return;
	/* Case IV. */
	if (t1 + b1 == p->d.c) {
		if (t1 < p->d.c)
			adir_drop_lru(&p->d, &p->d.b1);
		else
			p->discard = true;
	} else if (t1 + t2 + b1 + b2 == 2 * p->d.c) {
		adir_drop_lru(&p->d, &p->d.b2);
	}
}

static void arc_insert(void *state, uint32_t f, uint64_t key)
{
	struct arc *p = state;
	uint32_t g = ghost_find(&p->d.g, key);

	p->d.key[f] = key;
	/* Not announced (the runtime): adapt now, trim the directory as
	 * case IV would have. */
	if ((!p->pending || p->pkey != key) &&
	    adir_adapt(&p->d, g) == IN_NONE)
		adir_trim(&p->d);
	p->pending = false;
	adir_join(&p->d, f, g);
}

static void arc_hit(void *state, uint32_t f)
{
	struct arc *p = state;

	if (wl_has(&p->d.w, &p->d.t1, f))
		wl_del(&p->d.w, &p->d.t1, f);
	else
		wl_del(&p->d.w, &p->d.t2, f);
	wl_push(&p->d.w, &p->d.t2, f);
}

static void arc_remove(void *state, uint32_t f)
{
	struct arc *p = state;

	adir_remove(&p->d, f);
}

static int arc_evict(void *state, uint32_t *out)
{
	struct arc *p = state;
	uint32_t t1 = wl_count(&p->d.t1), f;
	bool from_t1;

	if (!t1 && !wl_count(&p->d.t2))
		return -ENOENT;
	if (p->pending && p->discard) {
		p->discard = false;
		f = wl_pop(&p->d.w, &p->d.t1);
		goto out;
	}
	/* REPLACE(x, p). */
	from_t1 = t1 && (t1 > p->d.p ||
			 (p->pending && p->where == IN_B2 && t1 == p->d.p));
	if (!wl_count(&p->d.t2))
		from_t1 = true;
	if (from_t1) {
		f = wl_pop(&p->d.w, &p->d.t1);
		flist_push(&p->d.g.l, &p->d.b1,
			   ghost_add(&p->d.g, p->d.key[f]));
	} else {
		f = wl_pop(&p->d.w, &p->d.t2);
		flist_push(&p->d.g.l, &p->d.b2,
			   ghost_add(&p->d.g, p->d.key[f]));
	}
out:
	wl_fill(&p->d.w, &p->d.t1, p->d.h);
	wl_fill(&p->d.w, &p->d.t2, p->d.h);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_arc = {
	.name = "arc",
	.summary = "ARC: adaptive replacement cache (FAST'03; runtime: "
		   "observed uses, older halves armed)",
	.uses_ref = true,
	.uses_hits = true,
	.size = sizeof(struct arc),
	.init = arc_init,
	.fini = arc_fini,
	.insert = arc_insert,
	.hit = arc_hit,
	.remove = arc_remove,
	.evict = arc_evict,
	.miss = arc_miss,
};
