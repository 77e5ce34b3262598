/* SPDX-License-Identifier: MIT */
/* The chain of backing stores (see store.h). */
#include "store.h"

#include <errno.h>

int chain_add(struct lp_chain *c, struct lp_store *s)
{
	if (c->n == LP_STORES_MAX)
		return -ENOSPC;
	if (!c->n) {
		c->s[c->n++] = s;
		return 0;
	}
	/* In front of the last: memory stores in the order added. */
	c->s[c->n] = c->s[c->n - 1];
	c->s[c->n - 1] = s;
	c->n++;
	return 0;
}

struct lp_store *chain_set_last(struct lp_chain *c, struct lp_store *s)
{
	if (!c->n) {
		c->s[c->n++] = s;
		return NULL;
	}
	struct lp_store *old = c->s[c->n - 1];
	c->s[c->n - 1] = s;
	return old;
}

void chain_destroy(struct lp_chain *c)
{
	for (unsigned i = 0; i < c->n; i++)
		c->s[i]->ops->destroy(c->s[i]);
	c->n = 0;
}

int chain_get(const struct lp_chain *c, uint64_t slot, void *buf)
{
	for (unsigned i = 0; i + 1 < c->n; i++) {
		int rc = c->s[i]->ops->get(c->s[i], slot, buf);
		if (rc)
			return rc;
	}
	return 0;
}

bool chain_in_memory(const struct lp_chain *c, uint64_t slot)
{
	for (unsigned i = 0; i + 1 < c->n; i++)
		if (c->s[i]->ops->holds(c->s[i], slot))
			return true;
	return false;
}

void chain_offer(const struct lp_chain *c, const uint64_t *slots,
		 const void *const *pages, unsigned n, bool *taken)
{
	for (unsigned k = 0; k < n; k++)
		taken[k] = false;
	for (unsigned i = 0; n && i + 1 < c->n; i++) {
		struct lp_store *s = c->s[i];
		if (!s->ops->admit(s, slots, n))
			continue; /* this batch passes it by */
		for (unsigned k = 0; k < n; k++)
			if (!taken[k])
				taken[k] = s->ops->put(s, slots[k], pages[k]) == 0;
	}
}

bool chain_forget(const struct lp_chain *c, uint64_t slot)
{
	bool busy = false;

	for (unsigned i = 0; i < c->n; i++)
		busy |= c->s[i]->ops->forget(c->s[i], slot);
	return busy;
}
