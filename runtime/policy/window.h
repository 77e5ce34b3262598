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
 * A wlist is an flist (head = oldest) plus a probe: every frame before the
 * probe is armed, unless a failed re-arm disarmed it in place; frames join
 * at the tail unarmed.  wl_fill() arms from the probe on, keeping the newer
 * half of the list unarmed.  The links (struct wlinks) are shared by all
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
};

struct wlist {
	struct flist q;
	uint32_t probe;       /* oldest frame that may be unarmed; FL_NIL: none */
	uint32_t narmed;
};

static inline int wlinks_init(struct wlinks *w, uint32_t n)
{
	w->armed = calloc(n, 1);
	return flinks_init(&w->l, n) || !w->armed ? -ENOMEM : 0;
}

static inline void wlinks_fini(struct wlinks *w)
{
	flinks_fini(&w->l);
	free(w->armed);
}

static inline void wl_init(struct wlist *q, uint8_t id)
{
	flist_init(&q->q, id);
	q->probe = FL_NIL;
	q->narmed = 0;
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
	if (q->probe == FL_NIL)
		q->probe = f;
}

static inline void wl_del(struct wlinks *w, struct wlist *q, uint32_t f)
{
	if (q->probe == f)
		q->probe = w->l.next[f];
	if (w->armed[f]) {
		w->armed[f] = 0;
		q->narmed--;
	}
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

/* (Re-)arm f where it stands, as the algorithm resets its view of it.
 * Returns whether f is armed; a declined clear leaves it disarmed. */
static inline bool wl_arm(struct wlinks *w, struct wlist *q,
			  struct lp_policy_host *h, uint32_t f)
{
	if (h->all_uses)
		return true;
	if (!ref_clear(h, f)) {
		if (w->armed[f]) {
			w->armed[f] = 0;
			q->narmed--;
		}
		return false;
	}
	if (!w->armed[f]) {
		w->armed[f] = 1;
		q->narmed++;
	}
	return true;
}

/* Arm the oldest unarmed frames, up to WL_STEPS of them, until at most half
 * the list is unarmed.  Stops early when the host declines.  Frames armed in
 * place behind the probe are skipped: amortised O(1). */
static inline void wl_fill(struct wlinks *w, struct wlist *q,
			   struct lp_policy_host *h)
{
	unsigned steps = WL_STEPS;

	if (h->all_uses)
		return;
	while (steps && q->q.count - q->narmed > q->q.count / 2) {
		while (q->probe != FL_NIL && w->armed[q->probe])
			q->probe = w->l.next[q->probe];
		if (q->probe == FL_NIL)
			return;
		uint32_t f = q->probe;
		if (!ref_clear(h, f))
			return;
		w->armed[f] = 1;
		q->narmed++;
		q->probe = w->l.next[f];
		steps--;
	}
}

#endif /* LP_WINDOW_H */
