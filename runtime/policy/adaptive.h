/* SPDX-License-Identifier: MIT */
/*
 * The directory ARC (arc.c) and CAR (car.c) share, as N. Megiddo and
 * D. S. Modha define it for both: resident frames on T1 (seen once
 * recently) and T2 (seen at least twice), the keys of pages evicted from
 * them on the ghost lists B1 and B2, the capacity c, and the target p for
 * T1, adapted on a miss whose key is on a ghost list.  The order within T1
 * and T2 is each policy's (LRU lists for ARC, clocks for CAR).
 */
#ifndef LP_ADAPTIVE_H
#define LP_ADAPTIVE_H

#include "../policy.h"
#include "ghost.h"
#include "window.h"

enum { IN_NONE, IN_B1, IN_B2 };

struct adir {
	struct wlinks w;
	struct wlist t1, t2;
	uint64_t *key;        /* per frame */
	struct ghost g;
	struct flist b1, b2;  /* over g.l; head: LRU */
	uint32_t c, p;
	struct lp_policy_host *h;
};

/* For n frames: 0, -EINVAL or -ENOMEM; adir_fini() either way. */
static inline int adir_init(struct adir *d, uint32_t n,
			    struct lp_policy_host *h)
{
	d->c = n;
	d->h = h;
	wl_init(&d->t1, 1);
	wl_init(&d->t2, 2);
	flist_init(&d->b1, 1);
	flist_init(&d->b2, 2);
	/* B1 and B2: up to 2c keys. */
	return ghost_frames_init(&d->g, 2 * (uint64_t)n, &d->w, &d->key, n);
}

static inline void adir_fini(struct adir *d)
{
	ghost_frames_fini(&d->g, &d->w, d->key);
}

static inline void adir_drop_lru(struct adir *d, struct flist *b)
{
	ghost_del(&d->g, flist_pop(&d->g.l, b));
}

/* A miss on the key of ghost slot g (FL_NIL: on neither list): adapt p as
 * cases II and III say, by max(1, |B2|/|B1|) up for B1, max(1, |B1|/|B2|)
 * down for B2 (integer quotients).  Returns IN_*. */
static inline uint8_t adir_adapt(struct adir *d, uint32_t g)
{
	uint32_t b1 = d->b1.count, b2 = d->b2.count;

	if (g == FL_NIL)
		return IN_NONE;
	if (flist_has(&d->g.l, &d->b1, g)) {
		uint32_t k = b2 / b1 > 1 ? b2 / b1 : 1;
		d->p = d->c - d->p > k ? d->p + k : d->c;
		return IN_B1;
	}
	uint32_t k = b1 / b2 > 1 ? b1 / b2 : 1;
	d->p = d->p > k ? d->p - k : 0;
	return IN_B2;
}

/* A miss on a key on neither list, once its page is in: keep the directory
 * within |T1|+|B1| <= c and |T1|+|T2|+|B1|+|B2| <= 2c. */
static inline void adir_trim(struct adir *d)
{
	uint32_t t1 = wl_count(&d->t1), t2 = wl_count(&d->t2);
	uint32_t b1 = d->b1.count, b2 = d->b2.count;

	if (t1 + b1 >= d->c && b1)
		adir_drop_lru(d, &d->b1);
	else if (t1 + t2 + b1 + b2 >= 2 * d->c && b2)
		adir_drop_lru(d, &d->b2);
}

/* Frame f (its key set) comes in: to T2 when its key was at ghost slot g
 * (which is forgotten), to T1 when g is FL_NIL. */
static inline void adir_join(struct adir *d, uint32_t f, uint32_t g)
{
	if (g == FL_NIL) {
		wl_push(&d->w, &d->t1, f);
		return;
	}
	flist_del(&d->g.l, flist_has(&d->g.l, &d->b1, g) ? &d->b1 : &d->b2, g);
	ghost_del(&d->g, g);
	wl_push(&d->w, &d->t2, f);
}

/* Frame f was freed without eviction. */
static inline void adir_remove(struct adir *d, uint32_t f)
{
	if (wl_has(&d->w, &d->t1, f))
		wl_del(&d->w, &d->t1, f);
	else if (wl_has(&d->w, &d->t2, f))
		wl_del(&d->w, &d->t2, f);
}

#endif /* LP_ADAPTIVE_H */
