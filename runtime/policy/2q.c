/* SPDX-License-Identifier: MIT */
/*
 * 2Q, the full version (T. Johnson and D. Shasha, "2Q: a low overhead high
 * performance buffer management replacement algorithm", VLDB 1994), with
 * the paper's recommended sizes: Kin = 25% and Kout = 50% of the frames.
 *
 * A1in, a FIFO queue, takes pages on their first miss; hits there change
 * nothing (correlated references).  A page evicted from A1in leaves its key
 * on A1out, a FIFO queue of at most Kout keys; a miss on a key found there
 * goes to Am, an LRU list of pages proven hot.  Evicting: from A1in when it
 * holds more than Kin frames (its key to A1out), else from Am's LRU end
 * (forgotten).
 *
 * Kin is a quarter of the frames in use when the host evicts: all of them
 * in the simulator, fewer in the runtime, which keeps a reserve of free
 * frames.
 *
 * The paper looks the missed key up on A1out before reclaiming a frame,
 * which may push the key off A1out: the simulator announces the miss
 * (miss()) to match.  A key found there leaves A1out when its page goes to
 * Am (the paper is silent; leaving it would let one page count twice).
 *
 * Exact in the simulator.  In the runtime, A1in and A1out depend on misses
 * only and are exact too, but for a key pushed off A1out by the eviction
 * made for it; Am is ordered by the uses the runtime reports, and the older
 * half of Am is armed to report them, as in lru.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "ghost.h"
#include "window.h"

struct twoq {
	struct wlinks w;
	struct wlist a1in, am;
	uint64_t *key;
	struct ghost g;
	struct flist a1out;   /* over g.l; head: oldest */
	uint32_t in_use;      /* most frames in use at an eviction */
	bool pending;         /* miss() saw pkey, found on A1out: to_am */
	bool to_am;
	uint64_t pkey;
	struct lp_policy_host *h;
};

static void twoq_fini(void *state)
{
	struct twoq *p = state;

	ghost_frames_fini(&p->g, &p->w, p->key);
}

static int twoq_init(void *state, uint32_t n, struct lp_policy_host *h,
		     uint64_t seed)
{
	struct twoq *p = state;

	(void)seed;
	wl_init(&p->a1in, 1);
	wl_init(&p->am, 2);
	flist_init(&p->a1out, 1);
	p->h = h;
	/* Kout: half the frames. */
	return ghost_frames_init(&p->g, n / 2 ? n / 2 : 1, &p->w, &p->key, n);
}

static void twoq_miss(void *state, uint64_t key)
{
	struct twoq *p = state;

	p->pending = true;
	p->pkey = key;
	p->to_am = ghost_find(&p->g, key) != FL_NIL;
}

static void twoq_insert(void *state, uint32_t f, uint64_t key)
{
	struct twoq *p = state;
	uint32_t g = ghost_find(&p->g, key);
	bool to_am = p->pending && p->pkey == key ? p->to_am : g != FL_NIL;

	p->pending = false;
	p->key[f] = key;
	if (g != FL_NIL) {
		flist_del(&p->g.l, &p->a1out, g);
		ghost_del(&p->g, g);
	}
	wl_push(&p->w, to_am ? &p->am : &p->a1in, f);
}

static void twoq_hit(void *state, uint32_t f)
{
	struct twoq *p = state;

	if (wl_has(&p->w, &p->am, f))
		wl_move_tail(&p->w, &p->am, f);
}

static void twoq_remove(void *state, uint32_t f)
{
	struct twoq *p = state;

	if (wl_has(&p->w, &p->a1in, f))
		wl_del(&p->w, &p->a1in, f);
	else if (wl_has(&p->w, &p->am, f))
		wl_del(&p->w, &p->am, f);
}

static int twoq_evict(void *state, uint32_t *out)
{
	struct twoq *p = state;
	uint32_t f, used = wl_count(&p->a1in) + wl_count(&p->am);

	if (used > p->in_use)
		p->in_use = used;
	uint32_t kin = p->in_use / 4 ? p->in_use / 4 : 1;
	if (wl_count(&p->a1in) > kin || !wl_count(&p->am)) {
		f = wl_pop(&p->w, &p->a1in);
		if (f == FL_NIL)
			return -ENOENT;
		if (ghost_full(&p->g))
			ghost_del(&p->g, flist_pop(&p->g.l, &p->a1out));
		flist_push(&p->g.l, &p->a1out, ghost_add(&p->g, p->key[f]));
	} else {
		f = wl_pop(&p->w, &p->am);
	}
	wl_fill(&p->w, &p->am, p->h);
	*out = f;
	return 0;
}

const struct lp_policy_ops lp_policy_2q = {
	.name = "2q",
	.summary = "2Q: FIFO A1in, ghost A1out, LRU Am (VLDB'94)",
	.uses_ref = true,
	.uses_hits = true,
	.size = sizeof(struct twoq),
	.init = twoq_init,
	.fini = twoq_fini,
	.insert = twoq_insert,
	.hit = twoq_hit,
	.remove = twoq_remove,
	.evict = twoq_evict,
	.miss = twoq_miss,
};
