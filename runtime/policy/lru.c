/* SPDX-License-Identifier: MIT */
/*
 * LRU: evict the frame whose last use is the oldest (the stack algorithm of
 * R. L. Mattson, J. Gecsei, D. R. Slutz and I. L. Traiger, "Evaluation
 * techniques for storage hierarchies", IBM Systems Journal 9(2), 1970).
 *
 * Frames are on one list in order of their last observed use; a hit moves
 * a frame to the tail, the victim is the head.  Exact in the simulator,
 * which reports every use.
 *
 * The runtime reports a use only when the frame's reference bit was
 * cleared, so the order is that of the last use it saw, and a frame in
 * constant use without faulting drifts towards the head as if idle.  To
 * tell such a frame from an idle one before it is the victim, the policy
 * arms the older half of the list (window.h): a use there is reported and
 * takes the frame back to the tail, so what reaches the head has been idle
 * since it was armed, some half a list of evictions ago — Linux's
 * inactive list, in effect.  When the host declined to arm the head, it
 * goes anyway: its last observed use is still the oldest.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "window.h"

struct lru {
	struct wlinks w;
	struct wlist q;
	struct lp_policy_host *h;
};

static int lru_init(void *state, uint32_t n, struct lp_policy_host *h,
		    uint64_t seed)
{
	struct lru *p = state;

	(void)seed;
	wl_init(&p->q, 1);
	p->h = h;
	return wlinks_init(&p->w, n);
}

static void lru_fini(void *state)
{
	struct lru *p = state;

	wlinks_fini(&p->w);
}

static void lru_insert(void *state, uint32_t f, uint64_t key)
{
	struct lru *p = state;

	(void)key;
	wl_push(&p->w, &p->q, f);
}

static void lru_hit(void *state, uint32_t f)
{
	struct lru *p = state;

	wl_move_tail(&p->w, &p->q, f);
}

static void lru_remove(void *state, uint32_t f)
{
	struct lru *p = state;

	if (wl_has(&p->w, &p->q, f))
		wl_del(&p->w, &p->q, f);
}

static int lru_evict(void *state, uint32_t *f)
{
	struct lru *p = state;
	uint32_t v = wl_pop(&p->w, &p->q);

	if (v == FL_NIL)
		return -ENOENT;
	wl_fill(&p->w, &p->q, p->h);
	*f = v;
	return 0;
}

const struct lp_policy_ops lp_policy_lru = {
	.name = "lru",
	.summary = "least recently used (runtime: recency of observed uses, "
		   "older half armed)",
	.uses_ref = true,
	.uses_hits = true,
	.size = sizeof(struct lru),
	.init = lru_init,
	.fini = lru_fini,
	.insert = lru_insert,
	.hit = lru_hit,
	.remove = lru_remove,
	.evict = lru_evict,
};
