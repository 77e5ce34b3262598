/* SPDX-License-Identifier: MIT */
/* FIFO: evict the page that came in first.  Needs no reference bits. */
#include <errno.h>
#include <stdlib.h>

#include "../policy.h"
#include "flist.h"

struct fifo {
	struct flinks l;
	struct flist q;
};

static int fifo_init(void *state, uint32_t n, struct lp_policy_host *h,
		     uint64_t seed)
{
	struct fifo *p = state;

	(void)h;
	(void)seed;
	flist_init(&p->q, 1);
	return flinks_init(&p->l, n);
}

static void fifo_fini(void *state)
{
	struct fifo *p = state;

	flinks_fini(&p->l);
}

static void fifo_insert(void *state, uint32_t f, uint64_t key)
{
	struct fifo *p = state;

	(void)key;
	flist_push(&p->l, &p->q, f);
}

static void fifo_remove(void *state, uint32_t f)
{
	struct fifo *p = state;

	if (flist_has(&p->l, &p->q, f))
		flist_del(&p->l, &p->q, f);
}

static int fifo_evict(void *state, uint32_t *f)
{
	struct fifo *p = state;
	uint32_t v = flist_pop(&p->l, &p->q);

	if (v == FL_NIL)
		return -ENOENT;
	*f = v;
	return 0;
}

const struct lp_policy_ops lp_policy_fifo = {
	.name = "fifo",
	.summary = "first in, first out",
	.uses_ref = false,
	.uses_hits = false,
	.size = sizeof(struct fifo),
	.init = fifo_init,
	.fini = fifo_fini,
	.insert = fifo_insert,
	.remove = fifo_remove,
	.evict = fifo_evict,
};
