/* SPDX-License-Identifier: MIT */
/*
 * CLOCK (second chance): frames on a circle in arrival order; the hand
 * skips, and clears, frames whose reference bit is set and evicts the first
 * one found clear.  New frames join just behind the hand.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "flist.h"

struct clock {
	struct flinks l;
	struct flist q;
	uint32_t hand;
	struct lp_policy_host *h;
};

static int clock_init(void *state, uint32_t n, struct lp_policy_host *h,
		      uint64_t seed)
{
	struct clock *p = state;

	(void)seed;
	flist_init(&p->q, 1);
	p->hand = FL_NIL;
	p->h = h;
	return flinks_init(&p->l, n);
}

static void clock_fini(void *state)
{
	struct clock *p = state;

	flinks_fini(&p->l);
}

static uint32_t after(struct clock *p, uint32_t f)
{
	uint32_t n = p->l.next[f];

	return n != FL_NIL ? n : p->q.head;
}

static void clock_insert(void *state, uint32_t f, uint64_t key)
{
	struct clock *p = state;

	(void)key;
	flist_insert_before(&p->l, &p->q, p->hand, f);
	if (p->hand == FL_NIL)
		p->hand = f;
}

static void clock_remove(void *state, uint32_t f)
{
	struct clock *p = state;

	if (!flist_has(&p->l, &p->q, f))
		return;
	if (p->hand == f)
		p->hand = p->q.count > 1 ? after(p, f) : FL_NIL;
	flist_del(&p->l, &p->q, f);
}

static int clock_evict(void *state, uint32_t *out)
{
	struct clock *p = state;

	if (p->hand == FL_NIL)
		return -ENOENT;
	/* Two turns at most: after one, every bit has been cleared. */
	for (uint64_t i = 0, lim = 2ull * p->q.count + 1; i < lim; i++) {
		uint32_t f = p->hand;
		if (ref_test(p->h, f) && ref_clear(p->h, f)) {
			p->hand = after(p, f);
			continue;
		}
		break;
	}
	uint32_t v = p->hand;
	clock_remove(p, v);
	*out = v;
	return 0;
}

const struct lp_policy_ops lp_policy_clock = {
	.name = "clock",
	.summary = "second chance on a circle of frames (reference bits)",
	.uses_ref = true,
	.uses_hits = false,
	.size = sizeof(struct clock),
	.init = clock_init,
	.fini = clock_fini,
	.insert = clock_insert,
	/* no hit: the host set the reference bit, which is all it reads */
	.remove = clock_remove,
	.evict = clock_evict,
};
