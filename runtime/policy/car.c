/* SPDX-License-Identifier: MIT */
/*
 * CAR, Clock with Adaptive Replacement (S. Bansal and D. S. Modha, "CAR:
 * Clock with Adaptive Replacement", FAST 2004), as in the paper's Figure 2.
 *
 * Two clocks of resident frames, T1 (seen once recently) and T2 (seen at
 * least twice), and two ghost lists of keys, B1 and B2, evicted from T1
 * and T2.  A frame has a reference bit, clear when it enters a clock and
 * set by a use.  Replacing: T1's clock turns when T1 holds at least
 * max(1, p) frames, else T2's; at its head a frame with the bit clear is
 * the victim (its key to B1 or B2), one with the bit set has it cleared and
 * goes to T2's tail.  A miss on a key in B1 raises the target p for T1 by
 * max(1, |B2|/|B1|), one in B2 lowers it by max(1, |B1|/|B2|), and the page
 * goes to T2; any other miss goes to T1.  The directory stays within
 * |T1|+|B1| <= c and |T1|+|T2|+|B1|+|B2| <= 2c.
 *
 * Chosen over CLOCK-Pro: Figure 2 specifies CAR completely, with
 * replace() independent of the page being brought in — the runtime evicts
 * ahead of misses and cannot know it — while CLOCK-Pro's three hands and
 * non-resident test pages on one clock leave more to the implementer.
 *
 * The directory replacement of lines 6-10 depends on the missed page, so it
 * is done on insert(): with every frame in use, right after replace() as
 * in the paper.  Ratios are integer quotients, as in common
 * implementations.
 *
 * The reference bit is the host's, as hit() reports it: exact in the
 * simulator.  In the runtime, a frame entering a clock without being cleared
 * first (a miss: the page is in use) is armed once it is in the older half
 * of its clock (window.h); each move to T2's tail arms it, which is the
 * clear of lines 29 and 36.  A frame the host would not arm has no use
 * seen since: it is the victim when the hand reaches it.
 */
#include <errno.h>
#include <stdlib.h>

#include "adaptive.h"

struct car {
	struct adir d;        /* T1, T2: head the clock hand */
	uint8_t *refd;
};

static void car_fini(void *state)
{
	struct car *p = state;

	adir_fini(&p->d);
	free(p->refd);
}

static int car_init(void *state, uint32_t n, struct lp_policy_host *h,
		    uint64_t seed)
{
	struct car *p = state;
	int rc;

	(void)seed;
	rc = adir_init(&p->d, n, h);
	if (rc)
		return rc;
	p->refd = calloc(n, 1);
	return p->refd ? 0 : -ENOMEM;
}

static void car_insert(void *state, uint32_t f, uint64_t key)
{
	struct car *p = state;
	uint32_t g = ghost_find(&p->d.g, key);

	p->d.key[f] = key;
	p->refd[f] = 0;
	if (adir_adapt(&p->d, g) == IN_NONE)
		adir_trim(&p->d);
	adir_join(&p->d, f, g);
}


static void car_hit(void *state, uint32_t f)
{
	struct car *p = state;

	p->refd[f] = 1;
}

static void car_remove(void *state, uint32_t f)
{
	struct car *p = state;

	adir_remove(&p->d, f);
}

/* The victim leaves for ghost list b. */
static uint32_t demote(struct car *p, struct wlist *t, struct flist *b,
		       uint32_t f)
{
	wl_del(&p->d.w, t, f);
	uint32_t g = ghost_add(&p->d.g, p->d.key[f]);
	if (g != FL_NIL) /* cannot fail: the directory holds at most 2c */
		flist_push(&p->d.g.l, b, g);
	return f;
}

static int car_evict(void *state, uint32_t *out)
{
	struct car *p = state;
	uint32_t f, v = FL_NIL;

	if (!wl_count(&p->d.t1) && !wl_count(&p->d.t2))
		return -ENOENT;
	/* Ends: each frame passed has its bit cleared. */
	while (v == FL_NIL) {
		uint32_t t1 = wl_count(&p->d.t1);
		if (t1 && (t1 >= (p->d.p > 1 ? p->d.p : 1) ||
			   !wl_count(&p->d.t2))) {
			f = wl_head(&p->d.t1);
			if (!p->refd[f]) {
				v = demote(p, &p->d.t1, &p->d.b1, f);
				continue;
			}
			p->refd[f] = 0;
			wl_del(&p->d.w, &p->d.t1, f);
			wl_push(&p->d.w, &p->d.t2, f);
		} else {
			f = wl_head(&p->d.t2);
			if (!p->refd[f]) {
				v = demote(p, &p->d.t2, &p->d.b2, f);
				continue;
			}
			p->refd[f] = 0;
			wl_move_tail(&p->d.w, &p->d.t2, f);
		}
		wl_arm(&p->d.w, p->d.h, f);
	}
	wl_fill(&p->d.w, &p->d.t1, p->d.h);
	wl_fill(&p->d.w, &p->d.t2, p->d.h);
	*out = v;
	return 0;
}

const struct lp_policy_ops lp_policy_car = {
	.name = "car",
	.summary = "CAR: clock with adaptive replacement (FAST'04)",
	.uses_ref = true,
	.uses_hits = false,
	.size = sizeof(struct car),
	.init = car_init,
	.fini = car_fini,
	.insert = car_insert,
	.hit = car_hit,
	.remove = car_remove,
	.evict = car_evict,
};
