/* SPDX-License-Identifier: MIT */
/*
 * RANDOM: evict a resident frame chosen uniformly at random (the baseline of
 * L. A. Belady, "A study of replacement algorithms for a virtual-storage
 * computer", IBM Systems Journal 5(2), 1966).
 *
 * The resident frames are kept in a dense array, each frame knowing its
 * index, so that a choice, an insertion and a removal are O(1).  Uses
 * neither hits nor reference bits: it behaves the same in the runtime and
 * in the simulator.  The sequence of choices depends only on the seed.
 */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"

#define NOWHERE UINT32_MAX

struct rnd {
	uint32_t *res;        /* resident frames, res[0..count) */
	uint32_t *pos;        /* per frame: index in res, or NOWHERE */
	uint32_t count;
	uint64_t s;           /* splitmix64 state */
};

static uint64_t next64(struct rnd *p)
{
	uint64_t z = (p->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), without modulo bias (Lemire's multiply-shift). */
static uint32_t below(struct rnd *p, uint32_t n)
{
	uint64_t m = (next64(p) >> 32) * n;

	if ((uint32_t)m < n) {
		uint32_t t = -n % n;
		while ((uint32_t)m < t)
			m = (next64(p) >> 32) * n;
	}
	return (uint32_t)(m >> 32);
}

static int rnd_init(void *state, uint32_t n, struct lp_policy_host *h,
		    uint64_t seed)
{
	struct rnd *p = state;

	(void)h;
	p->res = malloc(n * sizeof(*p->res));
	p->pos = malloc(n * sizeof(*p->pos));
	if (!p->res || !p->pos)
		return -ENOMEM;
	for (uint32_t f = 0; f < n; f++)
		p->pos[f] = NOWHERE;
	p->s = seed;
	return 0;
}

static void rnd_fini(void *state)
{
	struct rnd *p = state;

	free(p->res);
	free(p->pos);
}

static void rnd_insert(void *state, uint32_t f, uint64_t key)
{
	struct rnd *p = state;

	(void)key;
	p->pos[f] = p->count;
	p->res[p->count++] = f;
}

static void rnd_remove(void *state, uint32_t f)
{
	struct rnd *p = state;
	uint32_t i = p->pos[f];

	if (i == NOWHERE)
		return;
	uint32_t last = p->res[--p->count];
	p->res[i] = last;
	p->pos[last] = i;
	p->pos[f] = NOWHERE;
}

static int rnd_evict(void *state, uint32_t *f)
{
	struct rnd *p = state;

	if (!p->count)
		return -ENOENT;
	*f = p->res[below(p, p->count)];
	rnd_remove(p, *f);
	return 0;
}

const struct lp_policy_ops lp_policy_random = {
	.name = "random",
	.summary = "a resident frame chosen uniformly at random (seeded)",
	.uses_ref = false,
	.uses_hits = false,
	.size = sizeof(struct rnd),
	.init = rnd_init,
	.fini = rnd_fini,
	.insert = rnd_insert,
	.remove = rnd_remove,
	.evict = rnd_evict,
};
