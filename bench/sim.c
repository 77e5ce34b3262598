/* SPDX-License-Identifier: MIT */
/* Trace simulator: a policy host that sees the whole trace, and MIN. */
#include "sim.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

/* Page number -> dense number, open addressing, grown at half full. */
struct idmap {
	uint64_t *key;
	uint32_t *val;        /* NIL: empty */
	size_t mask, used;
};

static size_t slot_of(const struct idmap *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 32)) & m->mask;
}

static int idmap_init(struct idmap *m, size_t cap)
{
	m->key = malloc(cap * sizeof(*m->key));
	m->val = malloc(cap * sizeof(*m->val));
	if (!m->key || !m->val) {
		free(m->key);
		free(m->val);
		return -ENOMEM;
	}
	memset(m->val, 0xff, cap * sizeof(*m->val));
	m->mask = cap - 1;
	m->used = 0;
	return 0;
}

static int idmap_grow(struct idmap *m)
{
	struct idmap b;

	if (idmap_init(&b, 2 * (m->mask + 1)))
		return -ENOMEM;
	for (size_t i = 0; i <= m->mask; i++) {
		if (m->val[i] == NIL)
			continue;
		size_t s = slot_of(&b, m->key[i]);
		while (b.val[s] != NIL)
			s = (s + 1) & b.mask;
		b.key[s] = m->key[i];
		b.val[s] = m->val[i];
	}
	b.used = m->used;
	free(m->key);
	free(m->val);
	*m = b;
	return 0;
}

int lp_trace_prepare(struct lp_trace *t, const uint64_t *page, size_t n)
{
	struct idmap m;
	uint32_t *last;

	memset(t, 0, sizeof(*t));
	if (n >= NIL)
		return -E2BIG;
	t->page = page;
	t->n = (uint32_t)n;
	t->id = malloc((n ? n : 1) * sizeof(*t->id));
	t->next = malloc((n ? n : 1) * sizeof(*t->next));
	if (!t->id || !t->next || idmap_init(&m, 1024)) {
		lp_trace_release(t);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		size_t s = slot_of(&m, page[i]);
		while (m.val[s] != NIL && m.key[s] != page[i])
			s = (s + 1) & m.mask;
		if (m.val[s] != NIL) {
			t->id[i] = m.val[s];
			continue;
		}
		m.key[s] = page[i];
		m.val[s] = t->id[i] = t->npages++;
		if (++m.used * 2 > m.mask + 1 && idmap_grow(&m)) {
			free(m.key);
			free(m.val);
			lp_trace_release(t);
			return -ENOMEM;
		}
	}
	free(m.key);
	free(m.val);

	last = malloc((t->npages ? t->npages : 1) * sizeof(*last));
	if (!last) {
		lp_trace_release(t);
		return -ENOMEM;
	}
	for (uint32_t p = 0; p < t->npages; p++)
		last[p] = t->n;
	for (uint32_t i = t->n; i-- > 0;) {
		t->next[i] = last[t->id[i]];
		last[t->id[i]] = i;
	}
	free(last);
	return 0;
}

void lp_trace_release(struct lp_trace *t)
{
	free(t->id);
	free(t->next);
	memset(t, 0, sizeof(*t));
}

struct sim_host {
	struct lp_policy_host h;
	unsigned budget;
	struct lp_sim_result *r;
	const uint32_t *id_of;
	bool broken;          /* a bit of a free frame was cleared */
};

static bool sim_clear_ref(struct lp_policy_host *h, uint32_t f)
{
	struct sim_host *s = h->ctx;

	if (s->id_of[f] == NIL)
		s->broken = true;
	if (!h->all_uses) {
		if (!s->budget) {
			s->r->declined++;
			return false;
		}
		s->budget--;
	}
	h->ref[f] = 0;
	s->r->clears++;
	return true;
}

/* Evict every resident frame: each exactly once, then -ENOENT. */
static int drain(const struct lp_policy_ops *ops, void *st, uint32_t *id_of,
		 uint32_t frames, uint32_t used)
{
	uint32_t f;

	for (uint32_t k = 0; k < used; k++) {
		if (ops->evict(st, &f) || f >= frames || id_of[f] == NIL)
			return -EPROTO;
		id_of[f] = NIL;
	}
	return ops->evict(st, &f) == -ENOENT ? 0 : -EPROTO;
}

/* The free frames of a simulated host and who holds each frame. */
struct sim_frames {
	uint32_t *frame_of, *id_of, *free_f;
	uint32_t *nfree, n;
	unsigned scan;
};

/* Free want frames through the policy (fewer when it has no more and some
 * are free).  0, or -EPROTO when the policy misbehaves. */
static int evict_some(struct sim_host *sh, const struct lp_policy_ops *ops,
		      void *st, uint32_t want, struct sim_frames *fs)
{
	int rc = 0;

	sh->budget = want * fs->scan;
	for (uint32_t k = 0; k < want; k++) {
		uint32_t f;
		int e = ops->evict(st, &f);
		if (e == -ENOENT && *fs->nfree)
			break;
		if (e || f >= fs->n || fs->id_of[f] == NIL) {
			rc = -EPROTO;
			break;
		}
		fs->frame_of[fs->id_of[f]] = NIL;
		fs->id_of[f] = NIL;
		fs->free_f[(*fs->nfree)++] = f;
	}
	sh->budget = 0;
	return rc;
}

void lp_sim_reserve(uint32_t frames, uint32_t *low, uint32_t *high)
{
	uint32_t h = frames / 32 > 64 ? frames / 32 : 64; /* 2 readaheads */

	if (h > 256)
		h = 256;
	if (h > frames / 4)
		h = frames / 4 ? frames / 4 : 1;
	*high = h;
	*low = h / 2 ? h / 2 : 1;
}

int lp_sim_run(const struct lp_trace *t, const struct lp_policy_ops *ops,
	       uint32_t frames, const struct lp_sim_opts *o,
	       struct lp_sim_result *r)
{
	static const struct lp_sim_opts dflt;
	struct sim_host sh = { 0 };
	uint32_t *frame_of = NULL, *id_of = NULL, *free_f = NULL;
	uint32_t nfree = frames, low = 0, high = 1;
	void *st = NULL;
	int rc = -ENOMEM;

	if (!o)
		o = &dflt;
	memset(r, 0, sizeof(*r));
	if (!frames)
		return -EINVAL;
	bool exact = o->host == LP_SIM_EXACT;
	unsigned scan = o->ref_scan ? o->ref_scan : 4;
	if (!exact)
		lp_sim_reserve(frames, &low, &high);
	sh.h.ref = calloc(frames, 1);
	sh.h.clear_ref = sim_clear_ref;
	sh.h.ctx = &sh;
	sh.h.all_uses = exact;
	sh.r = r;
	frame_of = malloc((t->npages ? t->npages : 1) * sizeof(*frame_of));
	id_of = malloc(frames * sizeof(*id_of));
	free_f = malloc(frames * sizeof(*free_f));
	if (!sh.h.ref || !frame_of || !id_of || !free_f)
		goto out;
	memset(frame_of, 0xff, t->npages * sizeof(*frame_of));
	memset(id_of, 0xff, frames * sizeof(*id_of));
	for (uint32_t f = 0; f < frames; f++)
		free_f[f] = frames - 1 - f;
	sh.id_of = id_of;
	rc = policy_create(ops, &st, frames, &sh.h, o->seed);
	if (rc) {
		st = NULL;
		goto out;
	}

	struct sim_frames frames_st = { frame_of, id_of, free_f, &nfree,
					frames, scan };
	rc = -EPROTO;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t id = t->id[i], f = frame_of[id];
		if (f != NIL) {
			if (o->missed)
				o->missed[i] = 0;
			if (exact || !sh.h.ref[f]) {
				sh.h.ref[f] = 1;
				r->hits_seen++;
				if (ops->hit)
					ops->hit(st, f);
			}
			continue;
		}
		r->misses++;
		if (o->missed)
			o->missed[i] = 1;
		if (exact && ops->miss)
			ops->miss(st, t->page[i]);
		/* Exact: a frame is freed when none is.  Sampled: the frame
		 * is taken first; once fewer than the low watermark are left,
		 * frames are freed up to the high one, at once, before the
		 * page joins the policy, as the runtime's evictor does. */
		if (!nfree && evict_some(&sh, ops, st, 1, &frames_st))
			goto out;
		f = free_f[--nfree];
		/* (Not more than the policy holds: all but this frame.) */
		uint32_t want = high - nfree < frames - 1 - nfree
					? high - nfree : frames - 1 - nfree;
		if (!exact && nfree < low && want &&
		    evict_some(&sh, ops, st, want, &frames_st))
			goto out;
		id_of[f] = id;
		frame_of[id] = f;
		sh.h.ref[f] = 1;
		ops->insert(st, f, t->page[i]);
	}
	r->accesses = t->n;
	if (!sh.broken)
		rc = drain(ops, st, id_of, frames, frames - nfree);
out:
	policy_destroy(ops, st);
	free(sh.h.ref);
	free(frame_of);
	free(id_of);
	free(free_f);
	return rc;
}

/* MIN's resident pages: a max-heap on next use, each page knowing its
 * place in it. */
struct heap {
	uint32_t *when;       /* next use */
	uint32_t *id;
	uint32_t *pos;        /* per page: index in the heap, or NIL */
	uint32_t size;
};

static void heap_set(struct heap *h, uint32_t k, uint32_t when, uint32_t id)
{
	h->when[k] = when;
	h->id[k] = id;
	h->pos[id] = k;
}

static void sift_up(struct heap *h, uint32_t k)
{
	uint32_t when = h->when[k], id = h->id[k];

	while (k > 0 && h->when[(k - 1) / 2] < when) {
		uint32_t up = (k - 1) / 2;
		heap_set(h, k, h->when[up], h->id[up]);
		k = up;
	}
	heap_set(h, k, when, id);
}

static void sift_down(struct heap *h, uint32_t k)
{
	uint32_t when = h->when[k], id = h->id[k];

	for (;;) {
		uint32_t c = 2 * k + 1;
		if (c >= h->size)
			break;
		if (c + 1 < h->size && h->when[c + 1] > h->when[c])
			c++;
		if (h->when[c] <= when)
			break;
		heap_set(h, k, h->when[c], h->id[c]);
		k = c;
	}
	heap_set(h, k, when, id);
}

int lp_sim_min(const struct lp_trace *t, uint32_t frames, uint8_t *missed,
	       struct lp_sim_result *r)
{
	struct heap h = { 0 };
	int rc = -ENOMEM;

	memset(r, 0, sizeof(*r));
	if (!frames)
		return -EINVAL;
	h.when = malloc(frames * sizeof(*h.when));
	h.id = malloc(frames * sizeof(*h.id));
	h.pos = malloc((t->npages ? t->npages : 1) * sizeof(*h.pos));
	if (!h.when || !h.id || !h.pos)
		goto out;
	memset(h.pos, 0xff, t->npages * sizeof(*h.pos));
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t id = t->id[i], k = h.pos[id];
		if (missed)
			missed[i] = k == NIL;
		if (k != NIL) {
			/* Its next use only moves later. */
			h.when[k] = t->next[i];
			sift_up(&h, k);
			continue;
		}
		r->misses++;
		if (h.size == frames) {
			h.pos[h.id[0]] = NIL;
			heap_set(&h, 0, t->next[i], id);
			sift_down(&h, 0);
		} else {
			heap_set(&h, h.size++, t->next[i], id);
			sift_up(&h, h.size - 1);
		}
	}
	r->accesses = t->n;
	rc = 0;
out:
	free(h.when);
	free(h.id);
	free(h.pos);
	return rc;
}
