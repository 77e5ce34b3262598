/* SPDX-License-Identifier: MIT */
/*
 * S3-FIFO (J. Yang, Y. Zhang, Z. Qiu, Y. Yue and K. V. Rashmi, "FIFO queues
 * are all you need for cache eviction", SOSP 2023), as in Algorithm 1 and
 * the authors' original implementation (libCacheSim S3FIFOv0).
 *
 * Three FIFO queues: S, small (10% of the frames), M, main (the rest), and
 * G, the ghost queue: keys of pages evicted from S, as many as M holds.  A
 * miss goes to M when its key is in G, else to S.  A frame has a use
 * counter capped at 3.  Evicting: from M when M is over its size or S is
 * empty, else from S.  S's oldest frame moves to M when it was used twice
 * since it came in (counter >= 2, counter reset), else it leaves and its
 * key goes to G ("quick demotion").  M's oldest frame goes round again,
 * counter decremented, while the counter is positive ("lazy promotion"),
 * else it leaves.
 *
 * S and M are 10% and 90% of the frames in use when the host evicts: all
 * of them in the simulator, fewer in the runtime, which keeps a reserve of
 * free frames (with S sized from the budget, M would hold all frames in
 * use, and S none, on small budgets).
 *
 * As in the authors' code, a missed key is taken off G before the eviction
 * made for it (which could push it off G otherwise): the simulator
 * announces the miss (miss()); the runtime, which evicts ahead, looks the
 * key up when the page comes in.
 *
 * Exact in the simulator.  The runtime reports at most one use per cleared
 * reference bit, so the counters count the uses seen: frames are armed in
 * the older half of S and of M (window.h), and again each time M takes a
 * frame or sends it round, where the algorithm starts counting anew.  One
 * use seen in S suffices to move to M, since a second could not be seen.
 * A frame the host would not arm counts only the uses already seen.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "ghost.h"
#include "window.h"

#define FREQ_MAX 3

struct s3fifo {
	struct wlinks w;
	struct wlist s, m;
	uint8_t *freq;
	uint64_t *key;
	struct ghost g;
	struct flist gq;      /* G, over g.l; head: oldest */
	uint32_t in_use;      /* most frames in use at an eviction */
	uint8_t promote;      /* uses in S that earn a place in M */
	bool pending;         /* miss() took pkey off G: to_main */
	bool to_main;
	uint64_t pkey;
	struct lp_policy_host *h;
};

static void s3_fini(void *state)
{
	struct s3fifo *p = state;

	ghost_frames_fini(&p->g, &p->w, p->key);
	free(p->freq);
}

static int s3_init(void *state, uint32_t n, struct lp_policy_host *h,
		   uint64_t seed)
{
	struct s3fifo *p = state;
	uint32_t s_size = n / 10 ? n / 10 : 1;

	(void)seed;
	wl_init(&p->s, 1);
	wl_init(&p->m, 2);
	flist_init(&p->gq, 1);
	p->promote = h->all_uses ? 2 : 1;
	p->h = h;
	/* G: as many keys as M holds. */
	int rc = ghost_frames_init(&p->g, n - s_size, &p->w, &p->key, n);
	if (rc)
		return rc;
	p->freq = calloc(n, 1);
	return p->freq ? 0 : -ENOMEM;
}

/* Takes key off G; whether it was there. */
static bool ghost_take(struct s3fifo *p, uint64_t key)
{
	uint32_t g = ghost_find(&p->g, key);

	if (g == FL_NIL)
		return false;
	flist_del(&p->g.l, &p->gq, g);
	ghost_del(&p->g, g);
	return true;
}

static void s3_miss(void *state, uint64_t key)
{
	struct s3fifo *p = state;

	p->pending = true;
	p->pkey = key;
	p->to_main = ghost_take(p, key);
}

static void s3_insert(void *state, uint32_t f, uint64_t key)
{
	struct s3fifo *p = state;
	bool to_main = p->pending && p->pkey == key ? p->to_main :
						     ghost_take(p, key);

	p->pending = false;
	p->key[f] = key;
	p->freq[f] = 0;
	wl_push(&p->w, to_main ? &p->m : &p->s, f);
}

static void s3_hit(void *state, uint32_t f)
{
	struct s3fifo *p = state;

	if (p->freq[f] < FREQ_MAX)
		p->freq[f]++;
}

static void s3_remove(void *state, uint32_t f)
{
	struct s3fifo *p = state;

	if (wl_has(&p->w, &p->s, f))
		wl_del(&p->w, &p->s, f);
	else if (wl_has(&p->w, &p->m, f))
		wl_del(&p->w, &p->m, f);
}

static void ghost_push(struct s3fifo *p, uint64_t key)
{
	if (ghost_full(&p->g)) {
		uint32_t old = flist_pop(&p->g.l, &p->gq);
		ghost_del(&p->g, old);
	}
	flist_push(&p->g.l, &p->gq, ghost_add(&p->g, key));
}

/* S's oldest frames move to M until one leaves; FL_NIL when S ran dry. */
static uint32_t evict_s(struct s3fifo *p)
{
	uint32_t f;

	while ((f = wl_head(&p->s)) != FL_NIL) {
		wl_del(&p->w, &p->s, f);
		if (p->freq[f] < p->promote) {
			ghost_push(p, p->key[f]);
			return f;
		}
		p->freq[f] = 0;
		wl_push(&p->w, &p->m, f);
		wl_arm(&p->w, p->h, f);
	}
	return FL_NIL;
}

/* Ends: each turn uses up a count hit() added. */
static uint32_t evict_m(struct s3fifo *p)
{
	uint32_t f;

	while ((f = wl_head(&p->m)) != FL_NIL && p->freq[f]) {
		p->freq[f]--;
		wl_move_tail(&p->w, &p->m, f);
		wl_arm(&p->w, p->h, f);
	}
	if (f != FL_NIL)
		wl_del(&p->w, &p->m, f);
	return f;
}

static int s3_evict(void *state, uint32_t *out)
{
	struct s3fifo *p = state;
	uint32_t f = FL_NIL, used = wl_count(&p->s) + wl_count(&p->m);

	if (used > p->in_use)
		p->in_use = used;
	uint32_t s_size = p->in_use / 10 ? p->in_use / 10 : 1;
	if (wl_count(&p->m) + s_size <= p->in_use && wl_count(&p->s))
		f = evict_s(p);
	if (f == FL_NIL)
		f = evict_m(p);
	if (f == FL_NIL)
		return -ENOENT;
	wl_fill(&p->w, &p->s, p->h);
	wl_fill(&p->w, &p->m, p->h);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_s3fifo = {
	.name = "s3fifo",
	.summary = "S3-FIFO: small, main and ghost FIFO queues (SOSP'23)",
	.uses_ref = true,
	.uses_hits = true,
	.size = sizeof(struct s3fifo),
	.init = s3_init,
	.fini = s3_fini,
	.insert = s3_insert,
	.hit = s3_hit,
	.remove = s3_remove,
	.evict = s3_evict,
	.miss = s3_miss,
};
