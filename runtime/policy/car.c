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

#include "../policy.h"
#include "ghost.h"
#include "window.h"

struct car {
	struct wlinks w;
	struct wlist t1, t2;  /* head: the clock hand */
	uint8_t *refd;
	uint64_t *key;
	struct ghost g;
	struct flist b1, b2;  /* over g.l; head: LRU */
	uint32_t c, p;
	struct lp_policy_host *h;
};

static void car_destroy(void *state)
{
	struct car *p = state;

	wlinks_fini(&p->w);
	ghost_fini(&p->g);
	free(p->refd);
	free(p->key);
	free(p);
}

static int car_create(void **state, uint32_t n, struct lp_policy_host *h,
		      uint64_t seed)
{
	struct car *p;

	(void)seed;
	/* The 2n ghost slots are numbered below FL_NIL. */
	if (n > (UINT32_MAX - 1) / 2)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = n;
	p->refd = calloc(n, 1);
	p->key = calloc(n, sizeof(*p->key));
	if (wlinks_init(&p->w, n) || ghost_init(&p->g, 2 * n) || !p->refd ||
	    !p->key) {
		car_destroy(p);
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

static void drop_lru(struct car *p, struct flist *b)
{
	ghost_del(&p->g, flist_pop(&p->g.l, b));
}

static void car_insert(void *state, uint32_t f, uint64_t key)
{
	struct car *p = state;
	uint32_t g = ghost_find(&p->g, key);
	uint32_t t1 = wl_count(&p->t1), t2 = wl_count(&p->t2);
	uint32_t b1 = p->b1.count, b2 = p->b2.count;

	p->key[f] = key;
	p->refd[f] = 0;
	if (g == FL_NIL) {
		if (t1 + b1 >= p->c && b1)
			drop_lru(p, &p->b1);
		else if (t1 + t2 + b1 + b2 >= 2 * p->c && b2)
			drop_lru(p, &p->b2);
		wl_push(&p->w, &p->t1, f);
		return;
	}
	if (flist_has(&p->g.l, &p->b1, g)) {
		uint32_t d = b2 / b1 > 1 ? b2 / b1 : 1;
		p->p = p->c - p->p > d ? p->p + d : p->c;
		flist_del(&p->g.l, &p->b1, g);
	} else {
		uint32_t d = b1 / b2 > 1 ? b1 / b2 : 1;
		p->p = p->p > d ? p->p - d : 0;
		flist_del(&p->g.l, &p->b2, g);
	}
	ghost_del(&p->g, g);
	wl_push(&p->w, &p->t2, f);
}

static void car_hit(void *state, uint32_t f)
{
	struct car *p = state;

	p->refd[f] = 1;
}

static void car_remove(void *state, uint32_t f)
{
	struct car *p = state;

	if (wl_has(&p->w, &p->t1, f))
		wl_del(&p->w, &p->t1, f);
	else if (wl_has(&p->w, &p->t2, f))
		wl_del(&p->w, &p->t2, f);
}

/* The victim leaves for ghost list b. */
static uint32_t demote(struct car *p, struct wlist *t, struct flist *b,
		       uint32_t f)
{
	wl_del(&p->w, t, f);
	uint32_t g = ghost_add(&p->g, p->key[f]);
	if (g != FL_NIL) /* cannot fail: the directory holds at most 2c */
		flist_push(&p->g.l, b, g);
	return f;
}

static int car_evict(void *state, uint32_t *out)
{
	struct car *p = state;
	uint32_t f, v = FL_NIL;

	if (!wl_count(&p->t1) && !wl_count(&p->t2))
		return -ENOENT;
	/* Ends: each frame passed has its bit cleared. */
	while (v == FL_NIL) {
		uint32_t t1 = wl_count(&p->t1);
		if (t1 && (t1 >= (p->p > 1 ? p->p : 1) || !wl_count(&p->t2))) {
			f = wl_head(&p->t1);
			if (!p->refd[f]) {
				v = demote(p, &p->t1, &p->b1, f);
				continue;
			}
			p->refd[f] = 0;
			wl_del(&p->w, &p->t1, f);
			wl_push(&p->w, &p->t2, f);
		} else {
			f = wl_head(&p->t2);
			if (!p->refd[f]) {
				v = demote(p, &p->t2, &p->b2, f);
				continue;
			}
			p->refd[f] = 0;
			wl_move_tail(&p->w, &p->t2, f);
		}
		wl_arm(&p->w, p->h, f);
	}
	wl_fill(&p->w, &p->t1, p->h);
	wl_fill(&p->w, &p->t2, p->h);
	*out = v;
	return 0;
}

const struct lp_policy_ops lp_policy_car = {
	.name = "car",
	.summary = "CAR: clock with adaptive replacement (FAST'04)",
	.uses_ref = true,
	.uses_hits = false,
	.create = car_create,
	.destroy = car_destroy,
	.insert = car_insert,
	.hit = car_hit,
	.remove = car_remove,
	.evict = car_evict,
};
