/* SPDX-License-Identifier: MIT */
/* Regions, the files they map, and the region table (see region.h). */
#include "region.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lp_region *region_new(uintptr_t start, uintptr_t end, int prot,
			     enum lp_region_kind kind)
{
	struct lp_region *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->start = start;
	r->end = end;
	r->prot = prot;
	r->kind = (uint8_t)kind;
	atomic_init(&r->refs, 1);
	for (unsigned i = 0; i < LP_STREAMS; i++) {
		atomic_init(&r->ra.s[i].last, 0);
		atomic_init(&r->ra.s[i].win, 0);
		atomic_init(&r->za.s[i].last, 0);
		atomic_init(&r->za.s[i].win, 0);
	}
	atomic_init(&r->ra.next, 0);
	atomic_init(&r->za.next, 0);
	return r;
}

/* Drop one reference of a count: whether it was the last. */
static bool put_last(atomic_uint *refs)
{
	return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

void region_put(struct lp_region *r)
{
	if (r && put_last(&r->refs)) {
		file_put(r->file);
		free(r);
	}
}

struct lp_region *region_clone(const struct lp_region *r, uintptr_t start,
			       uintptr_t end)
{
	struct lp_region *n = region_new(start, end, r->prot, r->kind);

	if (!n)
		return NULL;
	n->shared = r->shared;
	n->file = r->file ? file_get(r->file) : NULL;
	n->off = r->off + (start - r->start);
	n->init = r->init;
	return n;
}

struct lp_file *file_new(int fd, uint64_t size)
{
	struct lp_file *f = calloc(1, sizeof(*f));

	if (f) {
		f->fd = fd;
		atomic_init(&f->refs, 1);
		atomic_init(&f->size, size);
	} else {
		close(fd);
	}
	return f;
}

struct lp_file *file_get(struct lp_file *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	return f;
}

void file_put(struct lp_file *f)
{
	if (f && put_last(&f->refs)) {
		close(f->fd);
		free(f);
	}
}

/* Index of the first region whose end is above addr. */
static size_t lower(const struct lp_regions *t, uintptr_t addr)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->v[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct lp_region *regions_find(const struct lp_regions *t, uintptr_t addr)
{
	size_t i = lower(t, addr);

	if (i < t->n && t->v[i]->start <= addr)
		return t->v[i];
	return NULL;
}

static int reserve(struct lp_regions *t, size_t more)
{
	if (t->n + more <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap * 2 : 16;
	while (cap < t->n + more)
		cap *= 2;
	struct lp_region **v = realloc(t->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	t->cap = cap;
	return 0;
}

int regions_insert(struct lp_regions *t, struct lp_region *r)
{
	size_t i = lower(t, r->start);

	if (i < t->n && t->v[i]->start < r->end)
		return -EEXIST;
	if (reserve(t, 1))
		return -ENOMEM;
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = r;
	t->n++;
	return 0;
}

bool regions_cover(const struct lp_regions *t, uintptr_t start, uintptr_t end)
{
	size_t i = lower(t, start);
	uintptr_t at = start;

	for (; i < t->n && at < end; i++) {
		if (t->v[i]->start > at)
			return false;
		at = t->v[i]->end;
	}
	return at >= end;
}

int regions_take(struct lp_regions *t, uintptr_t start, uintptr_t end,
		 struct lp_region ***gone, size_t *ngone)
{
	size_t first = lower(t, start), last = first;
	while (last < t->n && t->v[last]->start < end)
		last++;
	size_t k = last - first;
	*gone = NULL;
	*ngone = 0;
	if (!k)
		return 0;
	struct lp_region **out = calloc(k, sizeof(*out));
	struct lp_region *left = NULL, *right = NULL;
	if (!out || reserve(t, 2))
		goto nomem;

	/* Build every new object first so that failure changes nothing. */
	struct lp_region *a = t->v[first], *b = t->v[last - 1];
	if (a->start < start && !(left = region_clone(a, a->start, start)))
		goto nomem;
	if (b->end > end && !(right = region_clone(b, end, b->end)))
		goto nomem;
	for (size_t i = 0; i < k; i++) {
		struct lp_region *r = t->v[first + i];
		uintptr_t s = r->start > start ? r->start : start;
		uintptr_t e = r->end < end ? r->end : end;
		if (s == r->start && e == r->end) {
			out[i] = r; /* the table's reference moves out */
			continue;
		}
		out[i] = region_clone(r, s, e);
		if (!out[i])
			goto nomem;
	}
	/* Commit. */
	for (size_t i = 0; i < k; i++) {
		struct lp_region *r = t->v[first + i];
		atomic_store(&r->retired, true);
		if (out[i] != r)
			region_put(r);
	}
	memmove(&t->v[first], &t->v[last], (t->n - last) * sizeof(*t->v));
	t->n -= k;
	if (left)
		(void)regions_insert(t, left);
	if (right)
		(void)regions_insert(t, right);
	*gone = out;
	*ngone = k;
	return 0;
nomem:
	if (out) {
		for (size_t i = 0; i < k; i++)
			if (out[i] && out[i] != t->v[first + i])
				region_put(out[i]);
		free(out);
	}
	region_put(left);
	region_put(right);
	return -ENOMEM;
}

int regions_remove(struct lp_regions *t, uintptr_t start, uintptr_t end,
		   struct lp_region ***gone, size_t *ngone)
{
	if (!regions_cover(t, start, end))
		return -EINVAL;
	return regions_take(t, start, end, gone, ngone);
}

void regions_fini(struct lp_regions *t)
{
	for (size_t i = 0; i < t->n; i++)
		region_put(t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
