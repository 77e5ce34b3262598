/* SPDX-License-Identifier: MIT */
/* Ghost entries: a bounded map from page keys to slots. */
#include "ghost.h"

#include <errno.h>
#include <stdlib.h>

#include "window.h"

static uint32_t bucket_of(const struct ghost *g, uint64_t key)
{
	/* Fibonacci hashing: neighbouring page numbers spread out. */
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - g->bits));
}

int ghost_init(struct ghost *g, uint32_t cap)
{
	uint32_t bits = 1;

	if (!cap)
		cap = 1;
	while (bits < 31 && (1u << bits) < cap)
		bits++;
	g->bits = bits;
	g->cap = cap;
	g->used = 0;
	g->key = malloc(cap * sizeof(*g->key));
	g->chain = malloc(cap * sizeof(*g->chain));
	g->bucket = malloc(((size_t)1 << bits) * sizeof(*g->bucket));
	if (flinks_init(&g->l, cap) || !g->key || !g->chain || !g->bucket)
		return -ENOMEM;
	for (uint32_t i = 0; i < (1u << bits); i++)
		g->bucket[i] = FL_NIL;
	for (uint32_t i = 0; i < cap; i++)
		g->chain[i] = i + 1 < cap ? i + 1 : FL_NIL;
	g->free = 0;
	return 0;
}

void ghost_fini(struct ghost *g)
{
	flinks_fini(&g->l);
	free(g->key);
	free(g->chain);
	free(g->bucket);
}

uint32_t ghost_find(const struct ghost *g, uint64_t key)
{
	uint32_t s = g->bucket[bucket_of(g, key)];

	while (s != FL_NIL && g->key[s] != key)
		s = g->chain[s];
	return s;
}

uint32_t ghost_add(struct ghost *g, uint64_t key)
{
	uint32_t s = g->free, b;

	if (s == FL_NIL)
		return FL_NIL;
	g->free = g->chain[s];
	b = bucket_of(g, key);
	g->key[s] = key;
	g->chain[s] = g->bucket[b];
	g->bucket[b] = s;
	g->used++;
	return s;
}

void ghost_del(struct ghost *g, uint32_t slot)
{
	uint32_t *p = &g->bucket[bucket_of(g, g->key[slot])];

	while (*p != slot)
		p = &g->chain[*p];
	*p = g->chain[slot];
	g->chain[slot] = g->free;
	g->free = slot;
	g->used--;
}

int ghost_frames_init(struct ghost *g, uint64_t cap, struct wlinks *w,
		      uint64_t **key, uint32_t n)
{
	if (cap > FL_NIL - 1)
		return -EINVAL;
	*key = calloc(n, sizeof(**key));
	if (wlinks_init(w, n) || ghost_init(g, (uint32_t)cap) || !*key)
		return -ENOMEM;
	return 0;
}

void ghost_frames_fini(struct ghost *g, struct wlinks *w, uint64_t *key)
{
	wlinks_fini(w);
	ghost_fini(g);
	free(key);
}
