/* SPDX-License-Identifier: MIT */
/*
 * Arming windows: how a policy sees uses in the runtime.
 *
 * The runtime reports a use of a resident frame (hit()) only when the
 * policy cleared the frame's reference bit before it: clearing "arms" the
 * frame.  Each clear costs the runtime an unmap, and the use it reveals a
 * minor fault, so a policy arms a frame at most once per pass through a
 * list, and late: some way before the list head, where it decides about the
 * frame.  A frame that just came in is not armed at once: it is usually
 * being used right then, and the runtime can only clear bits while it
 * evicts.  The simulator reports every use (host->all_uses): there, arming
 * does nothing and every frame counts as armed.
 *
 * A wlist is an flist (head = oldest) whose older half, by position, is
 * armed: wl_fill() moves a probe from the head towards the tail, arming
 * the frames it passes, until half the list lies behind it.  Frames join
 * at the tail unarmed; the algorithm may also arm a frame where it stands
 * (wl_arm()), e.g. when it resets its view of it.  Pushes are numbered per
 * list, so that list order is number order and whether a frame lies behind
 * the probe is a comparison.  The links (struct wlinks) are shared by all
 * the wlists of one policy, like flinks.
 */
#ifndef LP_WINDOW_H
#define LP_WINDOW_H

#include <errno.h>

#include "../policy.h"
#include "flist.h"

/* Frames wl_fill() arms per call: with one call per eviction, about what
 * the runtime's default budget (LP_DEFAULT_REF_SCAN per victim) allows
 * for two lists. */
#define WL_STEPS 2u

struct wlinks {
	struct flinks l;
	uint8_t *armed;       /* per frame */
	uint64_t *seq;        /* per frame: push number in its list */
};

struct wlist {
	struct flist q;
	uint32_t probe;       /* first frame not passed by the probe, or FL_NIL */
	uint32_t behind;      /* frames before the probe */
	uint64_t pushes;
};

static inline int wlinks_init(struct wlinks *w, uint32_t n)
{
	w->armed = calloc(n, 1);
	w->seq = calloc(n, sizeof(*w->seq));
	return flinks_init(&w->l, n) || !w->armed || !w->seq ? -ENOMEM : 0;
}

static inline void wlinks_fini(struct wlinks *w)
{
	flinks_fini(&w->l);
	free(w->armed);
	free(w->seq);
}

static inline void wl_init(struct wlist *q, uint8_t id)
{
	flist_init(&q->q, id);
	q->probe = FL_NIL;
	q->behind = 0;
	q->pushes = 0;
}

static inline bool wl_has(const struct wlinks *w, const struct wlist *q,
			  uint32_t f)
{
	return flist_has(&w->l, &q->q, f);
}

static inline uint32_t wl_head(const struct wlist *q)
{
	return q->q.head;
}

static inline uint32_t wl_count(const struct wlist *q)
{
	return q->q.count;
}

static inline void wl_push(struct wlinks *w, struct wlist *q, uint32_t f)
{
	flist_push(&w->l, &q->q, f);
	w->armed[f] = 0;
	w->seq[f] = ++q->pushes;
	if (q->probe == FL_NIL)
		q->probe = f;
}

static inline void wl_del(struct wlinks *w, struct wlist *q, uint32_t f)
{
	if (q->probe == f)
		q->probe = w->l.next[f];
	else if (q->probe == FL_NIL || w->seq[f] < w->seq[q->probe])
		q->behind--;
	w->armed[f] = 0;
	flist_del(&w->l, &q->q, f);
}

static inline uint32_t wl_pop(struct wlinks *w, struct wlist *q)
{
	uint32_t f = q->q.head;

	if (f != FL_NIL)
		wl_del(w, q, f);
	return f;
}

static inline void wl_move_tail(struct wlinks *w, struct wlist *q, uint32_t f)
{
	wl_del(w, q, f);
	wl_push(w, q, f);
}

/* Whether a use of f since it was armed would have been reported. */
static inline bool wl_known(const struct wlinks *w,
			    const struct lp_policy_host *h, uint32_t f)
{
	return h->all_uses || w->armed[f];
}

/* (Re-)arm f where it stands.  Returns whether f is armed; a declined
 * clear leaves it disarmed. */
static inline bool wl_arm(struct wlinks *w, struct lp_policy_host *h,
			  uint32_t f)
{
	if (h->all_uses)
		return true;
	w->armed[f] = ref_clear(h, f);
	return w->armed[f];
}

/* The first frame ahead of the probe that is not armed, the probe moved
 * past the armed ones; FL_NIL if none. */
static inline uint32_t wl_probe(struct wlinks *w, struct wlist *q)
{
	while (q->probe != FL_NIL && w->armed[q->probe]) {
		q->probe = w->l.next[q->probe];
		q->behind++;
	}
	return q->probe;
}

/* Arm the probe's frame and move past it; false when the host declines. */
static inline bool wl_arm_probe(struct wlinks *w, struct wlist *q,
				struct lp_policy_host *h)
{
	uint32_t f = q->probe;

	if (!wl_arm(w, h, f))
		return false;
	q->probe = w->l.next[f];
	q->behind++;
	return true;
}

/* Arm up to WL_STEPS frames so that the older half of the list is armed.
 * Stops early when the host declines; amortised O(1). */
static inline void wl_fill(struct wlinks *w, struct wlist *q,
			   struct lp_policy_host *h)
{
	if (h->all_uses)
		return;
	for (unsigned steps = WL_STEPS; steps; steps--) {
		if (wl_probe(w, q) == FL_NIL ||
		    q->behind >= q->q.count - q->q.count / 2)
			return;
		if (!wl_arm_probe(w, q, h))
			return;
	}
}

#endif /* LP_WINDOW_H */
