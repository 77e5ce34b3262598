/* SPDX-License-Identifier: MIT */
/*
 * SIEVE (Y. Zhang, J. Yang, Y. Yue, Y. Vigfusson and K. V. Rashmi, "SIEVE
 * is simpler than LRU: an efficient turn-key eviction algorithm for web
 * caches", NSDI 2024).
 *
 * One FIFO queue: new frames join at the newest end unvisited, a use sets
 * the frame's visited bit.  A hand moves from the oldest end towards the
 * newest, wrapping around: it clears the visited bits it passes and stops
 * at the first unvisited frame, the victim, leaving the hand on the next
 * newer frame.  Survivors stay where they are, so new frames are sorted out
 * quickly while old useful ones are left alone.
 *
 * The visited bit is the reference bit as the host reports it: hit() is how
 * a set bit is seen.  Exact in the simulator.  In the runtime, the hand's
 * clear is ref_clear() (the next use faults and is reported).  Frames that
 * came in since the hand last passed were not cleared: they are armed
 * (window.h) once the hand is within half a queue of them, so that a use
 * of a new frame is seen too.  Survivors never move, so queue order is
 * push order and that distance is a difference of push numbers (an upper
 * bound: frames evicted meanwhile count).  A frame the host could not arm
 * counts as unvisited when the hand reaches it.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "window.h"

struct sieve {
	struct wlinks w;
	struct wlist q;       /* head: oldest */
	uint8_t *visited;
	uint32_t hand;        /* next frame to look at; FL_NIL: the head */
	struct lp_policy_host *h;
};

static int sieve_init(void *state, uint32_t n, struct lp_policy_host *h,
		      uint64_t seed)
{
	struct sieve *p = state;

	(void)seed;
	wl_init(&p->q, 1);
	p->hand = FL_NIL;
	p->h = h;
	p->visited = calloc(n, 1);
	return wlinks_init(&p->w, n) || !p->visited ? -ENOMEM : 0;
}

static void sieve_fini(void *state)
{
	struct sieve *p = state;

	wlinks_fini(&p->w);
	free(p->visited);
}

static void sieve_insert(void *state, uint32_t f, uint64_t key)
{
	struct sieve *p = state;

	(void)key;
	p->visited[f] = 0;
	wl_push(&p->w, &p->q, f);
}

static void sieve_hit(void *state, uint32_t f)
{
	struct sieve *p = state;

	p->visited[f] = 1;
}

static void sieve_remove(void *state, uint32_t f)
{
	struct sieve *p = state;

	if (!wl_has(&p->w, &p->q, f))
		return;
	if (p->hand == f)
		p->hand = p->w.l.next[f];
	wl_del(&p->w, &p->q, f);
}

/* Arm the new frames the hand reaches within half a queue. */
static void arm_ahead(struct sieve *p)
{
	uint32_t at = p->hand != FL_NIL ? p->hand : wl_head(&p->q), f;

	if (p->h->all_uses || at == FL_NIL)
		return;
	for (unsigned steps = WL_STEPS; steps; steps--) {
		f = wl_probe(&p->w, &p->q);
		/* The probe never trails the hand: the hand evicts the
		 * unarmed frames it meets. */
		if (f == FL_NIL ||
		    p->w.seq[f] - p->w.seq[at] > wl_count(&p->q) / 2)
			return;
		if (!wl_arm_probe(&p->w, &p->q, p->h))
			return;
	}
}

static int sieve_evict(void *state, uint32_t *out)
{
	struct sieve *p = state;
	uint32_t f = p->hand != FL_NIL ? p->hand : wl_head(&p->q);

	if (f == FL_NIL)
		return -ENOENT;
	/* One turn at most: every visited bit passed is cleared. */
	while (p->visited[f]) {
		p->visited[f] = 0;
		wl_arm(&p->w, p->h, f);
		f = p->w.l.next[f];
		if (f == FL_NIL)
			f = wl_head(&p->q);
	}
	p->hand = p->w.l.next[f];
	wl_del(&p->w, &p->q, f);
	arm_ahead(p);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_sieve = {
	.name = "sieve",
	.summary = "SIEVE: FIFO queue, a hand sifts out unvisited frames "
		   "(NSDI'24)",
	.uses_ref = true,
	.uses_hits = false,
	.size = sizeof(struct sieve),
	.init = sieve_init,
	.fini = sieve_fini,
	.insert = sieve_insert,
	.hit = sieve_hit,
	.remove = sieve_remove,
	.evict = sieve_evict,
};
